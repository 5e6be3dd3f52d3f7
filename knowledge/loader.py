"""Read and validate the knowledge base from YAML files.

Layout (relative to this package, or to ``root`` when given)::

    sources.yaml                    documents the answers cite
    safety.yaml                     medical-advice phrases, the 119 and crisis replies
    actions.yaml                    what the bot can do (calculators, reminders, delete, office, menu …)
    emergency.yaml                  emergency and crisis concepts (handlers.safety), with examples kb check proves
    synonyms/*.yaml                 synonym and abbreviation groups
    national/*.yaml                 topics that hold everywhere in Japan
    prefectures/<id>/prefecture.yaml offices, municipalities, hours, examples, the calculators' 出典 lines
    prefectures/<id>/services.yaml  the services next door and who handles them there
    prefectures/<id>/sources.yaml   (optional) documents of that prefecture, beside sources.yaml
    prefectures/<id>/*.yaml         topics specific to that prefecture

Another prefecture is a new folder under ``prefectures/``; no code changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from knowledge.models import (
    CITATION_NAMES,
    Action,
    ActionFile,
    Citation,
    CitationName,
    EmergencyLexicon,
    Prefecture,
    Redirect,
    SafetyLexicon,
    ServiceFile,
    Source,
    SourceFile,
    Stale,
    SynonymFile,
    SynonymGroup,
    Topic,
    TopicFile,
)

ROOT = Path(__file__).resolve().parent
DEFAULT_PREFECTURE = "gunma"
# The files of a prefecture's folder that are its data, not its topics.
_PREFECTURE_DATA_FILES = ("prefecture.yaml", "services.yaml", "sources.yaml")

M = TypeVar("M", bound=BaseModel)


class KnowledgeError(Exception):
    """A knowledge-base file is broken. ``str()`` names the file and the entry."""

    def __init__(self, path: Path | str, entry: str | None, message: str) -> None:
        self.path = str(path)
        self.entry = entry
        self.message = message
        where = f"{self.path}" + (f" [{entry}]" if entry else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class KnowledgeBase:
    """Everything the bot knows, validated and cross-checked."""

    topics: dict[str, Topic]
    sources: dict[str, Source]
    synonyms: list[SynonymGroup]
    prefecture: Prefecture
    safety: SafetyLexicon
    emergency: EmergencyLexicon
    actions: list[Action] = field(default_factory=list)
    requesting: list[str] = field(default_factory=list)
    personal: list[str] = field(default_factory=list)
    services: list[Redirect] = field(default_factory=list)
    topic_files: dict[str, str] = field(default_factory=dict)
    citations: dict[str, Citation] = field(default_factory=dict)
    unlinked: list[str] = field(default_factory=list)  # national links to topics this prefecture lacks
    source_files: dict[str, str] = field(default_factory=dict)

    def stale(self, today: date) -> list[Stale]:
        """Topics and sources whose facts are due to be checked again on ``today``: ``checked`` is
        ``recheck_days`` (the entry's, else the prefecture's) or more days before it. Oldest due first."""
        default = self.prefecture.recheck_days
        found: list[Stale] = []
        entries: list[tuple[str, str, Topic | Source, str]] = [
            ("topic", tid, t, self.topic_files.get(tid, "")) for tid, t in self.topics.items()
        ]
        entries += [("source", sid, s, self.source_files.get(sid, "")) for sid, s in self.sources.items()]
        for kind, eid, entry, path in entries:
            days = entry.recheck_days or default
            due = entry.checked + timedelta(days=days)
            if due <= today:
                found.append(Stale(kind, eid, entry.checked, days, due, _shown(path)))
        return sorted(found, key=lambda s: (s.due, s.kind, s.id))

    def cite(self, topic: Topic) -> str:
        """The 出典 line of a topic's answer."""
        names = "、".join(self.sources[s].cite() for s in topic.sources)
        return f"出典：{names}（{topic.checked.year}年{topic.checked.month}月{topic.checked.day}日確認）"

    def citation(self, name: str) -> str:
        """The 出典 line of a calculator's result (``CITATION_NAMES``): the prefecture's, else the national one."""
        return self.citations[name].line()


def _shown(path: str) -> str:
    """A file as an editor types it: relative to the working directory when inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _read_yaml(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise KnowledgeError(path, None, f"not valid YAML: {exc}") from exc
    except OSError as exc:
        raise KnowledgeError(path, None, f"cannot read: {exc}") from exc


def _entry_name(raw: Any, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic error location into 'topics[3] (id=foo).field'."""
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            try:
                node = node[key]
                if isinstance(node, dict) and "id" in node:
                    label = f"[{key}] id={node['id']}"
            except (IndexError, KeyError, TypeError):
                node = None
            parts.append(label)
        else:
            parts.append(f".{key}" if parts else str(key))
            try:
                node = node[key]
            except (KeyError, TypeError, IndexError):
                node = None
    return "".join(parts)


def _parse(model: type[M], path: Path) -> M:
    raw = _read_yaml(path)
    if raw is None:
        raise KnowledgeError(path, None, "file is empty")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        entry = _entry_name(raw, tuple(first["loc"]))
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise KnowledgeError(path, entry, f"{first['msg']}{more}") from exc


@dataclass(frozen=True)
class _Sources:
    """The documents of sources.yaml and of the prefecture's own sources.yaml, by id."""

    path: Path  # sources.yaml, which also holds the national 出典 lines
    by_id: dict[str, Source]
    files: dict[str, str]  # source id -> the file that defines it
    citations: dict[CitationName, Citation]  # the national 出典 lines of the calculators


@dataclass(frozen=True)
class _Topics:
    """Every topic, national first, and the file each comes from."""

    by_id: dict[str, Topic]
    files: dict[str, str]


@dataclass(frozen=True)
class _Actions:
    """actions.yaml: what the bot can do, and the forms that ask it to."""

    actions: list[Action]
    requesting: list[str]
    personal: list[str]
    unlinked: list[str]  # offered_by links to topics this prefecture lacks, dropped


def _require_unique(path: Path, ids: Iterable[str], message: str) -> None:
    """Raise on the first id seen twice."""
    seen: set[str] = set()
    for eid in ids:
        if eid in seen:
            raise KnowledgeError(path, eid, message)
        seen.add(eid)


def _require_sources(path: Path, entry: str | None, ids: Iterable[str], sources: dict[str, Source]) -> None:
    """Raise on the first source id that no sources.yaml defines."""
    for sid in ids:
        if sid not in sources:
            raise KnowledgeError(path, entry, f"unknown source '{sid}'")


def _load_sources(path: Path, own_path: Path) -> _Sources:
    """sources.yaml, and the prefecture's own documents (``own_path``, optional) beside it."""
    shared = _parse(SourceFile, path)
    own = _parse(SourceFile, own_path) if own_path.exists() else None
    if own and own.citations:
        raise KnowledgeError(own_path, "citations", "a prefecture's citations belong in its prefecture.yaml")
    by_id: dict[str, Source] = {}
    files: dict[str, str] = {}
    for file_path, file in ((path, shared), (own_path, own)):
        for src in file.sources if file else ():
            if src.id in by_id:
                raise KnowledgeError(file_path, src.id, "source id defined twice")
            by_id[src.id] = src
            files[src.id] = str(file_path)
    return _Sources(path=path, by_id=by_id, files=files, citations=shared.citations)


def _load_synonyms(folder: Path) -> list[SynonymGroup]:
    """Every group of synonyms/*.yaml, in file-name order."""
    groups: list[SynonymGroup] = []
    for path in sorted(folder.glob("*.yaml")):
        groups.extend(_parse(SynonymFile, path).groups)
    return groups


def _load_prefecture(path: Path, prefecture: str, sources: dict[str, Source]) -> Prefecture:
    """prefectures/<id>/prefecture.yaml: each municipality's office and each source must exist."""
    if not path.exists():
        raise KnowledgeError(path, None, f"no data for prefecture '{prefecture}'")
    pref = _parse(Prefecture, path)
    for muni in pref.municipalities:
        if muni.office not in pref.offices:
            raise KnowledgeError(path, muni.name, f"unknown office '{muni.office}'")
    _require_sources(path, None, pref.sources, sources)
    return pref


def _load_citations(sources: _Sources, pref_path: Path, pref: Prefecture) -> dict[str, Citation]:
    """The calculators' 出典 lines: the prefecture's own where it has one (it names its own page),
    else the national one of sources.yaml. Every calculator must have one."""
    citations: dict[str, Citation] = {}
    for path, own in ((sources.path, sources.citations), (pref_path, pref.citations)):
        for name, citation in own.items():
            _require_sources(path, f"citations.{name}", citation.sources, sources.by_id)
            citations[name] = citation
    missing = [name for name in CITATION_NAMES if name not in citations]
    if missing:
        raise KnowledgeError(pref_path, "citations", f"no 出典 line for {missing}, here or in sources.yaml")
    return citations


def _topic_paths(national: Path, pref_dir: Path) -> list[Path]:
    """The topic files: national/*.yaml, then the prefecture's files other than its data files."""
    own = sorted(p for p in pref_dir.glob("*.yaml") if p.name not in _PREFECTURE_DATA_FILES)
    return sorted(national.glob("*.yaml")) + own


def _check_topic(path: Path, topic: Topic, files: dict[str, str], sources: dict[str, Source]) -> None:
    """A topic is new, cites known sources and states every fact it ``must``."""
    if topic.id in files:
        raise KnowledgeError(path, topic.id, f"topic id already defined in {files[topic.id]}")
    _require_sources(path, topic.id, topic.sources, sources)
    missing = topic.missing_facts()
    if missing:
        raise KnowledgeError(path, topic.id, f"answer does not state required facts: {missing}")


def _load_topics(paths: list[Path], sources: dict[str, Source]) -> _Topics:
    """Every topic of ``paths``, checked one by one (links between topics: ``_link_related``)."""
    topics: dict[str, Topic] = {}
    files: dict[str, str] = {}
    for path in paths:
        for topic in _parse(TopicFile, path).topics:
            _check_topic(path, topic, files, sources)
            topics[topic.id] = topic
            files[topic.id] = str(path)
    return _Topics(by_id=topics, files=files)


def _check_office_topics(pref_path: Path, pref: Prefecture, topics: dict[str, Topic]) -> None:
    """The topics followed by the user's own office must exist."""
    for tid in pref.office_topics:
        if tid not in topics:
            raise KnowledgeError(pref_path, tid, "office_topics names a topic that does not exist")
    if pref.where_topic is not None and pref.where_topic not in topics:
        raise KnowledgeError(pref_path, pref.where_topic, "where_topic names a topic that does not exist")


def _link_related(topics: _Topics, national: Path) -> tuple[dict[str, Topic], list[str]]:
    """The topics with their ``related`` links checked, and the national links that were dropped.

    A national topic may point at a topic each prefecture is expected to have (its document
    list, its 窓口 …). A prefecture that has not written it yet loses the link instead of failing
    to load; the second value names what was dropped (the tests require none for Gunma, so a typo
    still shows). A prefecture's own links must all hold.
    """
    from_national = {t for t, f in topics.files.items() if Path(f).parent == national}
    linked = dict(topics.by_id)
    unlinked: list[str] = []
    for tid, topic in topics.by_id.items():
        dangling = [rel for rel in topic.related if rel not in topics.by_id]
        if dangling and tid not in from_national:
            raise KnowledgeError(topics.files[tid], tid, f"related topic '{dangling[0]}' does not exist")
        if dangling:
            unlinked += [f"{tid} -> {rel}" for rel in dangling]
            linked[tid] = topic.model_copy(update={"related": [r for r in topic.related if r in topics.by_id]})
    return linked, unlinked


def _load_emergency(path: Path) -> EmergencyLexicon:
    """emergency.yaml: each concept id once."""
    emergency = _parse(EmergencyLexicon, path)
    _require_unique(path, (concept.id for concept in emergency.concepts), "concept id defined twice")
    return emergency


def _load_actions(path: Path, topics: dict[str, Topic]) -> _Actions:
    """actions.yaml: each id once. An action offered by a topic the prefecture lacks loses that
    link (national too: a topic the prefecture lacks offers nothing)."""
    file = _parse(ActionFile, path)
    actions: list[Action] = []
    unlinked: list[str] = []
    for action in file.actions:
        unlinked += [f"action {action.id} -> {tid}" for tid in action.offered_by if tid not in topics]
        actions.append(action.model_copy(update={"offered_by": [t for t in action.offered_by if t in topics]}))
    _require_unique(path, (action.id for action in actions), "id defined twice")
    return _Actions(actions=actions, requesting=file.requesting, personal=file.personal, unlinked=unlinked)


def _load_services(path: Path, topics: dict[str, Topic]) -> list[Redirect]:
    """prefectures/<id>/services.yaml, the services next door and who handles them there
    (窓口, 相談支援センター differ by prefecture): each id once, related topics must exist."""
    services = _parse(ServiceFile, path).services
    _require_unique(path, (service.id for service in services), "id defined twice")
    for service in services:
        for tid in service.related:
            if tid not in topics:
                raise KnowledgeError(path, service.id, f"related names a topic that does not exist: '{tid}'")
    return services


def load_knowledge(prefecture: str = DEFAULT_PREFECTURE, root: Path | None = None) -> KnowledgeBase:
    """Load, validate and cross-check the knowledge base.

    Args:
        prefecture: folder name under ``prefectures/``.
        root: the knowledge folder; defaults to this package's own data.

    Raises:
        KnowledgeError: naming the file and the entry that is wrong.
    """
    base = root or ROOT
    pref_dir = base / "prefectures" / prefecture
    pref_path = pref_dir / "prefecture.yaml"
    sources = _load_sources(base / "sources.yaml", pref_dir / "sources.yaml")
    synonyms = _load_synonyms(base / "synonyms")
    pref = _load_prefecture(pref_path, prefecture, sources.by_id)
    citations = _load_citations(sources, pref_path, pref)
    loaded = _load_topics(_topic_paths(base / "national", pref_dir), sources.by_id)
    _check_office_topics(pref_path, pref, loaded.by_id)
    topics, unlinked = _link_related(loaded, base / "national")
    safety = _parse(SafetyLexicon, base / "safety.yaml")
    emergency = _load_emergency(base / "emergency.yaml")
    actions = _load_actions(base / "actions.yaml", topics)
    services = _load_services(pref_dir / "services.yaml", topics)
    return KnowledgeBase(
        topics=topics,
        sources=sources.by_id,
        synonyms=synonyms,
        prefecture=pref,
        safety=safety,
        emergency=emergency,
        actions=actions.actions,
        requesting=actions.requesting,
        personal=actions.personal,
        services=services,
        topic_files=loaded.files,
        citations=citations,
        unlinked=unlinked + actions.unlinked,
        source_files=sources.files,
    )

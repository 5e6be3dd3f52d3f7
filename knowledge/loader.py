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
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from knowledge.models import (
    CITATION_NAMES,
    Action,
    Citation,
    ActionFile,
    EmergencyLexicon,
    Redirect,
    ServiceFile,
    Prefecture,
    SafetyLexicon,
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
            ("topic", tid, t, self.topic_files.get(tid, "")) for tid, t in self.topics.items()]
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


def load_knowledge(prefecture: str = DEFAULT_PREFECTURE, root: Path | None = None) -> KnowledgeBase:
    """Load, validate and cross-check the knowledge base.

    Args:
        prefecture: folder name under ``prefectures/``.
        root: the knowledge folder; defaults to this package's own data.

    Raises:
        KnowledgeError: naming the file and the entry that is wrong.
    """
    base = root or ROOT
    sources: dict[str, Source] = {}
    source_files: dict[str, str] = {}
    sources_path = base / "sources.yaml"
    source_file = _parse(SourceFile, sources_path)
    pref_dir = base / "prefectures" / prefecture
    # A prefecture may bring its own documents (prefectures/<id>/sources.yaml) beside the shared list.
    own_sources_path = pref_dir / "sources.yaml"
    own_sources = _parse(SourceFile, own_sources_path) if own_sources_path.exists() else None
    if own_sources and own_sources.citations:
        raise KnowledgeError(own_sources_path, "citations", "a prefecture's citations belong in its prefecture.yaml")
    for path, file in ((sources_path, source_file), (own_sources_path, own_sources)):
        for src in file.sources if file else ():
            if src.id in sources:
                raise KnowledgeError(path, src.id, "source id defined twice")
            sources[src.id] = src
            source_files[src.id] = str(path)

    synonyms: list[SynonymGroup] = []
    for path in sorted((base / "synonyms").glob("*.yaml")):
        synonyms.extend(_parse(SynonymFile, path).groups)

    pref_path = pref_dir / "prefecture.yaml"
    if not pref_path.exists():
        raise KnowledgeError(pref_path, None, f"no data for prefecture '{prefecture}'")
    pref = _parse(Prefecture, pref_path)
    for muni in pref.municipalities:
        if muni.office not in pref.offices:
            raise KnowledgeError(pref_path, muni.name, f"unknown office '{muni.office}'")
    for sid in pref.sources:
        if sid not in sources:
            raise KnowledgeError(pref_path, None, f"unknown source '{sid}'")
    # A calculator's 出典 line: the prefecture's own where it has one (it names its own page),
    # else the national one of sources.yaml.
    citations: dict[str, Citation] = {}
    for path, own in ((sources_path, source_file.citations), (pref_path, pref.citations)):
        for name, citation in own.items():
            for sid in citation.sources:
                if sid not in sources:
                    raise KnowledgeError(path, f"citations.{name}", f"unknown source '{sid}'")
            citations[name] = citation
    missing_citations = [name for name in CITATION_NAMES if name not in citations]
    if missing_citations:
        raise KnowledgeError(pref_path, "citations", f"no 出典 line for {missing_citations}, here or in sources.yaml")

    topic_paths = sorted((base / "national").glob("*.yaml")) + sorted(
        p for p in pref_dir.glob("*.yaml") if p.name not in ("prefecture.yaml", "services.yaml", "sources.yaml")
    )
    topics: dict[str, Topic] = {}
    files: dict[str, str] = {}
    for path in topic_paths:
        for topic in _parse(TopicFile, path).topics:
            if topic.id in topics:
                raise KnowledgeError(path, topic.id, f"topic id already defined in {files[topic.id]}")
            for sid in topic.sources:
                if sid not in sources:
                    raise KnowledgeError(path, topic.id, f"unknown source '{sid}'")
            missing = topic.missing_facts()
            if missing:
                raise KnowledgeError(path, topic.id, f"answer does not state required facts: {missing}")
            topics[topic.id] = topic
            files[topic.id] = str(path)
    for tid in pref.office_topics:
        if tid not in topics:
            raise KnowledgeError(pref_path, tid, "office_topics names a topic that does not exist")
    # A national topic may point at a topic each prefecture is expected to have (its document
    # list, its 窓口 …). A prefecture that has not written it yet loses the link instead of failing
    # to load; ``unlinked`` names what was dropped (the tests require none for Gunma, so a typo
    # still shows). A prefecture's own links must all hold.
    national = {t for t, f in files.items() if Path(f).parent == base / "national"}
    unlinked: list[str] = []
    for tid, topic in list(topics.items()):
        dangling = [rel for rel in topic.related if rel not in topics]
        if dangling and tid not in national:
            raise KnowledgeError(files[tid], tid, f"related topic '{dangling[0]}' does not exist")
        if dangling:
            unlinked += [f"{tid} -> {rel}" for rel in dangling]
            topics[tid] = topic.model_copy(update={"related": [r for r in topic.related if r in topics]})
    safety = _parse(SafetyLexicon, base / "safety.yaml")
    emergency_path = base / "emergency.yaml"
    emergency = _parse(EmergencyLexicon, emergency_path)
    seen: set[str] = set()
    for concept in emergency.concepts:
        if concept.id in seen:
            raise KnowledgeError(emergency_path, concept.id, "concept id defined twice")
        seen.add(concept.id)
    action_file = _parse(ActionFile, base / "actions.yaml")
    actions = []
    for action in action_file.actions:  # national too: a topic the prefecture lacks offers nothing
        unlinked += [f"action {action.id} -> {tid}" for tid in action.offered_by if tid not in topics]
        actions.append(action.model_copy(update={"offered_by": [t for t in action.offered_by if t in topics]}))
    # The services next door and who handles them differ by prefecture (窓口, 相談支援センター).
    services_path = pref_dir / "services.yaml"
    services = _parse(ServiceFile, services_path).services
    for path, entries in ((base / "actions.yaml", actions), (services_path, services)):
        ids: set[str] = set()
        for entry in entries:
            if entry.id in ids:
                raise KnowledgeError(path, entry.id, "id defined twice")
            ids.add(entry.id)
    for service in services:
        for tid in service.related:
            if tid not in topics:
                raise KnowledgeError(services_path, service.id, f"related names a topic that does not exist: '{tid}'")
    return KnowledgeBase(
        topics=topics, sources=sources, synonyms=synonyms, prefecture=pref, safety=safety, emergency=emergency,
        actions=actions, requesting=action_file.requesting, personal=action_file.personal, services=services, topic_files=files,
        citations=citations, unlinked=unlinked, source_files=source_files,
    )

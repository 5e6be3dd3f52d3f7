"""Validated shapes of the knowledge-base files (pydantic models).

Every YAML file under ``knowledge/`` is parsed into these models; unknown keys
are refused so that a typo in a field name is caught on load, not in a chat.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ID = r"^[a-z0-9][a-z0-9-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """A document an answer is based on."""

    id: str
    title: str
    publisher: str
    url: str | None = None
    updated: str | None = Field(default=None, description="date the source itself was last updated, as it states it")
    checked: dt.date = Field(description="day this entry was last compared with the document")
    recheck_days: int | None = Field(
        default=None, ge=1, description="days until it is due again (default: the prefecture's)"
    )

    def cite(self) -> str:
        """Japanese citation line, e.g. 〇〇県「特定医療費(指定難病)制度について」（2024年12月10日更新）."""
        text = f"{self.publisher}「{self.title}」"
        if self.updated:
            text += f"（{self.updated}）"
        return text


class Topic(_Strict):
    """One question area of the knowledge base and its answer."""

    id: str = Field(pattern=_ID)
    title: str = Field(min_length=2)
    label: str = Field(min_length=1, max_length=20, description="short button label for this topic")
    answer: str = Field(min_length=10)
    phrasings: list[str] = Field(min_length=2)
    keywords: list[str] = Field(default_factory=list)
    must: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)
    sources: list[str] = Field(min_length=1)
    checked: dt.date
    recheck_days: int | None = Field(
        default=None, ge=1, description="days until it is due again (default: the prefecture's)"
    )

    @field_validator("phrasings", "keywords")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.strip():
                raise ValueError("blank entry")
        return values

    def missing_facts(self) -> list[str]:
        """Facts listed under ``must`` that the answer text does not state."""
        return [fact for fact in self.must if fact not in self.answer]


# The calculators whose result ends with a 出典 line (handlers.copay). A prefecture's line replaces
# the national one of the same name.
CitationName = Literal["copay", "copay-short", "mild-high-cost", "start-date"]
CITATION_NAMES: tuple[str, ...] = get_args(CitationName)


@dataclass(frozen=True)
class Stale:
    """A topic or source whose facts are due to be checked again (``KnowledgeBase.stale``)."""

    kind: str  # "topic" or "source"
    id: str
    checked: dt.date
    recheck_days: int
    due: dt.date  # checked + recheck_days: from this day on it is stale
    file: str

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "id": self.id,
            "checked": self.checked.isoformat(),
            "recheck_days": self.recheck_days,
            "due": self.due.isoformat(),
            "file": self.file,
        }


class Citation(_Strict):
    """The 出典 line under a calculator's result: the sources it rests on, and how it names them."""

    sources: list[str] = Field(min_length=1, description="ids in sources.yaml that the line names")
    text: str = Field(min_length=2, description="what the reply prints after 出典：")

    def line(self) -> str:
        return f"出典：{self.text}"


class TopicFile(_Strict):
    topics: list[Topic] = Field(min_length=1)


class SourceFile(_Strict):
    sources: list[Source] = Field(min_length=1)
    citations: dict[CitationName, Citation] = Field(
        default_factory=dict,
        description="national 出典 lines of the calculators; a prefecture may replace one",
    )


class SynonymGroup(_Strict):
    """Words that mean the same thing; all are rewritten to ``canonical`` before matching."""

    canonical: str = Field(min_length=1)
    variants: list[str] = Field(min_length=1)


class SynonymFile(_Strict):
    groups: list[SynonymGroup] = Field(min_length=1)


class Office(_Strict):
    """An application window (保健福祉事務所 or city health centre)."""

    name: str
    address: str
    phone: str = Field(pattern=r"^0\d{1,4}-\d{1,4}-\d{4}$")
    fax: str = Field(pattern=r"^0\d{1,4}-\d{1,4}-\d{4}$")


class Municipality(_Strict):
    name: str
    reading: str
    office: str
    district: str | None = None
    former: list[str] = Field(default_factory=list)


class Contact(_Strict):
    name: str
    phone: str | None = None
    note: str | None = None


class Prefecture(_Strict):
    """Everything that changes from one prefecture to the next, except its topics."""

    id: str = Field(pattern=_ID)
    name: str
    hours: str
    department: Contact
    offices: dict[str, Office]
    municipalities: list[Municipality] = Field(min_length=1)
    sources: list[str] = Field(min_length=1)
    checked: dt.date
    recheck_days: int = Field(
        default=180,
        ge=1,
        description=(
            "days after a topic's or source's `checked` when it is due to be checked again, unless it sets its own"
        ),
    )
    office_topics: list[str] = Field(
        default_factory=list,
        description="topics whose answer is followed by the user's own office when the municipality is known",
    )
    where_topic: str | None = Field(
        default=None,
        description=(
            "the topic that says where the office topics' procedures are done: the answer to "
            "「それはどこでするの？」 right after one of them"
        ),
    )
    office_hint: str = Field(
        min_length=5,
        description=(
            "where to ask when the user's municipality is not known; "
            "follows 「詳しくは、」 and precedes 「にお問い合わせください」"
        ),
    )
    municipality_examples: list[str] = Field(
        min_length=1,
        max_length=4,
        description=(
            "shown in 「（例：…）」 when the bot asks for a municipality; "
            "each a municipality's name, or that name without 市/町/村"
        ),
    )
    ambiguous_short: list[str] = Field(
        default_factory=list,
        description="names without 市/町/村 that are everyday words or other places; recognised only with the suffix",
    )
    citations: dict[CitationName, Citation] = Field(
        default_factory=dict,
        description="the calculators' 出典 lines that name this prefecture's own sources",
    )

    @field_validator("municipalities")
    @classmethod
    def _unique_names(cls, values: list[Municipality]) -> list[Municipality]:
        names = [m.name for m in values]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"municipality listed twice: {sorted(dupes)}")
        return values

    @model_validator(mode="after")
    def _examples_are_municipalities(self) -> Prefecture:
        names = {m.name for m in self.municipalities}
        shorts = {re.sub(r"[市町村]$", "", n) for n in names}
        for example in self.municipality_examples:
            if example not in names and (example not in shorts or example in self.ambiguous_short):
                raise ValueError(f"municipality_examples: the bot would not recognise '{example}' as a municipality")
        return self


PHONE_RE = re.compile(r"0\d{1,4}-\d{1,4}-\d{4}")


class Redirect(_Strict):
    """A service next door (services.yaml): who handles a subject outside this bot's scope."""

    id: str = Field(pattern=_ID)
    words: list[str] = Field(min_length=1)
    reply: str = Field(min_length=5)
    strict: bool = Field(
        default=False,
        description="true: always out of scope; false: only when no topic matches with high confidence",
    )
    phrasings: list[str] = Field(default_factory=list, description="ways of asking, ranked by the matcher")
    keywords: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list, description="subsidy topics offered with the reply")
    strict_words: list[str] = Field(
        default_factory=list, description="words that make the question theirs even beside this bot's own words"
    )


class Action(_Strict):
    """Something the bot can do (actions.yaml), ranked by the same matcher as the topics."""

    id: str = Field(pattern=_ID)
    does: str = Field(
        pattern=r"^(start:[a-z-]+|menu|cancel|restart|office|delete|reminder-list|reminder-stop|costlog-show|costlog-stop)$"
    )
    label: str = Field(min_length=1, max_length=20)
    commands: list[str] = Field(default_factory=list, description="whole messages that ask for it in any state")
    phrasings: list[str] = Field(min_length=3)
    keywords: list[str] = Field(default_factory=list)
    offered_by: list[str] = Field(default_factory=list, description="topics whose answers offer it as a button")
    cues: list[str] = Field(default_factory=list, description="words that choose it over a close neighbour")
    calculates: bool = Field(False, description="a calculator: a question about one's own case starts it")
    needs: list[str] = Field(
        default_factory=list, description="words one of which a message must have for this action (what it acts on)"
    )
    unless: list[str] = Field(
        default_factory=list,
        description="regular expressions (on the text as typed, NFKC) that say the message is about "
        "something else: 「バス乗車証の使い方」 is not the bot's menu",
    )

    @field_validator("unless")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            re.compile(p)
        return patterns


class ActionFile(_Strict):
    requesting: list[str] = Field(default_factory=list, description="forms that ask the bot to do something")
    personal: list[str] = Field(default_factory=list, description="forms that ask about one's own case")
    actions: list[Action] = Field(min_length=1)


class ServiceFile(_Strict):
    services: list[Redirect] = Field(min_length=1)


class SafetyLexicon(_Strict):
    """Phrases that must never reach the FAQ matcher as ordinary questions (emergencies: EmergencyLexicon)."""

    medical: list[str] = Field(min_length=1)
    not_medical: list[str] = Field(
        default_factory=list,
        description="words that make a message with a medical word a question of money or procedure "
        "(「副作用が出たら補償は？」), not a request for a medical judgement",
    )
    emergency_reply: str
    crisis_reply: str
    medical_reply: str
    domain_words: list[str] = Field(
        default_factory=list,
        description=(
            "words of this bot's own subject; "
            "a non-strict redirect yields to a confident topic only when one is present"
        ),
    )


class EmergencyRule(_Strict):
    """One way of saying that something is wrong right now.

    With ``what`` empty, any of ``state`` alone is enough (「たすけて」). Otherwise a ``what`` is
    followed by a ``state``, joined only by particles and adverbs (``EmergencyLexicon.joiners``) or,
    when ``gap`` is set, by at most that many characters of anything.
    """

    what: list[str] = Field(default_factory=list)
    state: list[str] = Field(min_length=1)
    gap: int = Field(default=0, ge=0, le=20)
    weak: bool = Field(
        default=False, description="yields when the message also talks about the subsidy (申請, 医療費 …)"
    )
    urgent_only: bool = Field(default=False, description="counts only with a word of urgency (急に, 突然, 今 …)")
    whole: bool = Field(default=False, description="the message is this and nothing more (「きゅうきゅうしゃ」)")
    ends: bool = Field(
        default=False, description="nothing but a polite ending may follow (「助けて」, not 「助けてくれる制度」)"
    )
    not_of: list[str] = Field(
        default_factory=list,
        description=(
            "what the state may be said of without alarm, when it comes right before the state "
            "(「記録をつけるのはもう終わりにしたい」 is about the record)"
        ),
    )


class EmergencyConcept(_Strict):
    """What is wrong (breathing, chest, …), as rules; with examples that ``kb check`` proves."""

    id: str = Field(pattern=_ID)
    kind: str = Field(pattern=r"^(emergency|crisis)$")
    rules: list[EmergencyRule] = Field(min_length=1)
    examples: list[str] = Field(min_length=2, description="messages this concept must detect")
    near_misses: list[str] = Field(default_factory=list, description="messages that must stay ordinary")
    note: str | None = Field(
        default=None, description="said after the reply when this concept is found, naming its source"
    )


class SpokenForm(_Strict):
    """A way people really write, made standard before the words are matched (「でぎない」 → 「できない」)."""

    pattern: str = Field(min_length=1, description="a regular expression over the text after NFKC")
    standard: str = Field(description="what it stands for (re.sub's replacement)")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class EmergencyLexicon(_Strict):
    """Concepts of emergency and crisis, and the words that frame a symptom as not happening now."""

    joiners: list[str] = Field(min_length=1)
    conditional: list[str] = Field(
        min_length=1, description="right after a symptom: it is hypothetical or general (〜たら, 〜とき, 〜こと)"
    )
    topical: list[str] = Field(
        min_length=1, description="soon after a symptom: it is a subject, not an event (〜病気, 〜入院)"
    )
    before: list[str] = Field(min_length=1, description="before a symptom: it is hypothetical or past (もし, 去年)")
    urgency: list[str] = Field(min_length=1)
    subsidy: list[str] = Field(min_length=1, description="the subsidy's vocabulary; weak rules yield to it")
    asking: list[str] = Field(min_length=1, description="forms that ask something (か, 教えて, 対象 …)")
    fuzzy: list[str] = Field(default_factory=list, description="help words also recognised with one slip")
    spoken: list[SpokenForm] = Field(default_factory=list, description="dialect, elongation and emoji, made standard")
    things: list[str] = Field(
        default_factory=list, description="animals and things: as the subject of a hit, no person is in danger"
    )
    figures_of_speech: list[str] = Field(
        default_factory=list,
        description="idioms that sound like a symptom (気が遠くなるような): a hit inside one is none",
    )
    concepts: list[EmergencyConcept] = Field(min_length=1)

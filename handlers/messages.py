"""The channel-agnostic message types: what comes in, where it goes back, what goes out.

A channel turns a verified request into ``(IncomingMessage, Address)`` pairs (its own kind of
address: ``SlackAddress``, ``LineAddress``) and renders ``list[Reply]`` to that address; nothing
else crosses the boundary between a channel and the core. All three are frozen: a turn can be
recorded (``bot.intake``, ``bot.turn_codec``), run on any thread, and run again after a crash.

A reply's ``text`` is always the whole answer in plain text (the terminal shows it, and
it is the fallback of every other rendering). A reply may also carry its structure — a
calculator's ``Result``, an ``Office``, a small ``Table`` (the cost log), its ``Source`` — which
LINE (Flex Message) and Slack (Block Kit) render as cards, and the terminal as an aligned block; a
channel that knows no cards ignores it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Self
from urllib.parse import quote

MAP_SEARCH = "https://www.google.com/maps/search/"

# Events that are not a message but that the core answers (``IncomingMessage.event``).
FOLLOW = "follow"  # a LINE user added the account (or unblocked it): the welcome
UNFOLLOW = "unfollow"  # a LINE user blocked the account: their data is deleted, nothing is sent
HOME_OPENED = "home-opened"  # a Slack user opened the App Home tab: the home text and menu

# The value prefix of the feedback pair after an answer (handlers.feedback): channels show it apart
# from, and after, the choices that lead on.
FEEDBACK_PREFIX = "feedback:"


@dataclass(frozen=True)
class Choice:
    """A button / quick reply. Choosing it sends ``value`` back as ``IncomingMessage.choice``."""

    label: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"label": self.label, "value": self.value}


@dataclass(frozen=True)
class IncomingMessage:
    """One user turn.

    Attributes:
        channel: "console", "json", "slack", "line", ...
        user: the channel's user id (never shown to other users).
        text: what the user typed, or None when a choice was clicked.
        choice: the value of the clicked choice, or None.
        event_id: the channel's id of this delivery, used to answer a redelivered event only once.
        attachment: what came besides or instead of text ("image", "file", "sticker", "video",
            "audio", "location" ...), or None. Never its content: the bot does not download it.
        event: ``FOLLOW``, ``UNFOLLOW`` or ``HOME_OPENED`` for those events, else None.
        my_number: True when the text or choice held a My Number and was taken out before the
            turn was recorded (``bot.turn_codec.encode_turns``): the turn carries only that fact, and
            the core refuses it as it refuses the number itself.
    """

    channel: str
    user: str
    text: str | None = None
    choice: str | None = None
    event_id: str | None = None
    attachment: str | None = None
    event: str | None = None
    my_number: bool = False

    @property
    def user_key(self) -> str:
        return f"{self.channel}:{self.user}"


@dataclass(frozen=True)
class Address:
    """Where a turn's replies go: what every channel has. Each channel adds what its outbox needs
    (``SlackAddress``, ``LineAddress``); a channel that answers in place (the console) needs none.

    Attributes:
        channel: the channel whose outbox delivers ("slack", "line").
        user: the channel's user id.
    """

    channel: str
    user: str

    @classmethod
    def of(cls, address: Address) -> Self:
        """``address`` as this kind: itself, or one with its channel and user only (a reminder's)."""
        return address if isinstance(address, cls) else cls(address.channel, address.user)

    @property
    def acts_without_replies(self) -> bool:
        """Whether the outbox has something to do for a turn that says nothing."""
        return False

    def for_redelivery(self) -> Address:
        """Where a delivery tried again after the platform failed goes: here."""
        return self


@dataclass(frozen=True)
class SlackAddress(Address):
    """A Slack user's conversation, thread, App Home or clicked message.

    Attributes:
        conversation: the conversation to post in (a Slack channel or DM id), or None for the
            user's direct messages (opened when needed).
        thread: the thread to answer in (Slack ``thread_ts``), or None.
        home: True when the replies are the user's Slack App Home tab, not a message.
        clicked: the clicked Slack message, ``(channel, ts, label, blocks as JSON)``: its buttons
            give way to a note of what was chosen. None otherwise.
        pointer_url: a Slack ``response_url`` that gets an ephemeral pointer to the DM (a
            ``/nanbyo`` command typed elsewhere), or None.
    """

    conversation: str | None = None
    thread: str | None = None
    home: bool = False
    clicked: tuple[str, str, str, str] | None = None
    pointer_url: str | None = None

    @property
    def acts_without_replies(self) -> bool:
        """A clicked message's buttons give way to a note even when the turn says nothing."""
        return bool(self.clicked)


@dataclass(frozen=True)
class LineAddress(Address):
    """A LINE user, and the reply token of their event.

    Attributes:
        reply_token: LINE's reply token of the event, or None (pushed).
    """

    reply_token: str | None = None

    def for_redelivery(self) -> LineAddress:
        """Without the reply token: it lives about a minute and may have been spent by the failed
        call, so the next tries push, with ``X-Line-Retry-Key``, and cannot repeat."""
        return replace(self, reply_token=None)


@dataclass(frozen=True)
class Fact:
    """One labelled line of a card: 「今月お支払いになる額の目安」「20,000円」."""

    label: str
    value: str


@dataclass(frozen=True)
class Result:
    """A calculator's result: one figure in large type, what decided it, and a few lines more.

    Attributes:
        label: what the figure is (「月の自己負担上限額」).
        figure: the figure as shown (「20,000」, 「2025年6月1日」, 「該当します」).
        unit: after the figure (「円」), or "".
        subtitle: the line under the figure (「階層区分：一般所得2」), or None.
        rule: the one rule that decided it (the 決め手), or None.
        details: labelled lines (this month's payment, one line per possible tier ...).
        notes: short sentences after them (who decides finally, what to do next).
    """

    label: str
    figure: str
    unit: str = ""
    subtitle: str | None = None
    rule: str | None = None
    details: tuple[Fact, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Office:
    """An office to call or visit, as a card with 「電話する」 and 「地図」.

    Attributes:
        name: the office (「吾妻保健福祉事務所」).
        address: its postal address (also what the map link searches for).
        phone: the phone number as printed (「0279-75-3303」).
        hours: when it answers (「平日 8:30〜17:15」).
        fax: the fax number, or None.
        serves: whom it serves (「草津町にお住まいの方の窓口」), or None.
        area: the prefecture (「群馬県」), put before an address that does not start with it for the map.
    """

    name: str
    address: str
    phone: str
    hours: str
    fax: str | None = None
    serves: str | None = None
    area: str = ""

    @property
    def tel_uri(self) -> str:
        """The phone as a ``tel:`` URI (「0279-75-3303」 → ``tel:0279753303``): a tap calls it."""
        return "tel:" + "".join(ch for ch in self.phone if ch.isdigit() or ch == "+")

    @property
    def map_url(self) -> str:
        """A map search for the address, opening Google Maps (the app or the browser) on any phone.

        The path form has no ``&``: Slack's iOS app breaks links with one (slackapi/bolt-js#2103).
        """
        where = self.address if self.address.startswith(self.area) else self.area + self.address
        return MAP_SEARCH + quote(where, safe="")


@dataclass(frozen=True)
class Row:
    """One row of a ``Table``: its cells, left to right; ``strong`` when the row stands out (a month over a line)."""

    cells: tuple[str, ...]
    strong: bool = False


@dataclass(frozen=True)
class Table:
    """A small table that a phone shows whole (the cost log's months), and labelled lines after it.

    The first column names the row (a month); the others are figures and marks, read right-aligned.

    Attributes:
        title: what the table is (「医療費の記録（直近12か月）」).
        columns: the column headings, one per cell of a row ("" for a column of marks).
        rows: the rows in order.
        summary: labelled lines under the table (the counts: 「高額かつ長期」「4か月（あと2か月）」).
        notes: short lines after them (what the marks mean, what is not counted).
    """

    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    summary: tuple[Fact, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """Where the facts of a reply come from: the 出典 line as the text shows it."""

    text: str


@dataclass(frozen=True)
class Reply:
    """One message of the bot.

    Attributes:
        text: polite Japanese, already including its 出典 line when it states facts.
        choices: buttons offered after this message.
        expecting: the contract slot the bot waits for (see CONTRACT.md), or None.
        topic: the knowledge-base topic id this reply answers, or None.
        kind: what the reply is, for logs and tests ("answer", "copay-result", "office" ...).
        result: the structure of a calculator's result, for channels that render cards.
        office: the structure of an office answer, for channels that render cards.
        table: a small table (the cost log), for channels that render cards.
        source: the 出典 of a card (the text names it too).
    """

    text: str
    choices: tuple[Choice, ...] = ()
    expecting: str | None = None
    topic: str | None = None
    kind: str = field(default="answer", compare=False)
    result: Result | None = field(default=None, compare=False)
    office: Office | None = field(default=None, compare=False)
    table: Table | None = field(default=None, compare=False)
    source: Source | None = field(default=None, compare=False)

    @property
    def card(self) -> Result | Office | Table | None:
        """The one structure the reply carries (a channel renders it as a card), or None."""
        return self.result or self.office or self.table

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "choices": [c.to_json() for c in self.choices],
            "expecting": self.expecting,
            "topic": self.topic,
        }

    def to_record(self) -> dict[str, Any]:
        """Everything of the reply as JSON-ready data (a kept turn answer, an outbox row)."""
        record = {**self.to_json(), "kind": self.kind}
        if self.result is not None:
            record["result"] = asdict(self.result)
        if self.office is not None:
            record["office"] = asdict(self.office)
        if self.table is not None:
            record["table"] = asdict(self.table)
        if self.source is not None:
            record["source"] = asdict(self.source)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Reply:
        """The reply ``to_record`` wrote (records without cards, written before they existed, too)."""
        result = record.get("result")
        if result is not None:
            result = Result(
                **{
                    **result,
                    "details": tuple(Fact(**f) for f in result.get("details", ())),
                    "notes": tuple(result.get("notes", ())),
                }
            )
        office = record.get("office")
        table = record.get("table")
        if table is not None:
            table = Table(
                table["title"],
                tuple(table["columns"]),
                tuple(Row(tuple(r["cells"]), r.get("strong", False)) for r in table["rows"]),
                tuple(Fact(**f) for f in table.get("summary", ())),
                tuple(table.get("notes", ())),
            )
        source = record.get("source")
        return cls(
            record["text"],
            tuple(Choice(c["label"], c["value"]) for c in record.get("choices", ())),
            record.get("expecting"),
            record.get("topic"),
            kind=record.get("kind") or "answer",
            result=result,
            office=Office(**office) if office is not None else None,
            table=table,
            source=Source(**source) if source is not None else None,
        )

"""LINE Flex Message cards for replies that carry structure (a result, an office).

What it is: pure functions ``Reply -> FlexMessage`` built from line-bot-sdk v3's Flex models,
so the SDK checks every field while the card is made. A calculator's ``Result`` becomes a
bubble with the figure in large type and the tier under it; an ``Office`` becomes a bubble
with 「電話する」 (a ``tel:`` URI) and 「地図」 (a map search for the address); a ``Table`` (the
cost log) becomes a bubble of aligned rows, the rows that stand out in bold colour, and its
counts under it. The reply's plain
text is the ``altText`` (what the chat list, notifications and old LINE versions show), cut
to ``MAX_ALT_TEXT`` characters.

What it is not: it sends nothing and knows no quick replies (the caller puts them on the
last message of a batch, as for text messages). A reply without structure gets ``None``:
it goes out as text.
"""

from __future__ import annotations

from linebot.v3.messaging import (
    FlexBox,
    FlexBubble,
    FlexButton,
    FlexComponent,
    FlexMessage,
    FlexSeparator,
    FlexText,
    URIAction,
)

from handlers.messages import Fact, Office, Reply, Result, Source, Table

# LINE limits (https://developers.line.biz/en/reference/messaging-api/#flex-message): the
# altText is capped at 400 characters here (LINE once documented 400, now 1,500: the lower
# one is safe everywhere); an action label at 20; a URI at 1,000; one bubble's JSON at 30 KB.
MAX_ALT_TEXT = 400
MAX_ACTION_LABEL = 20
MAX_URI = 1000
MAX_BUBBLE_BYTES = 30_000

# Colours with at least 7:1 contrast on white, for readers with weak sight.
INK = "#111111"
MUTED = "#555555"
ACCENT = "#0B5394"

CALL_LABEL = "電話する"
MAP_LABEL = "地図"


def units(text: str) -> int:
    """Length as LINE counts it, conservatively: UTF-16 code units (an emoji may count twice)."""
    return len(text.encode("utf-16-le")) // 2


def cut_to(text: str, limit: int) -> str:
    """The longest beginning of ``text`` that leaves room for "…" within ``limit`` units."""
    out = ""
    for ch in text:
        if units(out + ch) > limit - 1:
            break
        out += ch
    return out


def alt_text(text: str, limit: int = MAX_ALT_TEXT) -> str:
    """The plain text cut to ``limit`` characters, at a line break when one is in the second half, then "…"."""
    if units(text) <= limit:
        return text
    cut = cut_to(text, limit)
    brk = cut.rfind("\n")
    if brk >= len(cut) // 2:
        cut = cut[:brk]
    return cut.rstrip() + "…"


def _text(text: str, size: str = "sm", color: str = INK, bold: bool = False, **extra: object) -> FlexText:
    return FlexText(text=text, size=size, color=color, weight="bold" if bold else None, wrap=True, **extra)


def _row(fact: Fact) -> FlexBox:
    """A labelled line: the label on the left (muted), the value on the right."""
    return FlexBox(
        layout="baseline",
        spacing="sm",
        margin="sm",
        contents=[
            _text(fact.label, "sm", MUTED, flex=2),
            _text(fact.value, "sm", INK, bold=True, flex=3),
        ],
    )


def _source(source: Source | None) -> list[FlexComponent]:
    return [_text(source.text, "xs", MUTED, margin="lg")] if source is not None else []


def _figure_size(figure: str) -> str:
    # The figure in the largest type that still fits one line of a mega bubble on a phone.
    if len(figure) <= 8:
        return "3xl"
    return "xxl" if len(figure) <= 11 else "xl"


def result_bubble(result: Result, source: Source | None = None) -> FlexBubble:
    """A calculator's result: label, the figure in large type, the tier, the rule, details, notes, source."""
    figure: list[FlexComponent] = [_text(result.figure, _figure_size(result.figure), ACCENT, bold=True, flex=0)]
    if result.unit:
        figure.append(_text(result.unit, "md", ACCENT, bold=True, flex=0, margin="sm"))
    body: list[FlexComponent] = [
        _text(result.label, "sm", MUTED),
        FlexBox(layout="baseline", margin="md", contents=figure),
    ]
    if result.subtitle:
        body.append(_text(result.subtitle, "md", INK, bold=True, margin="sm"))
    body.append(FlexSeparator(margin="lg"))
    if result.rule:
        body.append(_text("決め手", "xs", MUTED, margin="lg"))
        body.append(_text(result.rule, "sm", INK, margin="xs"))
    body += [_row(fact) for fact in result.details]
    body += [_text(note, "xs", MUTED, margin="md") for note in result.notes]
    body += _source(source)
    return FlexBubble(size="mega", body=FlexBox(layout="vertical", contents=body))


def office_bubble(office: Office, source: Source | None = None) -> FlexBubble:
    """An office: whom it serves, its name, address, phone and hours; 「電話する」 and 「地図」 below."""
    body: list[FlexComponent] = []
    if office.serves:
        body.append(_text(office.serves, "sm", MUTED))
    body.append(_text(office.name, "xl", INK, bold=True, margin="sm"))
    body.append(FlexSeparator(margin="lg"))
    facts = [Fact("所在地", office.address), Fact("電話", office.phone)]
    if office.fax:
        facts.append(Fact("FAX", office.fax))
    facts.append(Fact("受付", office.hours))
    body += [_row(fact) for fact in facts]
    body += _source(source)
    buttons = [
        FlexButton(style="primary", color=ACCENT, height="sm", action=URIAction(label=CALL_LABEL, uri=office.tel_uri)),
        FlexButton(style="secondary", height="sm", margin="sm", action=URIAction(label=MAP_LABEL, uri=office.map_url)),
    ]
    return FlexBubble(
        size="mega", body=FlexBox(layout="vertical", contents=body), footer=FlexBox(layout="vertical", contents=buttons)
    )


# A column's share of the width follows its longest cell, within these bounds: a long cell wraps
# rather than squeezing the month column of a phone-wide bubble.
MIN_COLUMN_WEIGHT = 1
MAX_COLUMN_WEIGHT = 8


def _weights(table: Table) -> list[int]:
    cells = [table.columns, *(row.cells for row in table.rows)]
    return [
        min(max(MIN_COLUMN_WEIGHT, *(len(c[i]) for c in cells)), MAX_COLUMN_WEIGHT) for i in range(len(table.columns))
    ]


def _table_row(cells: tuple[str, ...], weights: list[int], size: str, color: str, bold: bool = False) -> FlexBox:
    """One line of the table: the first cell on the left, the others right-aligned (figures, marks)."""
    contents: list[FlexComponent] = [
        # An empty cell is an empty box, which keeps its column's width: LINE refuses an empty text.
        _text(cell, size, color, bold=bold and i > 0, flex=weight, align="start" if i == 0 else "end")
        if cell
        else FlexBox(layout="vertical", flex=weight, contents=[])
        for i, (cell, weight) in enumerate(zip(cells, weights))
    ]
    return FlexBox(layout="horizontal", spacing="sm", margin="sm", contents=contents)


def table_bubble(table: Table, source: Source | None = None) -> FlexBubble:
    """A small table: the title, the headings, one aligned line per row, then the summary, notes and source."""
    weights = _weights(table)
    body: list[FlexComponent] = [
        _text(table.title, "md", INK, bold=True),
        _table_row(table.columns, weights, "xs", MUTED),
        FlexSeparator(margin="sm"),
    ]
    body += [_table_row(row.cells, weights, "md", ACCENT if row.strong else INK, bold=row.strong) for row in table.rows]
    if table.summary:
        body.append(FlexSeparator(margin="lg"))
        body += [_row(fact) for fact in table.summary]
    body += [_text(note, "xs", MUTED, margin="md") for note in table.notes]
    body += _source(source)
    return FlexBubble(size="mega", body=FlexBox(layout="vertical", contents=body))


def flex_message(reply: Reply) -> FlexMessage | None:
    """The reply as a Flex Message card (a result, an office or a table), or None when it carries no
    structure (it goes out as text).

    The reply's text is the ``altText``. No quick reply here: the caller adds it to the last message.
    """
    card = reply.card
    if card is None:
        return None
    bubble = (
        result_bubble(card, reply.source)
        if isinstance(card, Result)
        else office_bubble(card, reply.source)
        if isinstance(card, Office)
        else table_bubble(card, reply.source)
    )
    return FlexMessage(alt_text=alt_text(reply.text), contents=bubble)


__all__ = ["MAX_ALT_TEXT", "alt_text", "flex_message", "office_bubble", "result_bubble", "table_bubble"]

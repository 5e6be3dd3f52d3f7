"""Slack Block Kit for replies that carry structure (a result, an office).

What it is: pure functions ``Reply -> list of blocks`` built with slack_sdk's block models
(``slack_sdk.models.blocks``), whose ``to_dict()`` checks Slack's limits as the blocks are made.
A calculator's ``Result`` becomes a header with the figure (Slack's largest type), a section
with the tier and the rule, a section of fields for the details, and a context line for the
notes and the source; an ``Office`` becomes a header with its name and a section of fields
(address with a map link, phone, fax, hours); a ``Table`` (the cost log) becomes a header and
fields in two columns, one row per line, then its summary as fields and its notes as context.

What it is not: no buttons (``bot.channels.slack.render`` adds the reply's choices after these
blocks, as for any reply) and no sending. A reply without structure gets ``None``: it is
rendered as text sections. Every text here is escaped for mrkdwn.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from handlers.messages import Fact, Office, Reply, Result, Source, Table

# Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks).
HEADER_TEXT_LIMIT = 150
SECTION_TEXT_LIMIT = 3000
FIELDS_PER_SECTION = 10
FIELD_TEXT_LIMIT = 2000
CONTEXT_ELEMENTS = 10


def _escape(text: str) -> str:
    # The three characters Slack reserves for its markup (as bot.channels.slack.escape; repeated here
    # so that this module needs only handlers.messages and slack_sdk).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(fact: Fact, value: str | None = None) -> MarkdownTextObject:
    """A labelled field: the label in bold, the value under it (``value`` when already mrkdwn)."""
    return MarkdownTextObject(text=_cut(f"*{_escape(fact.label)}*\n{value or _escape(fact.value)}", FIELD_TEXT_LIMIT))


def _fields(fields: list[MarkdownTextObject]) -> list[Block]:
    """Sections of at most ten fields each (Slack shows them in two columns)."""
    return [SectionBlock(fields=fields[i : i + FIELDS_PER_SECTION]) for i in range(0, len(fields), FIELDS_PER_SECTION)]


def _context(lines: list[str]) -> list[Block]:
    """Small grey lines (notes, the source): one context block, its elements within Slack's ten."""
    if not lines:
        return []
    elements = [MarkdownTextObject(text=_cut(_escape(line), SECTION_TEXT_LIMIT)) for line in lines]
    if len(elements) > CONTEXT_ELEMENTS:  # join the rest into the last element
        rest = "\n".join(_escape(line) for line in lines[CONTEXT_ELEMENTS - 1 :])
        elements = elements[: CONTEXT_ELEMENTS - 1] + [MarkdownTextObject(text=_cut(rest, SECTION_TEXT_LIMIT))]
    return [ContextBlock(elements=elements)]


def _source(source: Source | None) -> list[str]:
    return [source.text] if source is not None else []


def result_blocks(result: Result, source: Source | None = None) -> list[Block]:
    """A calculator's result: the figure as the header, the tier and rule, fields, notes and source."""
    blocks: list[Block] = [
        HeaderBlock(
            text=PlainTextObject(
                text=_cut(f"{result.label}：{result.figure}{result.unit}", HEADER_TEXT_LIMIT), emoji=False
            )
        )
    ]
    lines = [f"*{_escape(result.subtitle)}*"] if result.subtitle else []
    if result.rule:
        lines.append(f"決め手：{_escape(result.rule)}")
    if lines:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_cut("\n".join(lines), SECTION_TEXT_LIMIT))))
    blocks += _fields([_field(fact) for fact in result.details])
    blocks += _context([*result.notes, *_source(source)])
    return blocks


def office_blocks(office: Office, source: Source | None = None) -> list[Block]:
    """An office: its name as the header, whom it serves, then address (with a map link), phone, fax, hours."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=_cut(office.name, HEADER_TEXT_LIMIT), emoji=False))]
    serves = f"{_escape(office.serves)}：" if office.serves else ""
    blocks.append(SectionBlock(text=MarkdownTextObject(text=f"{serves}*{_escape(office.name)}*")))
    where = f"{_escape(office.address)}\n<{office.map_url}|地図で見る>"
    fields = [_field(Fact("所在地", office.address), where), _field(Fact("電話", office.phone))]
    if office.fax:
        fields.append(_field(Fact("FAX", office.fax)))
    fields.append(_field(Fact("受付", office.hours)))
    blocks += _fields(fields)
    blocks += [DividerBlock(), *_context(_source(source))] if source is not None else []
    return blocks


def table_blocks(table: Table, source: Source | None = None) -> list[Block]:
    """A small table: the title as the header, then two fields a row (its first cell, then the others).

    Fields, not Slack's ``table`` block: fields show in two columns on every Slack client, phones
    included, which is all a table of months and amounts needs; a ``table`` block is newer, one per
    message, and shown after everything else.
    """
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=_cut(table.title, HEADER_TEXT_LIMIT), emoji=False))]
    cells: list[MarkdownTextObject] = []
    for row in table.rows:
        name, rest = _escape(row.cells[0]), _escape(" ".join(c for c in row.cells[1:] if c))
        cells.append(MarkdownTextObject(text=_cut(name, FIELD_TEXT_LIMIT)))
        value = f"*{rest}*" if row.strong and rest else rest or "－"
        cells.append(MarkdownTextObject(text=_cut(value, FIELD_TEXT_LIMIT)))
    heading = " ".join(c for c in table.columns[1:] if c)
    if heading:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=_cut(f"{_escape(table.columns[0])} ／ {_escape(heading)}", SECTION_TEXT_LIMIT)
                    )
                ]
            )
        )
    blocks += _fields(cells)
    if table.summary:
        blocks.append(DividerBlock())
        blocks += _fields([_field(fact) for fact in table.summary])
    blocks += _context([*table.notes, *_source(source)])
    return blocks


def card_blocks(reply: Reply) -> list[dict[str, Any]] | None:
    """The reply's structure (a result, an office or a table) as Block Kit blocks (dicts, checked by
    slack_sdk), or None when it has none."""
    card = reply.card
    if card is None:
        return None
    blocks = (
        result_blocks(card, reply.source)
        if isinstance(card, Result)
        else office_blocks(card, reply.source)
        if isinstance(card, Office)
        else table_blocks(card, reply.source)
    )
    return [block.to_dict() for block in blocks]


__all__ = ["card_blocks", "office_blocks", "result_blocks", "table_blocks"]

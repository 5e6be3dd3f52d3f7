"""The terminal channel (text) and the JSON console channel (one JSON line per line).

Text mode prints choices with letters — [a] はい [b] いいえ — and typing the letter (or the
label) clicks it. Letters, not numbers: a typed 「2」 at 「何か月ありますか？」 is two months, never
the second button. A reply with a calculator's result or an office is printed from its structure
as a short block — the figure, the tier, the rule, ``label：value`` lines with their colons in one
column, the source — as LINE and Slack show it as a card (``terminal_text``).
JSON mode follows CONTRACT.md: each stdin line is a JSON object
``{"user": ..., "text"|"choice": ...}`` or plain text, and exactly one JSON
line ``{"replies": [...]}`` is written and flushed for each.

The terminal is a channel without a network: each line is answered on the spot (``Bot.answer``,
which apologises for a failed turn), so it needs no turn runner and no outbox.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TextIO

from bot.core import Bot
from handlers.messages import Choice, Fact, IncomingMessage, Office, Reply, Result, Source

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: wide and fullwidth characters (kanji, kana, 「：」) take two.

    The standard library's East Asian Width is enough for the labels here (Japanese and ASCII, no
    emoji or combining marks), so no ``wcwidth`` dependency for it.
    """
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def aligned(facts: Sequence[Fact]) -> list[str]:
    """``label：value`` lines whose colons stand in one column; a value's further lines start under it."""
    width = max((_width(f.label) for f in facts), default=0)
    lines = []
    for fact in facts:
        pad = width - _width(fact.label)
        first, *rest = fact.value.split("\n")
        lines.append(fact.label + "　" * (pad // 2) + " " * (pad % 2) + "：" + first)
        lines += [" " * (width + 2) + more for more in rest]
    return lines


def result_block(result: Result, source: Source | None) -> list[str]:
    """A calculator's result: the figure with its label, the tier, the rule, the details, notes, source."""
    lines = [f"{result.label}：{result.figure}{result.unit}"]
    if result.subtitle:
        lines.append(result.subtitle)
    if result.rule:  # a rule of two sentences goes on under its first
        lines.append("決め手：" + result.rule.replace("\n", "\n" + " " * _width("決め手：")))
    lines += aligned(result.details)
    lines += [f"※{note}" for note in result.notes]
    return lines + ([source.text] if source is not None else [])


def office_block(office: Office, source: Source | None) -> list[str]:
    """An office: whom it serves and its name, then address, phone, fax and hours, aligned; the source."""
    lines = [f"{office.serves}：{office.name}" if office.serves else office.name]
    facts = [Fact("所在地", office.address), Fact("電話", office.phone)]
    if office.fax:
        facts.append(Fact("FAX", office.fax))
    lines += aligned([*facts, Fact("受付", office.hours)])
    return lines + ([source.text] if source is not None else [])


def terminal_text(reply: Reply) -> str:
    """What the terminal prints for a reply: its result or office as a short block, else its text."""
    if reply.result is not None:
        return "\n".join(result_block(reply.result, reply.source))
    if reply.office is not None:
        return "\n".join(office_block(reply.office, reply.source))
    return reply.text


def render_text(replies: Iterable[Reply]) -> tuple[str, list[Choice]]:
    """Replies as terminal text, with choices marked by letters."""
    lines: list[str] = []
    choices: list[Choice] = []
    for reply in replies:
        lines.append(terminal_text(reply))
        for choice in reply.choices:
            if len(choices) == len(LETTERS):
                break
            choices.append(choice)
            lines.append(f"  [{LETTERS[len(choices) - 1]}] {choice.label}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n", choices


def picked(text: str, choices: list[Choice]) -> str | None:
    """The value of the choice a typed line picks: its letter (a, Ａ) or its label; else None."""
    typed = unicodedata.normalize("NFKC", text).strip().lower()
    if len(typed) == 1 and typed in LETTERS[: len(choices)]:
        return choices[LETTERS.index(typed)].value
    for choice in choices:
        if typed and typed == unicodedata.normalize("NFKC", choice.label).strip().lower():
            return choice.value
    return None


def run_text(bot: Bot, stdin: TextIO, stdout: TextIO, user: str = "console") -> int:
    interactive = stdin.isatty()
    if interactive:
        stdout.write("指定難病の医療費助成についてのご相談チャットです。終了するには Ctrl-D（または「exit」）。\n\n")
    last_choices: list[Choice] = []
    while True:
        if interactive:
            stdout.write("あなた> ")
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        text = line.rstrip("\r\n")
        if interactive and text.strip() in {"exit", "quit"}:
            break
        choice = picked(text, last_choices)
        msg = IncomingMessage(channel="console", user=user, text=None if choice else text, choice=choice)
        replies = bot.answer(msg)  # a turn that fails is an apology: the chat stays alive
        out, last_choices = render_text(replies)
        stdout.write(("bot> " if interactive else "") + out + "\n")
        stdout.flush()
    return 0


def parse_line(line: str, default_user: str) -> IncomingMessage:
    """One stdin line of the JSON console as an incoming message."""
    text = line.rstrip("\r\n")
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            user = str(obj.get("user") or default_user)
            choice = obj.get("choice")
            if choice is not None:
                return IncomingMessage(channel="json", user=user, choice=str(choice))
            raw = obj.get("text")
            return IncomingMessage(channel="json", user=user, text="" if raw is None else str(raw))
    return IncomingMessage(channel="json", user=default_user, text=text)


def run_json(bot: Bot, stdin: TextIO, stdout: TextIO, user: str = "console") -> int:
    for line in stdin:
        replies = bot.answer(parse_line(line, user))
        stdout.write(json.dumps({"replies": [r.to_json() for r in replies]}, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0

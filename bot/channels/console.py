"""The terminal channel (text) and the JSON console channel (one JSON line per line).

Text mode prints choices with letters — [a] はい [b] いいえ — and typing the letter (or the
label) clicks it. Letters, not numbers: a typed 「2」 at 「何か月ありますか？」 is two months, never
the second button.
JSON mode follows CONTRACT.md: each stdin line is a JSON object
``{"user": ..., "text"|"choice": ...}`` or plain text, and exactly one JSON
line ``{"replies": [...]}`` is written and flushed for each.

The terminal is a channel without a network: each line is answered on the spot (``Bot.answer``,
which apologises for a failed turn), so it needs no turn runner and no outbox.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from typing import TextIO

from bot.core import Bot
from handlers.messages import Choice, IncomingMessage, Reply


LETTERS = "abcdefghijklmnopqrstuvwxyz"


def render_text(replies: Iterable[Reply]) -> tuple[str, list[Choice]]:
    """Replies as terminal text, with choices marked by letters."""
    lines: list[str] = []
    choices: list[Choice] = []
    for reply in replies:
        lines.append(reply.text)
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


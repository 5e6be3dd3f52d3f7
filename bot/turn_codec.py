"""How a turn is stored: ``(IncomingMessage, Address)`` pairs to and from the queue's payload, and
a turn's replies to and from its kept answer. Pure functions, no database.

Both lanes use it. Before: a channel (``bot.channels``) turned a request into pairs, and the
intake (``bot.intake``) encodes one user's pairs into a ``pending_turn`` row. After: the runner
(``bot.runner``) decodes the row it took, and keeps and replays answers with
``encode_replies`` / ``decode_replies``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from typing import Any

from handlers.messages import Address, IncomingMessage, LineAddress, Reply, SlackAddress
from nlp.privacy import looks_like_my_number, without_numbers

Turn = tuple[IncomingMessage, Address]

# Each channel's kind of address, by the ``channel`` it names; any other channel's is a bare ``Address``.
ADDRESS_TYPES: dict[str, type[Address]] = {"slack": SlackAddress, "line": LineAddress}


def by_user(turns: Iterable[Turn]) -> list[list[Turn]]:
    """Turns grouped per user, each group in the order received (a user's turns run in order)."""
    groups: dict[str, list[Turn]] = {}
    for msg, address in turns:
        groups.setdefault(msg.user_key, []).append((msg, address))
    return list(groups.values())


def encode_turns(turns: Sequence[Turn]) -> str:
    """One user's turns as stored in ``pending_turn.payload``: ASCII JSON, so that any text the
    platform sent (a lone surrogate, NUL) is storable as it is; the core makes it readable later.

    The My Number guard runs first (``without_my_number``): a number the core would refuse is
    never written, not even to the queue or its WAL."""
    return json.dumps([{"msg": _fields(without_my_number(m)), "address": _fields(a)} for m, a in turns])


def without_my_number(msg: IncomingMessage) -> IncomingMessage:
    """``msg`` as it may be recorded: when its text or choice holds a My Number, the choice goes,
    the text keeps its words without any number (``without_numbers``: an emergency written in the
    same message is still answered) and ``my_number`` tells the core to refuse it."""
    if msg.my_number or not (looks_like_my_number(msg.text or "") or looks_like_my_number(msg.choice or "")):
        return msg
    return dataclasses.replace(msg, text=without_numbers(msg.text) if msg.text else None, choice=None, my_number=True)


def _fields(frozen: Any) -> dict[str, Any]:
    """A flat dataclass's fields: ``dataclasses.asdict`` deep-copies each value, and on the ack's
    path that was a fifth of the request's CPU (bench/http_load.py --profile cpu)."""
    return {f.name: getattr(frozen, f.name) for f in dataclasses.fields(frozen)}


def decode_turns(payload: str) -> list[Turn]:
    """The inverse of ``encode_turns``."""
    return [(IncomingMessage(**raw["msg"]), decode_address(raw["address"])) for raw in json.loads(payload)]


def decode_address(raw: dict[str, Any]) -> Address:
    """An address as ``encode_turns`` stored it: its channel's kind (``ADDRESS_TYPES``) with the
    fields that kind has. A row recorded when one address type carried every channel's fields
    (each of them, None or False where unused) decodes the same way: the others are dropped."""
    kind = ADDRESS_TYPES.get(raw["channel"], Address)
    names = {f.name for f in dataclasses.fields(kind)}
    fields = {name: value for name, value in raw.items() if name in names}
    if fields.get("clicked") is not None:
        fields["clicked"] = tuple(fields["clicked"])
    return kind(**fields)


def encode_replies(replies: list[Reply]) -> list[dict[str, Any]]:
    """Replies as JSON-ready data, cards included (a kept turn answer)."""
    return [r.to_record() for r in replies]


def decode_replies(raw: list[dict[str, Any]]) -> list[Reply]:
    """The inverse of ``encode_replies``."""
    return [Reply.from_record(r) for r in raw]

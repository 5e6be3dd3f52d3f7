"""The channel-agnostic message types: what comes in, what goes out.

Channels convert their payloads into ``IncomingMessage`` and render
``list[Reply]``; nothing else crosses the boundary between a channel and the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    """

    channel: str
    user: str
    text: str | None = None
    choice: str | None = None
    event_id: str | None = None
    attachment: str | None = None

    @property
    def user_key(self) -> str:
        return f"{self.channel}:{self.user}"


@dataclass(frozen=True)
class Reply:
    """One message of the bot.

    Attributes:
        text: polite Japanese, already including its 出典 line when it states facts.
        choices: buttons offered after this message.
        expecting: the contract slot the bot waits for (see CONTRACT.md), or None.
        topic: the knowledge-base topic id this reply answers, or None.
    """

    text: str
    choices: tuple[Choice, ...] = ()
    expecting: str | None = None
    topic: str | None = None
    kind: str = field(default="answer", compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "choices": [c.to_json() for c in self.choices],
            "expecting": self.expecting,
            "topic": self.topic,
        }

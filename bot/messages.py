"""The channel-agnostic message types: what comes in, where it goes back, what goes out.

A channel turns a verified request into ``(IncomingMessage, Address)`` pairs and renders
``list[Reply]`` to an ``Address``; nothing else crosses the boundary between a channel and the
core. All three are frozen: a turn can be recorded (``bot.turns``), run on any thread, and run
again after a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Events that are not a message but that the core answers (``IncomingMessage.event``).
FOLLOW = "follow"  # a LINE user added the account (or unblocked it): the welcome
UNFOLLOW = "unfollow"  # a LINE user blocked the account: their data is deleted, nothing is sent
HOME_OPENED = "home-opened"  # a Slack user opened the App Home tab: the home text and menu


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
    """

    channel: str
    user: str
    text: str | None = None
    choice: str | None = None
    event_id: str | None = None
    attachment: str | None = None
    event: str | None = None

    @property
    def user_key(self) -> str:
        return f"{self.channel}:{self.user}"


@dataclass(frozen=True)
class Address:
    """Where a turn's replies go; only the channel's outbox reads the fields it needs.

    Attributes:
        channel: the channel whose outbox delivers ("slack", "line").
        user: the channel's user id.
        conversation: the conversation to post in (a Slack channel or DM id), or None for the
            user's direct messages (opened when needed).
        thread: the thread to answer in (Slack ``thread_ts``), or None.
        reply_token: LINE's reply token of the event, or None.
        home: True when the replies are the user's Slack App Home tab, not a message.
        clicked: the clicked Slack message, ``(channel, ts, label, blocks as JSON)``: its buttons
            give way to a note of what was chosen. None otherwise.
        pointer_url: a Slack ``response_url`` that gets an ephemeral pointer to the DM (a
            ``/nanbyo`` command typed elsewhere), or None.
    """

    channel: str
    user: str
    conversation: str | None = None
    thread: str | None = None
    reply_token: str | None = None
    home: bool = False
    clicked: tuple[str, str, str, str] | None = None
    pointer_url: str | None = None


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

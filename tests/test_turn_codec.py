"""A recorded turn outlives the code that recorded it: a turn acked just before an upgrade waits in
``pending_turn`` in the format of the version before, and the new turn process must answer it.

The payloads below are what ``encode_turns`` wrote when one ``Address`` carried every channel's
fields (Slack's conversation, thread, home, clicked message and pointer, LINE's reply token).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.bootstrap import build_bot, build_outboxes
from bot.config import Settings
from bot.storage.models import utcnow
from bot.storage.repositories import turn_queue
from bot.turn_codec import decode_turns, encode_turns
from bot.turns import PooledRunner
from handlers.messages import Address, IncomingMessage, LineAddress, SlackAddress
from tests.fakes.line_api import FakeLineApi
from tests.fakes.slack_api import FakeSlackAPI
from tests.test_line_e2e import REPLY
from tests.test_line_e2e import SECRET as LINE_SECRET
from tests.test_slack_e2e import TOKEN

# One user's turns as the version with a single address type recorded them.
BEFORE_SLACK_DM = (
    '[{"msg": {"channel": "slack", "user": "U1", "text": "\\u53d7\\u7d66\\u8005\\u8a3c\\u306a\\u304f\\u3057\\u305f",'
    ' "choice": null, "event_id": "Ev1", "attachment": null, "event": null, "my_number": false},'
    ' "address": {"channel": "slack", "user": "U1", "conversation": "D1", "thread": null, "reply_token": null,'
    ' "home": false, "clicked": null, "pointer_url": null}}]'
)
BEFORE_SLACK_CLICK = (
    '[{"msg": {"channel": "slack", "user": "U2", "text": null, "choice": "menu", "event_id": "Ev2",'
    ' "attachment": null, "event": null, "my_number": false},'
    ' "address": {"channel": "slack", "user": "U2", "conversation": "D2", "thread": "1.2", "reply_token": null,'
    ' "home": false, "clicked": ["D2", "1.1", "\\u30e1\\u30cb\\u30e5\\u30fc", "[]"], "pointer_url": null}}]'
)
BEFORE_SLACK_COMMAND = (
    '[{"msg": {"channel": "slack", "user": "U3", "text": "\\u52a9\\u6210", "choice": null, "event_id": "Ev3",'
    ' "attachment": null, "event": null, "my_number": false},'
    ' "address": {"channel": "slack", "user": "U3", "conversation": null, "thread": null, "reply_token": null,'
    ' "home": false, "clicked": null, "pointer_url": "https://hooks.slack.test/x"}}]'
)
BEFORE_SLACK_HOME = (
    '[{"msg": {"channel": "slack", "user": "U4", "text": null, "choice": null, "event_id": null,'
    ' "attachment": null, "event": "home-opened", "my_number": false},'
    ' "address": {"channel": "slack", "user": "U4", "conversation": null, "thread": null, "reply_token": null,'
    ' "home": true, "clicked": null, "pointer_url": null}}]'
)
BEFORE_LINE_TWO_EVENTS = (
    '[{"msg": {"channel": "line", "user": "L1", "text": "\\u3053\\u3093\\u306b\\u3061\\u306f", "choice": null,'
    ' "event_id": "E5", "attachment": null, "event": null, "my_number": false},'
    ' "address": {"channel": "line", "user": "L1", "conversation": null, "thread": null, "reply_token": "RT5",'
    ' "home": false, "clicked": null, "pointer_url": null}},'
    ' {"msg": {"channel": "line", "user": "L1", "text": "\\u66f4\\u65b0", "choice": null, "event_id": "E6",'
    ' "attachment": null, "event": null, "my_number": false},'
    ' "address": {"channel": "line", "user": "L1", "conversation": null, "thread": null, "reply_token": "RT5",'
    ' "home": false, "clicked": null, "pointer_url": null}}]'
)
# The fields the single address type had: a row written now must still be readable by it (a
# turn process of the version before, during a rolling upgrade, takes rows the new HTTP side wrote).
BEFORE_ADDRESS_FIELDS = {"channel", "user", "conversation", "thread", "reply_token", "home", "clicked", "pointer_url"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (BEFORE_SLACK_DM, SlackAddress("slack", "U1", conversation="D1")),
        (
            BEFORE_SLACK_CLICK,
            SlackAddress("slack", "U2", conversation="D2", thread="1.2", clicked=("D2", "1.1", "メニュー", "[]")),
        ),
        (BEFORE_SLACK_COMMAND, SlackAddress("slack", "U3", pointer_url="https://hooks.slack.test/x")),
        (BEFORE_SLACK_HOME, SlackAddress("slack", "U4", home=True)),
        (BEFORE_LINE_TWO_EVENTS, LineAddress("line", "L1", reply_token="RT5")),
    ],
)
def test_a_turn_recorded_before_the_address_types_split_is_read_as_its_channels_address(payload, expected):
    turns = decode_turns(payload)
    assert all(address == expected and type(address) is type(expected) for _, address in turns), turns
    assert turns[0][0].user == expected.user


@pytest.mark.parametrize(
    "address",
    [
        SlackAddress(
            "slack",
            "U1",
            conversation="C1",
            thread="1.5",
            clicked=("C1", "1.4", "はい", "[]"),
            pointer_url="https://hooks.slack.test/y",
        ),
        SlackAddress("slack", "U1", home=True),
        LineAddress("line", "L1", reply_token="RT"),
        Address("console", "me"),
    ],
)
def test_a_turn_recorded_now_reads_back_as_it_was_and_in_the_fields_the_version_before_knew(address):
    msg = IncomingMessage(address.channel, address.user, text="受給者証なくした", event_id="Ev9")
    payload = encode_turns([(msg, address)])
    assert decode_turns(payload) == [(msg, address)]
    assert type(decode_turns(payload)[0][1]) is type(address)
    assert set(json.loads(payload)[0]["address"]) <= BEFORE_ADDRESS_FIELDS


def test_a_slack_and_a_line_turn_recorded_before_an_upgrade_are_answered_after_it(
    database_url: str, fake_slack: FakeSlackAPI
) -> None:
    with FakeLineApi.start() as line_api:
        settings = Settings(
            database_url=database_url,
            slack_bot_token=TOKEN,
            slack_api_url=fake_slack.api_url,
            line_channel_secret=LINE_SECRET,
            line_channel_access_token=line_api.access_token,
            line_api_url=line_api.url,
        )
        bot = build_bot(settings)
        with turn_queue(bot.store, database_url).unit_of_work() as uow:  # acked by the version before
            for kind, user_key, payload in (
                ("slack", "slack:U1", BEFORE_SLACK_DM),
                ("line", "line:L1", BEFORE_LINE_TWO_EVENTS),
            ):
                uow.turns.add_pending_turn(
                    kind=kind, user_key=user_key, payload=payload, owner=None, now=utcnow() - timedelta(seconds=5)
                )
        runner = PooledRunner(bot, build_outboxes(settings), store=bot.store, database_url=database_url)
        try:
            [posted] = fake_slack.wait_for(
                "chat.postMessage", 1, timeout=30, where=lambda c: c.args.get("channel") == "D1"
            )
            replied = line_api.wait_for(REPLY, 1, timeout=30)
        finally:
            runner.close()
        assert "再交付" in posted.args["text"], posted.args["text"]
        assert replied[0].json["replyToken"] == "RT5", "the first event's answer used its reply token"
        with turn_queue(bot.store, database_url).unit_of_work() as uow:
            assert uow.turns.count_pending_turns() == 0, "both rows answered and deleted"

"""Conversation state lives in the database: a restart or a second process picks up where the user was."""

import json

from bot.bootstrap import build_bot
from handlers.messages import IncomingMessage
from tests.conftest import FIXED_NOW, run_cli


def test_dialog_survives_a_restart(settings):
    first = build_bot(settings, clock=lambda: FIXED_NOW)
    replies = first.handle(IncomingMessage("console", "U1", text="窓口を探す"))
    assert replies[-1].expecting == "municipality"
    del first
    second = build_bot(settings, clock=lambda: FIXED_NOW)  # a new engine on the same file
    replies = second.handle(IncomingMessage("console", "U1", text="富岡市"))
    assert "富岡保健福祉事務所" in replies[-1].text


def test_a_second_process_continues_the_dialog(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    one = run_cli(["chat", "--json", "--user", "U5"], stdin="窓口を探す\n", env=env)
    assert json.loads(one.stdout)["replies"][-1]["expecting"] == "municipality"
    two = run_cli(["chat", "--json", "--user", "U5"], stdin="藤岡\n", env=env)
    assert "藤岡保健福祉事務所" in json.loads(two.stdout)["replies"][-1]["text"]


def test_users_do_not_share_state(chat, bot):
    chat.say("窓口を探す")
    other = bot.handle(IncomingMessage("console", "U2", text="安中市"))
    assert all(r.expecting != "municipality" for r in other)


def test_same_event_delivered_twice_is_answered_once(bot):
    msg = IncomingMessage("slack", "U1", text="受給者証をなくした", event_id="Ev1")
    assert bot.handle(msg)
    assert bot.handle(msg) == []


def test_cancel_leaves_the_dialog(chat):
    chat.say("窓口を探す")
    replies = chat.say("やめる")
    assert all(r.expecting is None for r in replies)
    replies = chat.say("太田市の窓口")
    assert "太田保健福祉事務所" in chat.text(replies)


def test_delete_my_data_removes_the_state(chat, bot):
    chat.say("窓口を探す")
    chat.say("沼田市")
    replies = chat.say("データを削除")
    assert replies[-1].expecting == "confirm_delete"
    chat.click("yes")
    with bot.store.unit_of_work() as uow:
        state = uow.conversations.load_state("console:U1")
    assert state.version == 0 and state.profile == {}

"""The monthly cost log through the chat: opt in, a year in a few messages, a correction, the table,
the one notice through the dispatcher with the cap before and after, the nudge, and deletion."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from bot.bootstrap import build_bot
from bot.reminders import dispatch_due
from bot.storage.models import CostLogEntry, CostLogNotice
from handlers.cost_log import nudge_plan
from handlers.messages import IncomingMessage
from tests.conftest import Chat
from tests.test_reminders import RecordingSender

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2027, 6, 10, 10, 0, tzinfo=TOKYO)


@pytest.fixture()
def bot(settings):
    return build_bot(settings, clock=lambda: NOW)


@pytest.fixture()
def chat(bot) -> Chat:
    return Chat(bot, channel="json")


def opt_in(chat: Chat, nudge: str = "はい") -> None:
    chat.say("医療費の記録をつけたい")
    chat.say("はい")
    replies = chat.say(nudge)
    assert replies[-1].expecting == "monthly_costs"


def rows(bot, table):
    with Session(bot.store.engine) as s:
        return list(s.exec(select(table)).all())


def run(bot, now=NOW, sender=None):
    sender = sender or RecordingSender()
    dispatch_due(bot.store, now, {"json": sender}, worker_id="w1")
    return sender


@pytest.mark.parametrize(
    "phrase", ["医療費の記録をつけたい", "毎月の医療費を記録しておきたい", "高額かつ長期に届いたら教えてほしい"]
)
def test_cost_log_phrases_start_the_opt_in(chat, phrase):
    replies = chat.say(phrase)
    assert replies[-1].expecting == "costlog_consent"
    assert "月と金額だけ" in replies[-1].text


def test_the_menu_offers_the_cost_log(chat):
    menu = chat.say("メニュー")[-1]
    assert "医療費を記録" in menu.text
    entry = next(c for c in menu.choices if c.label == "医療費の記録")
    assert chat.click(entry.value)[-1].expecting == "costlog_consent"
    chat.say("はい")
    chat.say("いいえ")
    chat.say("5月 40,000円")
    # Someone who already keeps the log goes straight to the months.
    assert chat.click(entry.value)[-1].expecting == "monthly_costs"


def test_declining_stores_nothing(bot, chat):
    chat.say("医療費の記録をつけたい")
    replies = chat.say("いいえ")
    assert "記録はしません" in chat.text(replies)
    assert rows(bot, CostLogEntry) == [] and rows(bot, CostLogNotice) == []


def test_a_year_in_a_few_messages_counts_and_projects(bot, chat):
    opt_in(chat)
    first = chat.text(chat.say("7月 52,000円、8月 61,000円、9月 40000、10月 7万円"))
    assert "記録しました：7月 52,000円、8月 61,000円、9月 40,000円、10月 70,000円" in first
    assert "高額かつ長期（50,000円を超えた月）：3か月（あと3か月）" in first
    second = chat.text(chat.say("11月 5万、12月 60000、1月 55000、2月 30000"))
    # 11月 is exactly 50,000円: not over the line.
    assert "高額かつ長期（50,000円を超えた月）：5か月（あと1か月）" in second
    # The rest of the year, typed later without opening the dialog (as after a nudge).
    third = chat.text(chat.say("3月 20000 4月 30000 5月 45000 6月 10000"))
    assert "記録しました：3月 20,000円、4月 30,000円、5月 45,000円、6月 10,000円" in third
    assert len(rows(bot, CostLogEntry)) == 12
    assert "出典：" in third


def test_correcting_a_month_replaces_it_and_the_sixth_month_schedules_one_notice(bot, chat):
    opt_in(chat, nudge="いいえ")
    chat.say("7月 52,000円、8月 61,000円、10月 70000、12月 60000、1月 55000、11月 5万")
    assert not [n for n in rows(bot, CostLogNotice) if n.kind == "high-cost"]
    assert chat.say("間違えた")[-1].expecting == "monthly_costs"
    text = chat.text(chat.say("11月 50,001円"))
    assert "11月：50,000円 → 50,001円" in text
    assert "高額かつ長期の条件に届きました" in text
    assert [e.amount for e in rows(bot, CostLogEntry) if e.month.month == 11] == [50_001]
    chat.say("11月 50,002円")  # still met: no second notice
    assert len([n for n in rows(bot, CostLogNotice) if n.kind == "high-cost"]) == 1


def test_the_notice_goes_out_once_through_the_dispatch_with_the_cap_before_and_after(bot, chat):
    # The copay dialog leaves the tier in the profile: 一般所得2.
    for text in (
        "自己負担の上限額を計算したい",
        "いいえ",
        "いいえ",
        "課税されてます",
        "7万1千円",
        "ない",
        "いない",
        "わからない",
    ):
        chat.say(text)
    opt_in(chat, nudge="いいえ")
    chat.say("1月 51000、2月 51000、3月 51000、4月 51000、5月 51000、6月 51000")
    night = run(bot, now=datetime(2027, 6, 10, 21, 0, tzinfo=TOKYO))
    assert night.sent == []  # quiet hours
    sender = run(bot)
    notices = [t for _u, t, kind, _k in sender.sent if kind == "costlog-high-cost"]
    assert len(notices) == 1
    assert "20,000円 → 10,000円" in notices[0] and "一般所得2" in notices[0]
    assert "変更申請" in notices[0] and "管理票" in notices[0] and "出典：" in notices[0]
    assert run(bot).sent == []  # once


def test_paid_amounts_are_kept_apart_and_the_total_is_asked_for(bot, chat):
    opt_in(chat, nudge="いいえ")
    text = chat.text(chat.say("5月 自己負担 10,000円"))
    assert "総額" in text and "管理票" in text and "計算できない" in text
    assert [(e.kind, e.amount) for e in rows(bot, CostLogEntry)] == [("paid", 10_000)]
    assert "総額未入力（自己負担 10,000円）" in chat.text(chat.say("医療費の記録を見せて"))


def test_the_table_reads_on_a_phone(chat):
    opt_in(chat, nudge="いいえ")
    chat.say("4月 52,000円、5月 33,331円、6月 33,330円")
    replies = chat.say("医療費の記録を見せて")
    text = replies[0].text
    assert "27年 4月" in text and "52,000円 ◎" in text and "33,331円 ○" in text
    assert "33,330円 ○" not in text  # exactly the line is not over it
    assert max(len(line) for line in text.splitlines() if not line.startswith("出典")) <= 40


@pytest.mark.parametrize("rude", ["", "😀", "あ" * 10_000, "2027年3月31日", "5月 わからない", "13月 5万"])
def test_rude_answers_are_asked_again_kindly(chat, rude):
    opt_in(chat, nudge="いいえ")
    replies = chat.say(rude)
    assert replies[-1].expecting in ("monthly_costs", None)


def test_the_nudge_asks_for_last_month_at_a_decent_hour_and_stops(bot, chat):
    opt_in(chat, nudge="はい")
    chat.say("5月 40,000円")
    first = nudge_plan(NOW)[0]
    assert first[0].month == 6 and first[1] == datetime(2027, 7, 3, 9, 0, tzinfo=TOKYO)
    assert run(bot).sent == []  # not before its day
    sender = run(bot, now=datetime(2027, 7, 3, 9, 30, tzinfo=TOKYO))
    assert [kind for *_x, kind, _k in sender.sent] == ["costlog-nudge"]
    assert "2027年6月" in sender.sent[0][1]
    assert run(bot, now=datetime(2027, 7, 3, 9, 31, tzinfo=TOKYO)).sent == []
    assert "止めました" in chat.text(chat.say("医療費のお知らせをやめて"))
    assert run(bot, now=datetime(2027, 8, 3, 9, 30, tzinfo=TOKYO)).sent == []


def test_the_calculators_use_the_logged_months(chat):
    opt_in(chat, nudge="いいえ")
    chat.say("1月 51000、2月 51000、3月 51000、4月 20000、5月 34000、6月 10000")
    replies = chat.say("軽症高額に当てはまるか確かめたい")  # no question: the months come from the log
    assert "医療費の記録から数えました" in chat.text(replies)
    assert "軽症高額の条件を満たしています" in chat.text(replies)
    chat.say("自己負担の上限額を計算したい")
    for answer in ("いいえ", "いいえ", "課税されてます", "7万1千円"):
        replies = chat.say(answer)
    assert replies[-1].expecting == "household_caps"  # the months over 50,000円 were not asked


def test_delete_my_data_removes_the_log_and_its_messages(bot, chat):
    opt_in(chat, nudge="はい")
    chat.say("1月 51000、2月 51000、3月 51000")
    assert rows(bot, CostLogEntry) and rows(bot, CostLogNotice)
    chat.say("データを削除")
    assert "削除しました" in chat.text(chat.click("yes"))
    assert rows(bot, CostLogEntry) == [] and rows(bot, CostLogNotice) == []
    # Months typed afterwards are not logged: the consent went with the data.
    chat.say("4月 60000")
    assert rows(bot, CostLogEntry) == []


def test_another_user_does_not_see_the_log(bot, chat):
    opt_in(chat, nudge="いいえ")
    chat.say("4月 60000")
    other = bot.handle(IncomingMessage("json", "U2", text="医療費の記録を見せて"))
    assert "記録はまだありません" in other[0].text


def test_two_dispatchers_send_a_notice_once_on_both_databases(store):
    from datetime import date

    with store.unit_of_work() as uow:
        repo = uow.cost_log
        for month in range(1, 7):
            repo.record("json:U9", date(2027, month, 1), 51_000, "total")
        assert repo.schedule_notice("json:U9", "json", "high-cost", date(2027, 6, 1), NOW)
        assert not repo.schedule_notice("json:U9", "json", "high-cost", date(2027, 6, 1), NOW)  # once
    first, second = RecordingSender(), RecordingSender()
    dispatch_due(store, NOW, {"json": first}, worker_id="w1")
    dispatch_due(store, NOW, {"json": second}, worker_id="w2")
    assert [kind for *_x, kind, _k in first.sent + second.sent] == ["costlog-high-cost"]
    assert "6か月" in first.sent[0][1]


def test_a_sentence_of_consent_is_a_yes(chat) -> None:
    chat.say("医療費の記録をつけたい")
    assert "お知らせを送りましょうか" in chat.text(chat.say("うん、おねがい"))

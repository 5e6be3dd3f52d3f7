"""Renewal reminders: registered in chat, sent at 09:00 Japan time on their day, exactly once.

SQLite files in tmp_path; PostgreSQL races are in test_reminders_postgres.py.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.bootstrap import build_bot
from bot.reminders import (
    LEASE,
    MAX_ATTEMPTS,
    ConsoleSender,
    dispatch_due,
    parse_now,
    retry_delay,
    start_scheduler,
)
from bot.storage.models import Reminder, ReminderDelivery
from handlers.messages import IncomingMessage, Reply
from handlers.reminders import REMINDER_FORM, plan_marks
from tests.conftest import FIXED_NOW, TOKYO, Chat, run_cli

EXPIRY = date(2027, 3, 31)  # marks: 60 → 2027-01-30, 30 → 2027-03-01, 7 → 2027-03-24


def jst(y: int, m: int, d: int, h: int = 9, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=TOKYO)


# --- wiring -----------------------------------------------------------------------------------


@dataclass
class RecordingSender:
    """Remembers every message; fails while ``failures`` > 0 (or always with ``always_fail``)."""

    sent: list[tuple[str, str, str, str]] = field(default_factory=list)
    failures: int = 0
    always_fail: bool = False
    calls: int = 0

    def send(self, user: str, text: str, kind: str, key: str) -> None:
        self.calls += 1
        if self.always_fail or self.failures > 0:
            self.failures -= 1
            raise ConnectionError("channel down")
        self.sent.append((user, text, kind, key))

    @property
    def keys(self) -> list[str]:
        return [k for *_, k in self.sent]


def make_bot(settings, now: datetime):
    return build_bot(settings, clock=lambda: now)


def register(
    bot, date_text: str = "2027年3月31日", user: str = "U1", channel: str = "json", municipality: str | None = "太田市"
) -> list[Reply]:
    chat = Chat(bot, user=user, channel=channel)
    chat.say("更新を忘れないように通知して")
    chat.say(date_text)
    replies = chat.click("yes")
    if municipality is not None and replies[-1].expecting == "municipality":
        replies = chat.say(municipality)
    return replies


def deliveries(bot) -> list[ReminderDelivery]:
    with Session(bot.store.engine) as s:
        return list(s.exec(select(ReminderDelivery).order_by(ReminderDelivery.due_at)).all())


def reminders(bot) -> list[Reminder]:
    with Session(bot.store.engine) as s:
        return list(s.exec(select(Reminder)).all())


def run(bot, now: datetime, sender: RecordingSender, channel: str = "json", worker: str = "w1", **kw):
    return dispatch_due(bot.store, now, {channel: sender}, worker_id=worker, **kw)


# --- registering in chat ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["2027年3月31日", "令和9年3月31日", "R9.3.31", "2027/3/31", "令和九年三月三十一日"])
def test_every_date_form_registers_the_same_reminder(bot, text):
    chat = Chat(bot, channel="json")
    replies = chat.say("更新を忘れないように通知して")
    assert replies[-1].expecting == "expiry_date"
    replies = chat.say(text)
    assert replies[-1].expecting == "expiry_date"  # the repeat-back waits for the same slot
    assert "2027年3月31日" in replies[-1].text and "令和9年3月31日" in replies[-1].text
    assert {c.value for c in replies[-1].choices} >= {"yes", "no"}
    replies = chat.click("yes")
    assert replies[-1].expecting == "municipality"
    replies = chat.say("太田市")
    assert replies[-1].expecting is None
    assert "登録しました" in replies[-1].text
    [row] = reminders(bot)
    assert (row.expiry_date, row.channel, row.user, row.municipality, row.active) == (
        EXPIRY,
        "json",
        "U1",
        "太田市",
        True,
    )
    assert [(d.offset_days, d.due_at.astimezone(TOKYO), d.status) for d in deliveries(bot)] == [
        (60, jst(2027, 1, 30), "pending"),
        (30, jst(2027, 3, 1), "pending"),
        (7, jst(2027, 3, 24), "pending"),
    ]


@pytest.mark.parametrize(
    "start",
    [
        "更新を忘れないように通知して",
        "更新のお知らせ",
        "期限が来たら教えて",
        "リマインダー",
        "リマインダーを設定したい",
        "期限が近づいたら知らせてほしい",
    ],
)
def test_reminder_phrases_start_the_dialog(chat, start):
    assert chat.say(start)[-1].expecting == "expiry_date"


def test_menu_button_starts_the_dialog(chat):
    assert chat.click("start:reminder")[-1].expecting == "expiry_date"


@pytest.mark.parametrize(
    "question",
    [
        "更新の書類っていつ届く？",
        "更新のお知らせはいつ届く？",
        "有効期限が過ぎてしまったらどうなる",
        "毎年手続きが必要なの？",
    ],
)
def test_renewal_questions_still_reach_the_faq(chat, question):
    replies = chat.say(question)
    assert replies[-1].topic == "renewal"
    assert replies[-1].expecting is None


def test_no_at_the_repeat_back_asks_the_date_again(bot):
    chat = Chat(bot)
    chat.say("更新のお知らせ")
    chat.say("2027/3/13")
    replies = chat.click("no")
    assert replies[-1].expecting == "expiry_date"
    assert "有効期限" in replies[-1].text and not replies[-1].choices[0].value == "yes"
    replies = chat.say("2027/3/31")
    assert "2027年3月31日" in replies[-1].text
    chat.say("はい")
    chat.say("太田市")
    assert [r.expiry_date for r in reminders(bot)] == [EXPIRY]


def test_a_new_date_typed_at_the_repeat_back_corrects_it(bot):
    chat = Chat(bot)
    chat.say("更新のお知らせ")
    chat.say("2027/3/13")
    replies = chat.say("2027年3月31日")  # not はい／いいえ: the corrected date itself
    assert "2027年3月31日" in replies[-1].text and replies[-1].expecting == "expiry_date"
    assert "yes" in [c.value for c in replies[-1].choices], "the new date is confirmed before it is used"
    chat.say("はい")
    chat.say("太田市")
    assert [r.expiry_date for r in reminders(bot)] == [EXPIRY]


@pytest.mark.parametrize("rude", ["", "あ" * 10_000, "🙂🙂", "70000", "3月", "わからない", "2035/3/31"])
def test_unreadable_dates_are_asked_again_kindly(chat, rude):
    chat.say("更新のお知らせ")
    replies = chat.say(rude)
    assert replies[-1].expecting == "expiry_date"
    assert replies[-1].text  # a kind re-ask, never an error
    replies = chat.say("R9.3.31")
    assert "令和9年3月31日" in replies[-1].text


def test_municipality_is_not_asked_when_known(bot):
    chat = Chat(bot)
    chat.say("人と話したい")
    chat.say("沼田市")
    chat.say("更新のお知らせ")
    chat.say("2027/3/31")
    replies = chat.click("yes")
    assert replies[-1].expecting is None and "登録しました" in replies[-1].text
    assert reminders(bot)[0].municipality == "沼田市"


def test_municipality_given_is_remembered_for_later(bot):
    register(bot, channel="console", municipality="草津町")
    with bot.store.unit_of_work() as uow:
        assert uow.conversations.load_state("console:U1").profile["municipality"] == "草津町"


def test_an_unknown_municipality_still_registers_and_names_where_to_ask(bot):
    chat = Chat(bot, channel="json")
    chat.say("更新のお知らせ")
    chat.say("2027/3/31")
    chat.click("yes")
    replies = chat.click("unknown")
    assert "登録しました" in replies[-1].text and reminders(bot)[0].municipality is None
    sender = RecordingSender()
    run(bot, jst(2027, 1, 30, 9), sender)
    assert "保健福祉事務所" in sender.sent[0][1]


def test_every_offered_choice_parses(bot):
    from handlers.parsers import Invalid
    from handlers.ports import UserState
    from nlp.text import Text

    with bot.store.unit_of_work() as uow:
        ctx = bot.context(uow, IncomingMessage("json", "U1"), UserState(user_key="json:U1"), FIXED_NOW)
    offered = [(slot, choice) for slot in REMINDER_FORM.slots for choice in slot.choices]
    assert {slot.name for slot, _ in offered} == {"confirm_expiry", "municipality"}
    for slot, choice in offered:
        assert not isinstance(slot.parse(Text(choice.value), ctx), Invalid), (slot.name, choice.value)


def test_a_past_date_is_explained_and_nothing_is_scheduled(bot):
    chat = Chat(bot)
    chat.say("更新のお知らせ")
    replies = chat.say("2026年10月31日")
    assert "すでに過ぎています" in replies[-1].text
    chat.click("yes")
    replies = chat.say("前橋市")
    text = Chat.text(replies)
    assert "新規" in text and "新規申請" in text
    assert "027-220-5785" in text  # the user's office, to call now
    assert "出典" in text
    assert reminders(bot) == [] and deliveries(bot) == []


def test_the_last_day_still_gets_a_reminder_at_once(settings):
    bot = make_bot(settings, jst(2027, 3, 31, 10))
    replies = register(bot)
    assert "今すぐ" in replies[-1].text
    sender = RecordingSender()
    run(bot, jst(2027, 3, 31, 10, 1), sender)
    assert [k.rsplit("-", 1)[1] for k in sender.keys] == ["7"]
    assert "今日が有効期間の最後の日" in sender.sent[0][1]


# --- sending: the right day, the right hour, once ---------------------------------------------


def test_each_mark_is_sent_once_at_nine_on_its_day(bot):
    register(bot)
    sender = RecordingSender()
    assert run(bot, jst(2027, 1, 29, 12), sender).sent == 0  # the day before
    assert run(bot, jst(2027, 1, 30, 7), sender).sent == 0  # 07:00: quiet hours
    assert run(bot, jst(2027, 1, 30, 8, 59), sender).sent == 0
    assert run(bot, jst(2027, 1, 30, 9), sender).sent == 1
    assert run(bot, jst(2027, 1, 30, 9), sender).sent == 0  # the same moment again
    assert run(bot, jst(2027, 1, 30, 15), sender).sent == 0
    assert run(bot, jst(2027, 3, 1, 9, 1), sender).sent == 1
    assert run(bot, jst(2027, 3, 24, 9, 30), sender).sent == 1
    assert run(bot, jst(2027, 3, 30, 9), sender).sent == 0
    assert [k for k in sender.keys] == [f"reminder-{reminders(bot)[0].id}-{o}" for o in (60, 30, 7)]
    assert [s for *_, s in [(d.offset_days, d.status) for d in deliveries(bot)]] == ["sent"] * 3


def test_a_run_at_nine_pm_sends_nothing_and_the_next_morning_catches_up(bot):
    register(bot)
    sender = RecordingSender()
    summary = run(bot, jst(2027, 1, 30, 21), sender)
    assert summary.sent == 0 and summary.quiet and "quiet hours" in summary.line()
    assert run(bot, jst(2027, 1, 30, 20), sender).sent == 0  # 20:00 is already quiet
    assert run(bot, jst(2027, 1, 31, 9), sender).sent == 1
    assert len(sender.sent) == 1


def test_a_run_at_seven_fifty_nine_pm_still_sends(bot):
    register(bot)
    sender = RecordingSender()
    assert run(bot, jst(2027, 1, 30, 19, 59), sender).sent == 1


def test_the_reminder_says_what_to_prepare_where_to_call_and_its_source(bot):
    register(bot)
    sender = RecordingSender()
    run(bot, jst(2027, 1, 30, 9), sender)
    [(user, text, kind, key)] = sender.sent
    assert (user, kind) == ("U1", "reminder")
    assert "あと60日" in text and "2027年3月31日" in text
    first_item = text.split("1. ", 1)[1].splitlines()[0]
    assert "難病指定医" in first_item and "臨床調査個人票" in first_item  # booking the doctor comes first
    assert "新規" in text
    assert "太田保健福祉事務所" in text and "0276-31-8243" in text
    assert "出典：" in text


def test_a_dispatcher_that_was_down_sends_only_the_latest_mark(bot):
    register(bot)
    sender = RecordingSender()
    summary = run(bot, jst(2027, 3, 2, 10), sender)  # 60 and 30 both passed while it was down
    assert summary.sent == 1 and summary.skipped == 1
    assert [k.rsplit("-", 1)[1] for k in sender.keys] == ["30"]


def test_registering_after_a_mark_sends_only_the_latest_missed_one(settings):
    bot = make_bot(settings, jst(2027, 3, 5, 22))  # 60 and 30 days before have passed
    replies = register(bot)
    assert "このあとお送りします" in replies[-1].text
    assert [(d.offset_days, d.status) for d in deliveries(bot)] == [(60, "skipped"), (30, "pending"), (7, "pending")]
    sender = RecordingSender()
    assert run(bot, jst(2027, 3, 5, 22, 1), sender).sent == 0  # registered at night: next morning
    assert run(bot, jst(2027, 3, 6, 9), sender).sent == 1
    assert run(bot, jst(2027, 3, 6, 9, 1), sender).sent == 0
    assert run(bot, jst(2027, 3, 24, 9), sender).sent == 1
    assert [k.rsplit("-", 1)[1] for k in sender.keys] == ["30", "7"]


def test_plan_marks_skips_older_missed_marks():
    plan = plan_marks(EXPIRY, (60, 30, 7), jst(2027, 3, 24, 9))  # exactly at the 7-day mark
    assert [(m.offset_days, m.status) for m in plan] == [(60, "skipped"), (30, "skipped"), (7, "pending")]


def test_registering_the_same_date_again_does_not_resend(bot, settings):
    register(bot)
    sender = RecordingSender()
    run(bot, jst(2027, 1, 30, 9), sender)
    later = make_bot(settings, jst(2027, 2, 2, 10))
    register(later, municipality=None)  # the municipality is known now: not asked
    run(later, jst(2027, 2, 2, 10, 1), sender)
    assert len(sender.sent) == 1
    assert [(d.offset_days, d.status) for d in deliveries(bot)] == [(60, "sent"), (30, "pending"), (7, "pending")]


def test_a_new_date_replaces_the_previous_reminder(bot):
    register(bot)
    chat = Chat(bot, channel="json")
    chat.say("更新のお知らせ")
    replies = chat.say("2027/4/30")
    replies = chat.click("yes")
    assert "2027年3月31日" in replies[-1].text and "取り消しました" in replies[-1].text
    rows = {r.expiry_date: r.active for r in reminders(bot)}
    assert rows == {EXPIRY: False, date(2027, 4, 30): True}
    sender = RecordingSender()
    run(bot, jst(2027, 1, 30, 9), sender)  # the old 60-day mark
    assert sender.sent == []


def test_a_channel_without_a_sender_keeps_its_reminder_pending(bot):
    register(bot, channel="line")
    json_only = RecordingSender()
    summary = run(bot, jst(2027, 1, 30, 9), json_only)
    assert summary.sent == 0 and summary.no_sender == 1 and "waiting for a channel" in summary.line()
    line = RecordingSender()
    assert run(bot, jst(2027, 1, 30, 9, 1), line, channel="line").sent == 1
    assert line.keys == [f"reminder-{reminders(bot)[0].id}-60"]


def test_now_must_be_timezone_aware(bot):
    with pytest.raises(ValueError):
        dispatch_due(bot.store, datetime(2027, 1, 30, 9), {}, worker_id="w")


# --- crashes and failures ------------------------------------------------------------------------


def test_a_claim_whose_dispatcher_died_is_sent_once_after_the_lease(bot):
    register(bot)
    t = jst(2027, 1, 30, 9)
    with bot.store.unit_of_work() as uow:  # a dispatcher claims, commits, then dies before sending
        claimed = uow.reminders.claim_deliveries(
            now=t, stale_before=t - LEASE, claimed_at=t, worker_id="dead", channels=["json"], batch=10
        )
    assert len(claimed) == 1
    sender = RecordingSender()
    assert run(bot, t + timedelta(minutes=5), sender).sent == 0  # still leased: not lost, not doubled
    assert run(bot, t + LEASE + timedelta(minutes=1), sender).sent == 1
    assert run(bot, t + LEASE + timedelta(minutes=2), sender).sent == 0
    assert len(sender.sent) == 1
    [d] = [d for d in deliveries(bot) if d.offset_days == 60]
    assert d.status == "sent" and d.claimed_by == "w1"


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing catches it."""


def test_a_crash_during_send_is_retried_once_with_the_same_key(bot):
    register(bot)
    t = jst(2027, 1, 30, 9)

    class Dying:
        def send(self, user, text, kind, key):
            raise Crash

    with pytest.raises(Crash):
        dispatch_due(bot.store, t, {"json": Dying()}, worker_id="dying")
    sender = RecordingSender()
    assert run(bot, t + timedelta(minutes=1), sender).sent == 0
    assert run(bot, t + LEASE + timedelta(seconds=1), sender).sent == 1
    assert sender.keys == [f"reminder-{reminders(bot)[0].id}-60"]


def test_a_send_the_database_could_not_record_is_recorded_next_run_not_sent_again(bot, monkeypatch):
    """The database goes away between a send and its mark: the next run records it, nobody resends."""
    from sqlalchemy.exc import OperationalError

    from bot.storage.reminders import Reminders

    register(bot)
    t = jst(2027, 1, 30, 9)
    real_mark_sent = Reminders.mark_sent
    outage = {"marks_refused": 0}

    def mark_sent_during_outage(self, *args, **kwargs):
        if outage["marks_refused"] == 0:
            outage["marks_refused"] += 1
            raise OperationalError("UPDATE reminder_delivery", {}, Exception("database is down"))
        return real_mark_sent(self, *args, **kwargs)

    monkeypatch.setattr(Reminders, "mark_sent", mark_sent_during_outage)
    sender = RecordingSender()
    with pytest.raises(OperationalError):
        run(bot, t, sender)
    assert len(sender.sent) == 1
    assert [d.status for d in deliveries(bot) if d.offset_days == 60] == ["claimed"]

    assert run(bot, t + timedelta(minutes=1), sender).sent == 0  # the database is back
    assert [d.status for d in deliveries(bot) if d.offset_days == 60] == ["sent"]
    assert run(bot, t + LEASE + timedelta(minutes=1), sender).sent == 0, "not sent again after the lease"
    assert len(sender.sent) == 1


def test_a_failing_sender_is_retried_with_backoff_and_never_duplicated(bot):
    register(bot)
    t = jst(2027, 1, 30, 9)
    sender = RecordingSender(failures=2)
    assert run(bot, t, sender).failed == 1
    [d] = [d for d in deliveries(bot) if d.offset_days == 60]
    assert (d.status, d.attempts, d.last_error) == ("pending", 1, "ConnectionError")
    assert d.next_attempt_at.astimezone(TOKYO) >= t + retry_delay(1)
    assert run(bot, t + timedelta(minutes=5), sender).failed == 0  # waiting for the backoff
    assert sender.calls == 1
    assert run(bot, t + timedelta(minutes=11), sender).failed == 1
    assert retry_delay(2) == 2 * retry_delay(1)
    assert run(bot, t + timedelta(minutes=25), sender).failed == 0
    assert run(bot, t + timedelta(minutes=32), sender).sent == 1
    assert run(bot, t + timedelta(minutes=40), sender).sent == 0
    assert len(sender.sent) == 1 and sender.calls == 3
    [d] = [d for d in deliveries(bot) if d.offset_days == 60]
    assert (d.status, d.attempts) == ("sent", 3)


def test_a_sender_that_always_fails_is_given_up_after_the_last_attempt(bot):
    register(bot)
    sender = RecordingSender(always_fail=True)
    t = jst(2027, 1, 30, 9)
    gave_up = 0
    for hour in range(0, 11):  # hourly runs during the allowed hours; backoff caps the pace
        for minute in (0, 30):
            gave_up += run(bot, t + timedelta(hours=hour, minutes=minute), sender).gave_up
    [d] = [d for d in deliveries(bot) if d.offset_days == 60]
    assert (d.status, d.attempts, gave_up) == ("failed", MAX_ATTEMPTS, 1)
    assert sender.calls == MAX_ATTEMPTS


def test_line_retry_key_is_a_stable_uuid():
    from bot.channels.line import retry_key as line_retry_key

    key = "reminder-12-30"
    assert line_retry_key(key) == line_retry_key(key) != line_retry_key("reminder-12-7")
    assert len(line_retry_key(key)) == 36


# --- list, stop, delete ------------------------------------------------------------------------


def test_list_shows_the_date_and_the_upcoming_marks(bot):
    chat = Chat(bot, channel="json")
    replies = chat.say("通知を確認")
    assert "ありません" in replies[-1].text
    register(bot)
    replies = chat.say("通知を確認")
    text = replies[-1].text
    assert "2027年3月31日" in text
    assert "2027年1月30日" in text and "2027年3月1日" in text and "2027年3月24日" in text
    assert "reminder-stop" in {c.value for c in replies[-1].choices}


@pytest.mark.parametrize(
    "phrase", ["通知をやめて", "通知を停止してください", "リマインダーを解除", "お知らせはいらない"]
)
def test_stop_stops_at_once_and_says_so(bot, phrase):
    register(bot)
    replies = Chat(bot, channel="json").say(phrase)
    assert "停止しました" in replies[-1].text and "確認なし" in replies[-1].text
    sender = RecordingSender()
    assert run(bot, jst(2027, 1, 30, 9), sender).sent == 0
    assert {d.status for d in deliveries(bot)} == {"skipped"}
    assert (
        Chat(bot, channel="json").say("通知を確認")[-1].text.startswith("いま登録されている更新のお知らせはありません")
    )


def test_stop_button_stops(bot):
    register(bot)
    replies = Chat(bot, channel="json").click("reminder:stop")
    assert "停止しました" in replies[-1].text


def test_stop_in_the_middle_of_another_dialog_comes_back_to_it(bot):
    register(bot)
    chat = Chat(bot, channel="json")
    chat.say("人と話したい")  # municipality known: office shown, no dialog open
    chat.say("自己負担を計算したい")
    replies = chat.say("通知をやめて")
    assert "停止しました" in replies[0].text and replies[-1].expecting is not None


def test_deleting_my_data_removes_reminders(bot):
    register(bot)
    other = register(bot, user="U2")
    assert other[-1].expecting is None
    chat = Chat(bot, channel="json")
    chat.say("データを削除")
    chat.click("yes")
    assert [r.user for r in reminders(bot)] == ["U2"]
    assert len(deliveries(bot)) == 3
    sender = RecordingSender()
    run(bot, jst(2027, 1, 30, 9), sender)
    assert [u for u, *_ in sender.sent] == ["U2"]


# --- privacy -------------------------------------------------------------------------------------


def test_logs_carry_no_user_id_and_no_date(bot, caplog):
    caplog.set_level(logging.DEBUG)
    register(bot, user="SECRETUSER")
    run(bot, jst(2027, 1, 30, 9), RecordingSender(always_fail=True))
    run(bot, jst(2027, 1, 30, 12), RecordingSender())
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("nanbyo"))
    assert "SECRETUSER" not in logged and "2027" not in logged and "channel down" not in logged
    assert "reminder send failed" in logged


# --- the CLI and the scheduler ------------------------------------------------------------------


def test_run_due_writes_json_lines_then_the_summary_and_nothing_the_second_time(settings, db_url):
    register(make_bot(settings, FIXED_NOW), user="U7")
    register(make_bot(settings, FIXED_NOW), user="U8", date_text="2027/4/10")  # 60 days: 2027-02-09
    env = {"DATABASE_URL": db_url}
    first = run_cli(["reminders", "run-due", "--now", "2027-01-30T09:00:00+09:00"], env=env)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.strip().splitlines()
    message = json.loads(lines[0])
    assert set(message) == {"user", "text", "kind"} and message["user"] == "U7" and message["kind"] == "reminder"
    assert lines[-1] == "reminders: 1 sent, 0 failed, 0 skipped, 5 not due"
    assert len(lines) == 2
    second = run_cli(["reminders", "run-due", "--now", "2027-01-30T09:00:00+09:00"], env=env)
    assert second.stdout.strip().splitlines() == ["reminders: 0 sent, 0 failed, 0 skipped, 5 not due"]


def test_run_due_reads_a_naive_now_as_japan_time(settings, db_url):
    register(make_bot(settings, FIXED_NOW))
    night = run_cli(["reminders", "run-due", "--now", "2027-01-30T07:00"], env={"DATABASE_URL": db_url})
    assert night.stdout.strip().splitlines() == [
        "reminders: 0 sent, 0 failed, 0 skipped, 3 not due (quiet hours: sending resumes at 09:00 JST)"
    ]
    morning = run_cli(["reminders", "run-due", "--now", "2027-01-30 09:00"], env={"DATABASE_URL": db_url})
    assert morning.stdout.count('"kind": "reminder"') == 1


def test_run_due_rejects_a_bad_now(db_url):
    result = run_cli(["reminders", "run-due", "--now", "tomorrow"], env={"DATABASE_URL": db_url})
    assert result.returncode == 2 and "ISO-8601" in result.stderr and result.stdout == ""


def test_parse_now():
    assert parse_now("2027-01-30T00:00:00Z") == jst(2027, 1, 30, 9)
    assert parse_now("2027-01-30T09:00") == jst(2027, 1, 30, 9)
    assert parse_now(None, clock=lambda: FIXED_NOW) == FIXED_NOW


def test_console_sender_writes_one_json_line(capsys):
    import sys

    ConsoleSender(sys.stdout).send("U1", "テキスト", "reminder", "reminder-1-60")
    assert json.loads(capsys.readouterr().out) == {"user": "U1", "text": "テキスト", "kind": "reminder"}


def test_the_scheduler_runs_one_in_memory_job_that_dispatches(bot, settings):
    import threading

    register(bot)
    got = threading.Event()

    class Signal(RecordingSender):
        def send(self, user, text, kind, key):
            super().send(user, text, kind, key)
            got.set()

    sender = Signal()
    scheduler = start_scheduler(settings, {"json": sender}, clock=lambda: jst(2027, 1, 30, 9, 30))
    try:
        assert got.wait(10), "the first run should dispatch at once"
        [job] = scheduler.get_jobs()
        assert (job.id, job.coalesce, job.max_instances) == ("reminders-dispatch-due", True, 1)
        assert type(scheduler._jobstores["default"]).__name__ == "MemoryJobStore"
        assert str(scheduler.timezone) == "Asia/Tokyo"
    finally:
        scheduler.shutdown(wait=True)
    assert len(sender.sent) == 1


def test_reminder_offsets_come_from_the_settings(tmp_path):
    from bot.config import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'o.db'}", reminder_offsets_days=(45, 10))
    bot = make_bot(settings, FIXED_NOW)
    replies = Chat(bot).say("更新のお知らせ")
    assert "45日前・10日前" in replies[-1].text
    register(bot, channel="console")
    assert [d.offset_days for d in deliveries(bot)] == [45, 10]

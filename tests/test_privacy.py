"""Privacy: one command deletes everything; logs carry no text; statistics are redacted and bounded."""

import logging

from sqlmodel import Session, select

from bot.storage.models import (
    AnswerFeedback,
    ConversationState,
    CostLogEntry,
    CostLogNotice,
    HandledEvent,
    QuestionStat,
    RateWindow,
    Reminder,
    ReminderDelivery,
)
from handlers.messages import IncomingMessage
from nlp.privacy import redact
from tests.conftest import FIXED_NOW, run_cli

TABLES = (
    ConversationState,
    HandledEvent,
    QuestionStat,
    RateWindow,
    Reminder,
    CostLogEntry,
    CostLogNotice,
    AnswerFeedback,
)


def _rows_of(bot, user_key):
    with bot.store.unit_of_work() as uow:
        stats_id = uow.statistics.stats_user(user_key)  # statistics record users under a keyed id
    with Session(bot.store.engine) as s:
        counts = {
            t.__tablename__: len(s.exec(select(t).where(t.user_key.in_([user_key, stats_id]))).all()) for t in TABLES
        }
        counts["reminder_delivery"] = len(s.exec(select(ReminderDelivery)).all())
    return counts


def test_delete_my_data_removes_every_row_about_the_user(bot, chat):
    chat.say("受給者証の色って何色ですか")  # a statistics row
    chat.say("受給者証なくした")
    chat.say("わかりにくい")  # feedback on the answer
    chat.say("再発行の手数料が知りたかった")  # and its note
    bot.handle(IncomingMessage("console", "U1", text="受給者証なくした", event_id="E1"))  # a handled event
    chat.say("更新を忘れないように通知して")
    chat.say("2027年3月31日")
    chat.say("はい")
    chat.say("太田市")
    for said in ("医療費の記録をつけたい", "はい", "はい", "9月 51000、10月 51000、11月 51000"):  # the cost log
        chat.say(said)
    other = IncomingMessage("console", "U2", text="受給者証なくした")
    bot.handle(other)
    before = _rows_of(bot, "console:U1")
    assert all(
        before[t] >= 1
        for t in (
            "conversation_state",
            "handled_event",
            "question_stat",
            "reminder",
            "reminder_delivery",
            "cost_log_entry",
            "cost_log_notice",
            "answer_feedback",
        )
    )
    chat.say("データを削除")
    replies = chat.click("yes")
    assert "削除しました" in chat.text(replies)
    after = _rows_of(bot, "console:U1")
    assert all(n == 0 for t, n in after.items()), after
    assert _rows_of(bot, "console:U2")["conversation_state"] == 1  # other users keep theirs


def test_no_message_text_in_logs(chat, caplog):
    caplog.set_level(logging.DEBUG)
    chat.say("山田花子です。夫の所得割は7万1千円くらい")
    chat.say("自己負担を計算したい")
    chat.say("いいえ")
    assert "山田" not in caplog.text and "7万1千" not in caplog.text and "所得割" not in caplog.text
    assert "console:U1" not in caplog.text and "U1" not in caplog.text  # user ids are hashed


def test_unanswered_questions_are_kept_redacted(bot, chat):
    chat.say("佐藤です。2027年の花火大会の日程を知りたい")
    with Session(bot.store.engine) as s:
        row = s.exec(select(QuestionStat).where(QuestionStat.answered == False)).first()  # noqa: E712
    assert row is not None
    assert "佐藤" not in row.redacted and "2027" not in row.redacted
    assert redact("電話は090-1234-5678") == "電話は#-#-#"


def test_stats_command_reports_topics_and_unanswered_questions(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    run_cli(["chat", "--json"], stdin="受給者証なくした\n受給者証の色は何色ですか\n受給者証の色は何色ですか\n", env=env)
    out = run_cli(["stats"], env=env)
    assert out.returncode == 0, out.stderr
    assert "reissue" in out.stdout
    assert "受給者証の色は何色" in out.stdout
    assert "2" in out.stdout.split("受給者証の色は何色")[0].splitlines()[-1]


def test_old_statistics_are_removed(tmp_path):
    from datetime import date

    from bot.storage.db import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    with Session(engine) as s:
        s.add(QuestionStat(day=date(2020, 1, 1), user_key="console:X", topic=None, answered=False, redacted="古い質問"))
        s.commit()
    out = run_cli(["stats", "--days", "5000"], env={"DATABASE_URL": url})
    assert "古い質問" not in out.stdout and "1 older rows removed" in out.stdout


def test_a_flood_from_one_user_is_slowed_politely(bot):
    replies = [bot.handle(IncomingMessage("console", "F1", text=f"受給者証なくした{i}")) for i in range(35)]
    notices = [r for rs in replies for r in rs if "少しのあいだお返事を控えています" in r.text]
    assert len(notices) == 1 and replies[30] == notices  # the 31st message gets the one notice
    other = bot.handle(IncomingMessage("console", "F2", text="受給者証なくした"))
    assert other[0].topic == "reissue"  # other users are not affected


def test_questions_also_purge_old_statistics_once_a_day(bot):
    """Without anyone running `stats`, a day's first question deletes rows past the retention."""
    from datetime import date

    from bot.storage.statistics import STATS_RETENTION_DAYS

    today = FIXED_NOW.date()
    with Session(bot.store.engine) as s:
        s.add(QuestionStat(day=date(2020, 1, 1), user_key="console:X", topic=None, answered=False, redacted="古い質問"))
        s.commit()
    bot.handle(IncomingMessage("console", "P1", text="受給者証なくした"))
    with Session(bot.store.engine) as s:
        days = sorted(r.day for r in s.exec(select(QuestionStat)))
    assert days == [today]
    # Rows younger than the retention stay.
    recent = today.replace(day=1)
    assert (today - recent).days < STATS_RETENTION_DAYS
    with Session(bot.store.engine) as s:
        s.add(QuestionStat(day=recent, user_key="console:Y", topic=None, answered=False, redacted="今月の質問"))
        s.commit()
    bot.handle(IncomingMessage("console", "P2", text="受給者証なくした"))
    with Session(bot.store.engine) as s:
        assert len(s.exec(select(QuestionStat)).all()) == 3

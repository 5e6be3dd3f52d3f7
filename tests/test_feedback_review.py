"""Issue 28: feedback on every answer, the operator's review, and facts due to be checked again.

Through chat turns (the core, the terminal, ``chat --json``) and the CLI as an operator runs it;
Slack and LINE are covered in tests/test_slack_e2e.py and tests/test_line_e2e.py.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

from sqlmodel import Session, select

from bot.core import now_tokyo
from bot.review import GROUP_SIMILARITY
from bot.storage.db import make_engine
from bot.storage.models import AnswerFeedback, QuestionStat
from handlers import feedback
from handlers.faq import render_topic
from handlers.messages import Reply
from tests.conftest import run_cli

YES, NO = "👍 役に立った", "👎 役に立たなかった"


def _feedback_rows(bot) -> list[AnswerFeedback]:
    with Session(bot.store.engine) as s:
        return list(s.exec(select(AnswerFeedback).order_by(AnswerFeedback.id)).all())


def _pair_of(reply: Reply) -> list[str]:
    return [c.label for c in reply.choices if c.value.startswith(feedback.PREFIX)]


# --- the pair after every answer -------------------------------------------------------------------


def test_an_faq_answer_keeps_its_buttons_and_ends_with_the_feedback_pair(chat, kb):
    [answer] = chat.say("受給者証なくした")
    assert answer.topic == "reissue"
    _, leading = render_topic(kb, "reissue")
    assert answer.choices[: len(leading)] == leading, "the buttons that lead on come first, unchanged"
    assert [c.label for c in answer.choices[len(leading) :]] == [YES, NO]
    assert all("reissue" in c.value for c in answer.choices[-2:])


def test_a_fallback_an_office_and_a_result_end_with_the_pair_too(chat):
    [fallback] = chat.say("駐車場はありますか")
    assert fallback.kind == "fallback" and _pair_of(fallback) == [YES, NO]
    [office] = chat.say("太田市")
    assert office.kind == "office" and office.choices[-2:] and _pair_of(office) == [YES, NO]
    assert [c.label for c in office.choices][-2:] == [YES, NO]
    chat.click("start:mild-high-cost")
    result = chat.say("40,000、30,000、35,000、50,000")[-1]
    assert result.kind == "mild-result"
    assert result.choices[0].label == "くわしく", "the result's own buttons stay first"
    assert [c.label for c in result.choices][-2:] == [YES, NO]


def test_a_question_of_a_dialog_and_the_menu_get_no_pair(chat):
    asked = chat.say("自己負担を計算したい")
    assert asked[-1].expecting is not None and not _pair_of(asked[-1])
    chat.say("やめる")
    assert not _pair_of(chat.say("メニュー")[-1])


# --- giving feedback -------------------------------------------------------------------------------


def test_helpful_is_recorded_once_by_a_click_or_typed(bot, chat):
    [answer] = chat.say("受給者証なくした")
    yes = next(c.value for c in answer.choices if c.label == YES)
    thanks = chat.click(yes)
    assert "ありがとうございます" in chat.text(thanks)
    chat.say("更新はいつ")
    chat.say("役に立った")
    chat.say("役に立った")  # nothing new to judge: a kind word, no second row
    rows = _feedback_rows(bot)
    assert [(r.topic, r.kind, r.helpful) for r in rows] == [("reissue", "answer", True), ("renewal", "answer", True)]
    assert all(r.user_key.startswith("s-") and "U1" not in r.user_key for r in rows), "the keyed id, never the user id"


def test_unhelpful_asks_what_was_missing_offers_the_office_and_keeps_the_note_redacted(bot, chat):
    chat.say("太田市に住んでいます")
    [answer] = chat.say("受給者証なくした")
    no = next(c.value for c in answer.choices if c.label == NO)
    [ask] = chat.click(no)
    assert "足りなかったこと" in ask.text and "書かなくても大丈夫" in ask.text
    assert "太田保健福祉事務所" in ask.text, "the user's own office is offered"
    assert [c.label for c in ask.choices] == ["書かずに終える", "窓口を探す"]
    assert [(r.topic, r.helpful, r.note) for r in _feedback_rows(bot)] == [("reissue", False, None)]

    refused = chat.say("マイナンバーは1234 5678 9012です")  # never stored, even as a note
    assert refused[0].kind == "mynumber"
    done = chat.say("山田花子です。再発行の日数が知りたかった。電話は090-1234-5678")
    assert "ありがとうございます" in chat.text(done)
    [row] = _feedback_rows(bot)
    assert row.note is not None and "再発行の日数が知りたかった" in row.note
    assert not re.search(r"[0-9０-９]", row.note) and "山田" not in row.note and "花子" not in row.note
    # The next message is a question again, not a second note.
    assert chat.say("受給者証なくした")[0].topic == "reissue"
    assert _feedback_rows(bot)[0].note == row.note


def test_typed_wakarinikui_counts_as_unhelpful_and_skipping_the_note_is_fine(bot, chat):
    chat.say("更新はいつ")
    [ask] = chat.say("わかりにくい")
    assert ask.kind == "feedback-ask"
    [skipped] = chat.click(feedback.SKIP)
    assert skipped.kind == "feedback-skip"
    assert [(r.topic, r.helpful, r.note) for r in _feedback_rows(bot)] == [("renewal", False, None)]
    # A button that leads on also ends the wait for a note: the next typed question is answered, not kept.
    chat.say("更新はいつ")
    chat.say("わかりにくい")
    assert chat.click("topic:reissue")[0].topic == "reissue"
    assert chat.say("受給者証なくした")[0].topic == "reissue"
    assert [r.note for r in _feedback_rows(bot)] == [None, None]


def test_unhelpful_clicked_during_a_dialog_records_it_and_asks_only_the_dialogs_question(bot, chat):
    [answer] = chat.say("受給者証なくした")
    no = next(c.value for c in answer.choices if c.label == NO)
    asked = chat.say("自己負担を計算したい")[-1]
    replies = chat.click(no)  # the older message's button
    assert "足りなかったこと" not in chat.text(replies)
    assert replies[-1].expecting == asked.expecting, "the dialog's question again, last"
    assert [(r.topic, r.helpful) for r in _feedback_rows(bot)] == [("reissue", False)]


def test_a_forged_feedback_value_is_answered_and_names_no_unknown_topic(bot, chat):
    chat.click("feedback:yes:answer:no-such-topic")
    chat.click("feedback:maybe:answer:reissue")  # not feedback at all: answered like any other click
    assert [(r.topic, r.helpful) for r in _feedback_rows(bot)] == [(None, True)]


def test_feedback_is_deleted_with_the_users_data_and_others_keep_theirs(bot, chat):
    from tests.conftest import Chat

    other = Chat(bot, user="U2")
    for who in (chat, other):
        who.say("受給者証なくした")
        who.say("わかりにくい")
        who.say("住所変更の手続きが知りたかった")
    assert len(_feedback_rows(bot)) == 2
    chat.say("データを削除")
    chat.click("yes")
    with bot.store.unit_of_work() as uow:
        u2 = uow.statistics.stats_user("console:U2")
    assert [r.user_key for r in _feedback_rows(bot)] == [u2]


# --- the terminal and chat --json ------------------------------------------------------------------


def test_terminal_shows_the_pair_last_and_its_letter_works(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}
    out = run_cli(["chat"], stdin="受給者証なくした\ne\n", env=env)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.split("お役に立てず", 1)
    letters = re.findall(r"\[([a-z])\] (.+)", first)
    assert letters[-2:] == [("d", YES), ("e", NO)]
    assert "足りなかったこと" in second
    with Session(make_engine(env["DATABASE_URL"])) as s:
        assert [(r.topic, r.helpful) for r in s.exec(select(AnswerFeedback)).all()] == [("reissue", False)]


def test_json_channel_offers_the_pair_and_records_a_choice(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'j.db'}"}
    lines = [
        json.dumps({"user": "U9", "text": "受給者証なくした"}, ensure_ascii=False),
        json.dumps({"user": "U9", "choice": "feedback:yes:answer:reissue"}),
    ]
    out = run_cli(["chat", "--json"], stdin="\n".join(lines) + "\n", env=env)
    answer, thanks = (json.loads(line)["replies"] for line in out.stdout.splitlines())
    assert [c["label"] for c in answer[0]["choices"]][-2:] == [YES, NO]
    assert thanks[0]["choices"] == [{"label": "メニュー", "value": "menu"}]
    with Session(make_engine(env["DATABASE_URL"])) as s:
        assert [(r.topic, r.helpful) for r in s.exec(select(AnswerFeedback)).all()] == [("reissue", True)]


# --- the review ------------------------------------------------------------------------------------


def test_unsure_answers_keep_their_redacted_text_and_sure_ones_none(bot, chat):
    chat.say("受給者証の色が変わったのはなぜ")  # answered, but a second topic is close: unsure
    chat.say("マイナ保険証で受診できる")  # answered surely
    with Session(bot.store.engine) as s:
        rows = s.exec(select(QuestionStat).order_by(QuestionStat.id)).all()
    assert [(r.answered, r.redacted) for r in rows] == [(True, "受給者証の色が変わったのはなぜ"), (True, None)]


def test_review_groups_what_went_wrong_redacted_with_counts_and_closest_topics(tmp_path, kb):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}"}
    said = [
        ("U1", "佐藤です。駐車場はありますか"),
        ("U2", "駐車場はありますか？090-1234-5678"),
        ("U3", "駐車場はありますか"),  # three ways of one unanswered question
        ("U4", "ペットの治療費は出ますか"),  # another, alone
        ("U5", "受給者証の色が変わったのはなぜ"),
        ("U6", "受給者証の色はなぜ変わったの"),  # answered unsure
        ("U7", "受給者証なくした"),
        ("U7", "わかりにくい"),
        ("U7", "2027年に再発行の日数が知りたかった"),
        ("U8", "受給者証なくした"),
        ("U8", "役に立たなかった"),
        ("U8", "受給者証なくした"),
        ("U8", "役に立った"),
    ]
    stdin = "".join(json.dumps({"user": u, "text": t}, ensure_ascii=False) + "\n" for u, t in said)
    assert run_cli(["chat", "--json"], stdin=stdin, env=env).returncode == 0
    today = now_tokyo().date().isoformat()  # the day the chat recorded (in Japan)

    out = run_cli(["review", "--json", "--days", "7", "--today", today], env=env)
    assert out.returncode == 0, out.stderr
    review = json.loads(out.stdout)
    assert review["feedback"] == {"helpful": 1, "unhelpful": 2}
    by_kind = {k: [g for g in review["groups"] if g["kind"] == k] for k in ("unanswered", "unsure", "unhelpful")}
    assert [g["count"] for g in by_kind["unanswered"]] == [3, 1]
    parking = by_kind["unanswered"][0]
    assert all("駐車場はありますか" in e for e in parking["examples"])
    assert [g["count"] for g in by_kind["unsure"]] == [2]
    assert by_kind["unsure"][0]["topic"] == "change-application"
    [unhelpful] = by_kind["unhelpful"]
    assert (unhelpful["topic"], unhelpful["count"], unhelpful["answer_kind"]) == ("reissue", 2, "answer")
    # U8 asked again instead of writing a note: kept as the note, and answered.
    assert sorted(unhelpful["examples"]) == sorted(["#年に再発行の日数が知りたかった", "受給者証なくした"])
    text = out.stdout
    examples = "\n".join(e for g in review["groups"] for e in g["examples"])
    assert not re.search(r"[0-9０-９]", examples), "no number that could be personal"
    assert "佐藤" not in text and "U1" not in text and "console:" not in text and "json:" not in text
    assert review["until"] == today and review["since"] == (now_tokyo().date() - timedelta(days=6)).isoformat()

    plain = run_cli(["review", "--days", "7", "--today", today], env=env)
    assert plain.returncode == 0, plain.stderr
    assert "    3  closest:" in plain.stdout and "駐車場はありますか" in plain.stdout
    assert f"    2  closest: reissue ({kb.topics['reissue'].label}) [answer]" in plain.stdout
    # A period that ends before the questions were asked lists none of them.
    before = run_cli(["review", "--json", "--days", "7", "--today", "2026-11-01"], env=env)
    assert json.loads(before.stdout)["groups"] == []
    # A day far ahead (to see what will be stale) reads an empty period and deletes nothing still kept.
    ahead = run_cli(["review", "--json", "--today", "2030-01-01"], env=env)
    assert json.loads(ahead.stdout)["groups"] == []
    again = run_cli(["review", "--json", "--days", "7", "--today", today], env=env)
    assert json.loads(again.stdout)["groups"] == review["groups"]


def test_the_similarity_threshold_keeps_different_questions_apart(matcher):
    assert matcher.similarity("受給者証の色が変わったのはなぜ", "受給者証の色が前と違う") >= GROUP_SIMILARITY
    assert matcher.similarity("更新はいつ？", "更新の時期が載っていない") < GROUP_SIMILARITY
    assert matcher.similarity("駐車場はありますか", "ペットの治療費は出ますか") < GROUP_SIMILARITY


def test_review_follows_the_retention_period(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    with Session(engine) as s:
        s.add(
            AnswerFeedback(
                day=date(2020, 1, 1), user_key="s-x", topic="reissue", kind="answer", helpful=False, note="古いご意見"
            )
        )
        s.commit()
    out = run_cli(["review", "--days", "5000", "--json"], env={"DATABASE_URL": url, "STATS_RETENTION_DAYS": "90"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["feedback"] == {"helpful": 0, "unhelpful": 0}
    with Session(engine) as s:
        assert not s.exec(select(AnswerFeedback)).all()


# --- freshness ---------------------------------------------------------------------------------------


def test_kb_check_names_stale_topics_as_warnings_and_keeps_its_exit_code():
    fresh = run_cli(["kb", "check", "--today", "2026-12-01"])
    assert fresh.returncode == 0 and "warning" not in fresh.stderr
    stale = run_cli(["kb", "check", "--today", "2030-01-01"])
    assert stale.returncode == 0, stale.stderr
    assert re.search(r"warning: \S+topics-apply\.yaml \[where-to-apply\]: topic checked 2026-11-\d\d", stale.stderr)
    assert re.search(r"warning: \S+sources\.yaml \[S003\]: source checked", stale.stderr)
    assert run_cli(["kb", "check", "--today", "2030-13-01"]).returncode == 2


def test_an_entrys_own_interval_overrides_the_prefectures(kb):
    topic = kb.topics["reissue"]
    assert topic.checked == date(2026, 11, 23) and kb.prefecture.recheck_days == 180
    day = topic.checked + timedelta(days=30)
    assert "reissue" not in [s.id for s in kb.stale(day)]
    from dataclasses import replace as dc_replace

    short = dc_replace(kb, topics={**kb.topics, "reissue": topic.model_copy(update={"recheck_days": 30})})
    [item] = [s for s in short.stale(day) if s.id == "reissue"]
    assert (item.kind, item.due, item.recheck_days) == ("topic", day, 30)


def test_review_lists_the_stale_facts(tmp_path):
    out = run_cli(["review", "--json", "--today", "2030-01-01"], env={"DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}"})
    assert out.returncode == 0, out.stderr
    stale = json.loads(out.stdout)["stale"]
    assert {"kind": "topic", "id": "reissue"}.items() <= next(s for s in stale if s["id"] == "reissue").items()
    assert any(s["kind"] == "source" for s in stale)


def test_feedback_and_its_note_are_stored_and_deleted_on_both_databases(database_url):
    from bot.bootstrap import build_bot
    from bot.config import Settings
    from tests.conftest import FIXED_NOW, Chat

    bot = build_bot(Settings(database_url=database_url), clock=lambda: FIXED_NOW)
    chat = Chat(bot)
    chat.say("受給者証なくした")
    chat.say("役に立たなかった")
    chat.say("佐藤です。手数料が知りたかった")
    [row] = _feedback_rows(bot)
    assert (row.day, row.topic, row.helpful, row.note) == (
        FIXED_NOW.date(),
        "reissue",
        False,
        "＊です。手数料が知りたかった",
    )
    chat.say("データを削除")
    chat.click("yes")
    assert _feedback_rows(bot) == []
    bot.store.engine.dispose()


def test_a_second_unhelpful_in_a_row_leads_to_a_person_with_the_office(bot, chat):
    """Issue 28: two answers in a row that did not help — the office with phone, hours and what to
    have at hand (the hand-off), not a third try; a helpful answer in between starts again."""
    chat.say("太田市に住んでいます")
    [answer] = chat.say("受給者証なくした")
    [ask] = chat.click(next(c.value for c in answer.choices if c.label == NO))
    chat.click(next(c.value for c in ask.choices if c.label == "書かずに終える"))
    [answer] = chat.say("更新はいつ")
    replies = chat.click(next(c.value for c in answer.choices if c.label == NO))
    assert replies[0].kind == "feedback-person"
    text = chat.text(replies)
    assert "太田保健福祉事務所" in text and "受給者証" in text, text[:300]
    assert [r.helpful for r in _feedback_rows(bot)] == [False, False], "both recorded"


def test_a_helpful_answer_between_two_unhelpful_ones_asks_again_what_was_missing(bot, chat):
    [answer] = chat.say("受給者証なくした")
    [ask] = chat.click(next(c.value for c in answer.choices if c.label == NO))
    chat.click(next(c.value for c in ask.choices if c.label == "書かずに終える"))
    [answer] = chat.say("更新はいつ")
    chat.click(next(c.value for c in answer.choices if c.label != NO and c.value.startswith("feedback:")))
    [answer] = chat.say("受給者証なくした")
    [ask] = chat.click(next(c.value for c in answer.choices if c.label == NO))
    assert ask.kind == "feedback-ask"

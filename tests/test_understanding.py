"""One understanding: requests start the bot's actions, the services next door are named, topics lead to actions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli


def _state(bot, user: str = "console:U1"):
    with bot.store.unit_of_work() as uow:
        return uow.conversations.load_state(user)


@pytest.mark.parametrize(
    "text,dialog",
    [
        ("私のデータを全部削除してください", "delete"),
        ("データ全部消してほしい", "delete"),
        ("登録した情報を消してください", "delete"),
        ("更新の時期が来たら教えてほしい", "reminder"),
        ("期限が近づいたらLINEで知らせて", "reminder"),
        ("いつから助成が始まるか計算してほしい", "start-date"),
        ("担当の人につないで", "handoff"),  # a person to reach: the office, then the hand-off (issue 28)
        ("電話で聞きたいんだけど番号教えて", "office"),
        ("じこふたん　いくらになるか　けいさんして", "copay"),
    ],
)
def test_an_everyday_request_starts_its_action(bot, chat, text, dialog):
    chat.say(text)
    assert _state(bot).dialog == dialog


@pytest.mark.parametrize(
    "text,kind",
    [
        ("もう通知はいらない", "reminder-stop"),
        ("通知の登録を取り消したい", "reminder-stop"),
        ("登録したお知らせ見せて", "reminder-list"),
        ("メニュー出して", "menu"),
        ("使い方を教えて", "menu"),
        # Whether it is registered, asked with 〜されてる: the list, not a new registration.
        ("期限のお知らせって設定されてますか", "reminder-list"),
        # 〜といて is how 〜ておいて is said.
        ("期限の通知は消しといて", "reminder-stop"),
    ],
)
def test_requests_without_a_dialog_are_done(chat, text, kind):
    assert chat.say(text)[0].kind == kind


@pytest.mark.parametrize(
    "text,who",
    [
        ("障害年金の2級と3級って何がちがうの？", "年金事務所"),
        ("難病で働けなくなった。生活保護の申請ってどこに行けばいい？", "福祉事務所"),
        ("マイナンバーカードの暗証番号わすれた", "市町村"),
        ("3歳の子どもの小児慢性の自己負担上限額はいくら", "保健福祉事務所"),
        ("クローン病　食べちゃダメなもの", "主治医"),
        ("高額療養費の多数回該当ってなに？難病じゃないけど", "保険者"),
        ("難病があっても働ける仕事を探したい", "ハローワーク"),
    ],
)
def test_a_question_for_the_service_next_door_says_who_handles_it(chat, text, who):
    reply = chat.say(text)[-1]
    assert reply.kind in ("redirect", "medical")
    assert reply.topic is None
    assert who in reply.text


@pytest.mark.parametrize(
    "text,topic",
    [
        ("家族が代理で申請してもいい？", "proxy-application"),
        ("郵送で申請できますか", "mail-application"),
        ("むすこが　なんびょうに　なった　どうしたら　いい", "just-diagnosed"),
        ("いつから助成されますか", "start-date-retroactive"),
    ],
)
def test_core_questions_have_their_topic(chat, text, topic):
    assert chat.say(text)[-1].topic == topic


def test_an_unknown_fact_is_named_with_the_office(chat):
    text = chat.say("郵送で申請できますか")[-1].text
    assert "確認できませんでした" in text and "保健福祉事務所" in text


@pytest.mark.parametrize(
    "topic,button",
    [
        ("renewal", "start:reminder"),
        ("copay-table", "start:copay"),
        ("start-date-retroactive", "start:start-date"),
        ("where-to-apply", "office"),
    ],
)
def test_answers_lead_to_actions(chat, topic, button):
    reply = chat.click(f"topic:{topic}")[-1]
    assert button in {c.value for c in reply.choices}


def test_a_request_mid_dialog_is_done_instead_of_taken_for_an_answer(bot, chat):
    chat.click("start:copay")
    replies = chat.say("もう計算はいいです")
    assert replies[0].kind == "cancel"
    assert _state(bot).dialog is None


def test_start_over_in_words_mid_answer(chat):
    chat.click("start:copay")
    chat.say("いいえ")
    replies = chat.say("ちがう、最初から")
    assert replies[0].kind == "restart"
    assert replies[-1].expecting == "welfare"


def test_unsure_fallback_offers_the_closest_action(chat):
    reply = chat.say("切れる前にちょっと声かけてくれたら助かるかも")[-1]
    values = {c.value for c in reply.choices}
    assert "start:reminder" in values


def test_eval_actions_reports_direct_and_one_click(tmp_path: Path):
    sample = tmp_path / "a.jsonl"
    sample.write_text(
        "\n".join(
            json.dumps(r, ensure_ascii=False)
            for r in [
                {"q": "データ全部消してほしい", "action": "delete"},
                {"q": "もう通知はいらない", "action": "reminder-stop"},
                {"q": "やめる", "action": "cancel"},
            ]
        ),
        encoding="utf-8",
    )
    out = run_cli(["eval", "--actions", str(sample)])
    assert out.returncode == 0, out.stderr
    assert "action started by the message itself: 100.0% (3/3)" in out.stdout


def test_kb_check_refuses_an_action_offered_by_a_missing_topic(tmp_path: Path):
    root = tmp_path / "knowledge"
    shutil.copytree(REPO / "knowledge", root)
    path = root / "actions.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("offered_by: [renewal]", "offered_by: [no-such-topic]"),
        encoding="utf-8",
    )
    out = run_cli(["kb", "check", "--root", str(root)])
    assert out.returncode == 1
    assert "no-such-topic" in out.stderr


@pytest.mark.parametrize(
    "text,dialog",
    [
        # Written all in kana: matched by how it reads (でーた = データ).
        ("でーたを　けして　ほしい", "delete"),
        ("りまいんだー　とうろく　したい", "reminder"),
        # Their own case, told before the question: the calculator works it out.
        ("診断されたのが3月なんですが、いつから助成の対象になりますか", "start-date"),
        ("医療費総額が高い月が年に何回かあるんだけど、軽症でも助成もらえるパターン？", "mild-high-cost"),
        # The word that asks comes last: a removal of what was registered, not a list.
        ("登録していた更新のお知らせを止めていただけますか", None),
    ],
)
def test_how_people_type_a_request_still_starts_it(bot, chat, text, dialog):
    replies = chat.say(text)
    assert _state(bot).dialog == dialog
    if dialog is None:
        assert replies[0].kind == "reminder-stop"


@pytest.mark.parametrize(
    "text,topic",
    [
        # A question about a rule is answered, with the calculator one tap away.
        ("いつからの医療費が対象になるの？", "start-date-retroactive"),
        ("助成の開始日って申請した日からですか？さかのぼれる？", "start-date-retroactive"),
        # 「登録してる」 describes a state; it asks nobody to register anything.
        ("主治医が難病指定医の登録してるかどうか、どこで確認できますか", "designated-doctor"),
    ],
)
def test_a_question_of_fact_is_answered_not_acted_on(bot, chat, text, topic):
    reply = chat.say(text)[0]
    assert (reply.kind, reply.topic) == ("answer", topic)
    assert _state(bot).dialog is None


def test_a_bare_date_mid_dialog_is_no_request_for_another_calculator(bot, chat):
    chat.click("start:copay")
    chat.say("いいえ")
    chat.say("2026年4月1日")
    assert _state(bot).dialog == "copay"


@pytest.mark.parametrize(
    "text,kind",
    [
        ("医療費ログを見せて", "costlog-table"),  # 医療費ログ is the bot's record of costs
        ("医療費ログはもういらない", "costlog-nudge-off"),
    ],
)
def test_the_cost_record_by_another_name_is_still_the_cost_record(chat, text, kind):
    assert chat.say(text)[0].kind == kind


def test_a_cue_both_calculators_share_does_not_choose_between_them(bot, chat):
    # 計算 is a cue of both; 「いつから適用」 is what is asked: the start-date calculator.
    chat.say("いつから適用になるのか計算をお願い")
    assert _state(bot).dialog == "start-date"


def test_a_cue_shared_with_cancel_does_not_hide_the_reminders_own_word(chat):
    # やめ is a cue of cancelling and of stopping reminders; 来なく is the reminders' own.
    assert chat.say("更新の案内はもう来なくていいので、やめてください")[0].kind == "reminder-stop"

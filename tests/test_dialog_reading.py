"""Dialogs read every answer right, let people start over or correct one answer, and end in short results."""

from __future__ import annotations

import pytest

from tests.conftest import Chat


def _to(chat: Chat, answers: list[str], start: str = "start:copay", rest: str | None = None):
    """Answer ``answers`` in turn, then ``rest`` to every question still asked (if given)."""
    replies = chat.click(start)
    for answer in answers:
        replies = chat.say(answer)
    for _ in range(12):
        if rest is None or replies[-1].expecting is None:
            break
        replies = chat.say(rest)
    return replies


def _lines(text: str) -> int:
    return len(text.strip().splitlines())


@pytest.mark.parametrize("answer", ["課税されてます", "住民税は払ってます", "課税です", "いいえ、課税されています"])
def test_an_answer_that_says_the_opposite_of_non_taxable_is_a_no(chat, answer):
    replies = _to(chat, ["いいえ", "いいえ", answer])
    assert replies[-1].expecting == "income_tax"  # the taxed branch, not the non-taxable one


@pytest.mark.parametrize("answer", ["非課税です", "みんな非課税", "はい", "課税されてない"])
def test_non_taxable_answers_are_a_yes(chat, answer):
    replies = _to(chat, ["いいえ", "いいえ", answer])
    assert replies[-1].expecting == "income"


def test_start_over_restarts_the_same_dialog(chat):
    _to(chat, ["いいえ", "いいえ"])
    replies = chat.say("最初から")
    assert "最初からやり直します" in replies[0].text
    assert replies[-1].expecting == "welfare"
    assert chat.say("いいえ")[-1].expecting == "ventilator"  # earlier answers are gone


TAXED = ["いいえ", "いいえ", "いいえ", "10万円", "ない", "いない", "わからない"]


def test_after_a_result_one_answer_can_be_changed_and_the_result_is_new(chat):
    replies = _to(chat, TAXED)
    assert "月の自己負担上限額：20,000円" in chat.text(replies)
    offer = chat.say("間違えました")
    labels = [c.label for c in offer[-1].choices]
    assert "所得割：100,000円" in labels and "生活保護：いいえ" in labels  # an amount says it is yen
    asked = chat.click("fix:income_tax")
    assert asked[-1].expecting == "income_tax"
    result = chat.say("5万円")
    assert "月の自己負担上限額：10,000円" in chat.text(result)  # 一般所得1 now, all else kept
    assert "階層区分：一般所得1" in chat.text(result)


@pytest.mark.parametrize("word", ["戻る", "ちがう", "修正したい"])
def test_correction_words_after_a_result_offer_the_answers(chat, word):
    _to(chat, TAXED)
    offer = chat.say(word)
    assert offer[-1].kind == "fix"
    assert any(c.value == "fix:welfare" for c in offer[-1].choices)


def test_changing_a_branch_answer_asks_what_the_new_branch_needs(chat):
    _to(chat, TAXED)
    chat.say("まちがえた")
    chat.click("fix:tax_exempt")
    replies = chat.say("はい")  # now non-taxable: the income is needed, the 所得割 no longer counts
    assert replies[-1].expecting == "income"
    result = chat.say("70万円")
    assert "低所得1" in chat.text(result)


@pytest.mark.parametrize(
    "answers",
    [
        TAXED,
        ["いいえ", "いいえ"],
        ["はい"],
        ["いいえ", "はい"],
        ["いいえ", "いいえ", "はい", "70万円", "いない", "12万円", "3割"],
    ],
)
def test_a_copay_result_is_at_most_six_lines_with_the_working_behind_a_button(chat, answers):
    replies = _to(chat, answers, rest="わからない")
    result = replies[-1]
    assert result.kind == "copay-result"
    assert _lines(result.text) <= 6, result.text
    assert "出典" in result.text
    assert result.choices[0].label == "くわしく"
    details = chat.click("details")
    assert "【計算の内訳】" in details[0].text


def test_welfare_result_says_nothing_about_going_lower(chat):
    _to(chat, ["はい"])
    text = chat.text(chat.click("details"))
    assert "下がる" not in text and "下がります" not in text


def test_no_ventilator_note_after_the_user_said_no(chat):
    _to(chat, TAXED)
    assert "人工呼吸器" not in chat.text(chat.say("くわしく"))


def test_unknown_figures_give_one_line_per_tier(chat):
    replies = _to(chat, ["いいえ", "いいえ"], rest="わからない")
    text = replies[-1].text
    for tier in ("低所得1", "低所得2", "一般所得1", "一般所得2", "上位所得"):
        assert sum(line.startswith(f"・{tier}なら") for line in text.splitlines()) == 1, text


def test_start_date_result_states_the_start_once_and_does_not_contradict_itself(chat):
    replies = _to(chat, ["2023年9月15日", "2023年10月10日", "特になし"], start="start:start-date")
    text = replies[-1].text
    assert _lines(text) <= 6
    assert text.count("2023年10月1日") == 2  # the start, and the rule that decided it
    assert "2023年9月15日）から助成が始まります" not in text


def test_typing_a_buttons_label_picks_it(chat):
    replies = _to(chat, ["2026年9月1日", "2026年11月20日", "仕事が忙しかった"], start="start:start-date")
    assert replies[-1].kind == "start-result"


def test_a_municipality_alone_gets_its_office_without_an_apology(chat):
    text = chat.text(chat.say("太田市"))
    assert "太田保健福祉事務所" in text
    assert "申し訳ありません" not in text


def test_a_mild_high_cost_result_is_at_most_six_lines_and_says_what_it_read(chat):
    replies = _to(chat, ["40,000、30,000、35,000、50,000"], start="start:mild-high-cost")
    result = replies[-1]
    assert result.kind == "mild-result"
    assert _lines(result.text) <= 6, result.text
    assert "40,000円・30,000円・35,000円・50,000円の4か月分" in result.text
    assert "満たしています" in result.text
    assert "【計算の内訳】" in chat.click("details")[0].text


def test_every_button_label_fits_a_phone_and_the_terminal_uncut(bot):
    for form in bot.forms.values():
        for slot in form.slots:
            for choice in slot.choices:
                assert len(choice.label) <= 20, (form.name, slot.name, choice.label)


def test_a_long_reason_typed_in_full_is_read(chat):
    replies = _to(chat, ["2026年9月1日", "2026年11月20日", "臨個票の受け取りが遅れた"], start="start:start-date")
    assert replies[-1].kind == "start-result"


@pytest.mark.parametrize("unsure", ["わからない", "ワカラナイ", "よくわかりません"])
def test_unsure_at_an_offer_asks_the_offer_again_not_the_menu(chat, unsure):
    chat.say("医療費の記録をつけたい")

    replies = chat.say(unsure)

    assert len(replies) == 1
    assert "「はい」か「いいえ」" in replies[0].text and "記録を始めますか" in replies[0].text
    assert "制度について" not in [c.label for c in replies[0].choices]  # not the menu
    assert "毎月3日" in chat.say("はい")[-1].text  # the offer is still what はい answers


@pytest.mark.parametrize("request_", ["メニュー", "使い方がわからない"])
def test_the_menu_asked_mid_dialog_is_followed_by_the_pending_question(chat, request_):
    chat.say("医療費の記録をつけたい")

    replies = chat.say(request_)

    assert "自己負担を計算" in [c.label for c in replies[0].choices]  # the menu
    assert replies[-1].text.startswith("では、先ほどの続きです。") and "記録を始めますか" in replies[-1].text
    assert "毎月3日" in chat.say("はい")[-1].text

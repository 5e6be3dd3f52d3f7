"""The guided copay dialog: one question at a time, free text or buttons, back, cancel, restart."""

import json

import pytest

from bot.bootstrap import build_bot
from handlers.copay import COPAY_FORM, MILD_FORM, START_DATE_FORM
from handlers.messages import IncomingMessage
from handlers.parsers import Invalid
from nlp.text import Text
from tests.conftest import FIXED_NOW, SHARED, Chat, needs_shared

COPAY_FILE = SHARED / "eval" / "copay.jsonl"
KANJI = "〇一二三四五六七八九"


def _yen_text(n: int, style: int) -> str:
    """Phrase an amount the way people type it, in several styles."""
    if style == 0 and n % 10_000 == 0:
        return f"{n // 10_000}万円"
    if style == 1 and n % 1000 == 0 and n >= 10_000:
        man, sen = divmod(n // 1000, 10)
        return f"{man}万{sen}千円" if sen else f"約{man}万"
    if style == 2:
        return f"{n:,}円".translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return f"{n:,}"


def _answer(slot: str, facts: dict, style: int) -> str:
    value = facts.get(slot)
    if slot == "welfare":
        return "はい、受けてます" if value else "受けてない"
    if slot in ("ventilator", "tax_exempt"):
        return {True: "うん", False: "いいえ", None: "わからない"}[value]
    if slot in ("income", "income_tax", "medical_cost"):
        return "わからない" if value is None else _yen_text(value, style)
    if slot == "high_cost_months":
        return "ない" if not value else (f"{KANJI[value]}か月" if value < 10 else f"{value}")
    if slot == "household_caps":
        return "いない" if not value else "と".join(f"{c:,}円" for c in value)
    if slot == "insurance_rate":
        return f"{round(value * 10)}割" if value else "わからない"
    raise AssertionError(slot)


def _scenarios():
    if not COPAY_FILE.exists():
        return []
    return [json.loads(line) for line in COPAY_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


@needs_shared("eval/copay.jsonl")
@pytest.mark.parametrize("index", range(len(_scenarios())))
def test_each_scenario_reaches_the_same_cap_through_the_chat(chat, index):
    scenario = _scenarios()[index]
    facts, expect = scenario["facts"], scenario["expect"]
    replies = chat.say("自己負担いくらになるか知りたい")
    for _ in range(12):
        slot = replies[-1].expecting
        if slot is None:
            break
        replies = chat.say(_answer(slot, facts, index % 4))
    text = chat.text(replies)
    assert f"上限額：{expect['cap']:,}円" in text, text
    assert f"階層区分：{expect['tier']}" in text
    if "payment" in expect:
        assert f"目安：{expect['payment']:,}円" in text
    assert "出典" in text


def test_every_offered_choice_parses_with_its_slot(bot):
    chat = Chat(bot)
    for form in (COPAY_FORM, START_DATE_FORM, MILD_FORM):
        ctx_replies = chat.click(f"start:{form.name}")
        with bot.store.unit_of_work() as uow:
            ctx = bot.context(
                uow, IncomingMessage("console", "U1"), uow.conversations.load_state("console:U1"), FIXED_NOW
            )
        for slot in form.slots:
            for choice in slot.choices:
                assert not isinstance(slot.parse(Text(choice.value), ctx), Invalid), (form.name, slot.name, choice)
        assert ctx_replies
        chat.say("やめる")


def test_unknown_income_tax_explains_where_to_find_it_and_shows_possible_caps(chat):
    chat.say("自己負担を計算したい")
    chat.say("いいえ")  # welfare
    chat.say("いいえ")  # ventilator
    chat.say("いいえ")  # tax exempt
    replies = chat.say("わからない")  # income tax
    text = chat.text(replies)
    assert "所得割" in text and ("決定通知書" in text or "課税証明書" in text)
    for _ in range(5):
        if replies[-1].expecting is None:
            break
        replies = chat.say("わからない")
    final = chat.text(replies)
    for cap in ("10,000円", "20,000円", "30,000円"):
        assert cap in final


def test_invalid_answer_reasks_kindly_and_keeps_earlier_answers(chat):
    chat.say("自己負担を計算したい")
    chat.say("いいえ")
    chat.say("いいえ")
    chat.say("いいえ")
    replies = chat.say("2027年3月31日")  # a date where an amount is asked
    assert replies[-1].expecting == "income_tax"
    replies = chat.say("5万円")
    assert replies[-1].expecting == "high_cost_months"


def test_back_changes_the_last_answer(chat):
    chat.say("自己負担を計算したい")
    chat.say("いいえ")
    replies = chat.say("戻る")
    assert replies[-1].expecting == "welfare"
    replies = chat.say("はい")
    text = chat.text(replies)
    assert "上限額：0円" in text and "生活保護" in text


def test_cancel_leaves_at_any_step(chat):
    chat.say("自己負担を計算したい")
    chat.say("いいえ")
    replies = chat.say("やめる")
    assert all(r.expecting is None for r in replies)
    replies = chat.say("いいえ")
    assert all(r.expecting != "tax_exempt" for r in replies)


def test_dialog_survives_a_restart(settings):
    first = build_bot(settings, clock=lambda: FIXED_NOW)
    first.handle(IncomingMessage("console", "U1", text="自己負担を計算したい"))
    first.handle(IncomingMessage("console", "U1", text="いいえ"))
    second = build_bot(settings, clock=lambda: FIXED_NOW)
    replies = second.handle(IncomingMessage("console", "U1", text="いいえ"))
    assert replies[-1].expecting == "tax_exempt"


def test_a_question_mid_dialog_is_answered_then_the_dialog_goes_on(chat):
    chat.say("自己負担を計算したい")
    replies = chat.say("入院したときの食事代って上限に含まれますか")
    assert any(r.topic == "copay-meal" for r in replies)
    assert replies[-1].expecting == "welfare"


def test_buttons_work_like_typing(chat):
    chat.click("start:copay")
    replies = chat.click("yes")
    assert "上限額：0円" in chat.text(replies)


def test_start_date_calculator_from_chat(chat):
    replies = chat.say("助成の開始日を計算したい")
    assert replies[-1].expecting == "diagnosis_date"
    chat.say("2025年4月10日")
    chat.say("2025/6/20")
    replies = chat.click("hospitalised")
    assert "2025年4月10日" in chat.text(replies)


def test_start_date_without_a_good_reason_goes_back_one_month(chat):
    chat.say("開始日を計算して")
    chat.say("R7.4.10")
    chat.say("令和7年6月20日")
    replies = chat.click("work")
    assert "2025年5月20日" in chat.text(replies)


def test_mild_high_cost_check_from_chat(chat):
    replies = chat.say("軽症高額に当てはまるか確かめたい")
    assert replies[-1].expecting == "monthly_costs"
    replies = chat.say("40000、30000、35000、33330、50000")
    text = chat.text(replies)
    assert "満たしています" in text


def test_copay_topic_offers_the_calculator(chat):
    replies = chat.say("一般所得2の月の上限額はいくら？")
    assert any(c.value == "start:copay" for r in replies for c in r.choices)


def test_a_menu_button_in_the_middle_of_a_dialog_switches_to_it(chat):
    chat.say("自己負担を計算したい")
    replies = chat.click("office")
    assert replies[-1].expecting == "municipality"
    replies = chat.click("start:copay")
    assert replies[-1].expecting == "welfare"


@pytest.mark.parametrize(
    "said, next_slot",
    [
        ("払ってます", "income_tax"),
        ("かかってます", "income_tax"),
        ("払ってない", "income"),
        ("課税世帯です", "income_tax"),
        ("非課税世帯です", "income"),
        ("うちは非課税です", "income"),
    ],
)
def test_paying_or_not_paying_the_tax_answers_the_tax_exempt_question(chat, said, next_slot):
    chat.say("自己負担を計算したい")
    chat.say("いいえ")  # welfare
    chat.say("いいえ")  # ventilator
    replies = chat.say(said)  # 「…全員が、市町村民税（住民税）非課税ですか？」
    assert replies[-1].expecting == next_slot, chat.text(replies)


def test_dont_know_after_going_back_from_naming_a_recipient_means_no_idea_whether_anyone_is(chat):
    for said in ("自己負担を計算したい", "いいえ", "いいえ", "いいえ", "10万円", "0"):
        chat.say(said)
    assert chat.say("夫も受給者です")[-1].expecting == "household_caps"  # asked for his cap
    assert chat.say("戻る")[-1].expecting == "high_cost_months"
    chat.say("0")
    chat.say("わからない")  # at the caps question asked afresh: whether anyone is, not his cap
    text = chat.text(chat.say("わからない"))  # medical cost
    assert "月の自己負担上限額：20,000円" in text and "概算" not in text, text


def test_residence_tax_said_to_be_levied_answers_no_to_tax_exempt(chat):
    for said in ("自己負担を計算したい", "いいえ", "いいえ"):
        chat.say(said)
    assert chat.say("住民税は課税です")[-1].expecting == "income_tax"


def _to_income_tax(chat):
    chat.say("自己負担を計算したい")
    chat.say("いいえ")  # welfare
    chat.say("いいえ")  # ventilator
    return chat.say("いいえ")  # tax exempt


def test_a_yearly_income_at_the_income_tax_question_is_not_taken_as_income_tax(chat):
    """Issue 25: 「年収は四百五十万くらいです」 was 所得割 4,500,000円 → 上位所得 30,000円, silently."""
    _to_income_tax(chat)
    replies = chat.say("年収は四百五十万くらいです")
    text = chat.text(replies)
    assert replies[-1].expecting == "income_tax"
    assert "概算" in text and "「一般所得2」" in text and "20,000円" in text and "出典" in text
    assert "決定通知書" in text and "所得割" in text and "階層区分" not in text
    replies = chat.say("通知書を見たら所得割は12万円でした")
    assert replies[-1].expecting == "high_cost_months"


def test_a_monthly_residence_tax_deduction_is_asked_back_not_taken_as_income_tax(chat):
    """Issue 25: 「住民税が毎月1万2千円引かれてます」 was 所得割 12,000円 → 一般所得1."""
    _to_income_tax(chat)
    replies = chat.say("給料から住民税が毎月1万2千円引かれてます")
    text = chat.text(replies)
    assert replies[-1].expecting == "income_tax"
    assert "144,000円" in text and "決定通知書" in text


def test_a_monthly_pension_is_not_taken_as_income_tax_nor_as_a_yearly_income(chat):
    """Issue 25: 「年金が月に7万円です」 was 所得割 70,000円, and a yearly 70,000円 at the 本人収入 question."""
    _to_income_tax(chat)
    replies = chat.say("年金が月に7万円です")
    assert replies[-1].expecting == "income_tax" and "決定通知書" in chat.text(replies)
    chat.say("戻る")
    replies = chat.say("はい")  # the household is tax exempt after all
    assert replies[-1].expecting == "income"
    replies = chat.say("年金が月に7万円です")
    assert replies[-1].expecting == "income" and "840,000円" in chat.text(replies)
    replies = chat.say("年金が年に84万円です")
    assert replies[-1].expecting == "household_caps"


def test_a_counter_payment_is_not_taken_as_the_total_medical_cost(chat):
    _to_income_tax(chat)
    chat.say("所得割は5万円です")
    chat.say("ない")
    replies = chat.say("いない")
    assert replies[-1].expecting == "medical_cost"
    replies = chat.say("窓口で3,000円払いました")
    assert replies[-1].expecting == "medical_cost" and "10割" in chat.text(replies)


@pytest.mark.parametrize(
    "said", ["うちの子の場合の上限額は？", "10歳の娘の自己負担いくらになるか知りたい", "息子の医療費の上限を計算したい"]
)
def test_a_child_named_at_the_copay_calculator_hears_of_shoman_first(chat, said):
    """Issue 25: a child got the adult calculator silently; now 小児慢性特定疾病, its ages and the office come first
    (the age asked first when the message does not say it), and the adult calculator does not start."""
    replies = chat.say(said)
    if replies[-1].expecting == "child_age":
        replies = chat.click("under18")
    text = chat.text(replies)
    assert all(r.expecting is None for r in replies)  # no calculator question
    assert "小児慢性特定疾病" in text and "20歳" in text and "保健福祉事務所" in text and "出典" in text


def test_an_adult_named_at_the_copay_calculator_gets_no_shoman_note(chat):
    for said in ("自己負担いくらになるか知りたい", "45歳の息子の自己負担を計算したい"):
        replies = chat.say(said)
        assert "小児慢性" not in chat.text(replies)
        chat.say("やめる")

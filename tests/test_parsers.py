"""Parsers of chat answers: typed text and button values give a value, UNKNOWN or Invalid(hint)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.calc.copay import existing_caps
from handlers.parsers import (
    COUNT_CHOICES,
    HOUSEHOLD_CAPS_CHOICES,
    RATE_CHOICES,
    UNKNOWN,
    YES_NO_CHOICES,
    CapsNeeded,
    ImpossibleDate,
    Invalid,
    MonthAmounts,
    parse_count,
    parse_date,
    parse_household_caps,
    parse_month_amounts,
    parse_rate,
    parse_yen,
    parse_yen_list,
    parse_yes_no,
)

TODAY = date(2026, 11, 23)
FAST = settings(max_examples=200, deadline=None)


def parse_date_today(text: str) -> Any:
    return parse_date(text, TODAY)


# --------------------------------------------------------------------------- yes / no


@pytest.mark.parametrize(
    "text",
    ["はい", "うん", "ええ", "そう", "そうです", "受けてます", "受けている", "受けています", "あります",
     "yes", "Y", "ok", "ＯＫ", "はい、受けています", "装着しています", "yes", "うん、おねがい", "お願い",
     "よろしくお願いします"],
)  # fmt: skip
def test_yes_answers_are_read_as_yes(text: str) -> None:
    assert parse_yes_no(text) is True


@pytest.mark.parametrize(
    "text",
    ["いいえ", "いや", "ううん", "受けてない", "受けていません", "ない", "なし", "no", "N", "いいえ、受けていません",
     "してない", "ありません", "no"],
)  # fmt: skip
def test_no_answers_are_read_as_no(text: str) -> None:
    assert parse_yes_no(text) is False


@pytest.mark.parametrize(
    "text", ["わからない", "分からない", "知らない", "分かんない", "不明", "unknown", "わかりません"]
)
def test_dont_know_is_an_answer_not_an_error(text: str) -> None:
    assert parse_yes_no(text) is UNKNOWN


@pytest.mark.parametrize("text", ["", "   ", "ええと", "🙂", "7万円", "?!"])
def test_unclear_yes_no_asks_again_kindly(text: str) -> None:
    result = parse_yes_no(text)
    assert isinstance(result, Invalid)
    assert "はい" in result.hint


# --------------------------------------------------------------------------- yen


@pytest.mark.parametrize(
    ("text", "yen"),
    [
        ("７万円", 70_000),
        ("7万1千円", 71_000),
        ("71,000", 71_000),
        ("７１，０００円", 71_000),
        ("71000円", 71_000),
        ("71 000", 71_000),
        ("約25万", 250_000),
        ("25万くらい", 250_000),
        ("二十五万", 250_000),
        ("二十五万円", 250_000),
        ("二十五万三千", 253_000),
        ("1.5万", 15_000),
        ("25万円程度", 250_000),
        ("78万円", 780_000),
        ("約80万円", 800_000),
        ("年収78万円です", 780_000),
        ("１２万円", 120_000),
        ("¥71,000", 71_000),
        ("1万5千円", 15_000),
        ("百万円", 1_000_000),
        ("1億", 100_000_000),
        ("10億", 1_000_000_000),
        ("0", 0),
        ("0円", 0),
        ("なし", 0),
        ("ない", 0),
        ("ゼロ", 0),
    ],
)
def test_amounts_in_everyday_forms_are_read_in_yen(text: str, yen: int) -> None:
    assert parse_yen(text) == yen


@pytest.mark.parametrize(
    "text",
    ["-5000", "マイナス5000", "10億1円", "3割", "30%", "6か月", "2027/3/31", "2027年3月31日", "5000,2500",
     "20万〜30万", "万", "71.000", "1.23456万", "千5000", "25万30000", "たくさん", "", "🙂"],
)  # fmt: skip
def test_amounts_that_are_not_yen_ask_again_with_an_example(text: str) -> None:
    result = parse_yen(text)
    assert isinstance(result, Invalid)
    assert "7万1千円" in result.hint


@pytest.mark.parametrize("text", ["わからない", "不明です", "知らない", "unknown"])
def test_unknown_amount_is_an_answer(text: str) -> None:
    assert parse_yen(text) is UNKNOWN


# --------------------------------------------------------------------------- lists of amounts


@pytest.mark.parametrize(
    ("text", "amounts"),
    [
        ("40,000、30,000、35,000、50,000", [40_000, 30_000, 35_000, 50_000]),
        ("40,000,30,000,35,000", [40_000, 30_000, 35_000]),
        ("40000,30000,35000", [40_000, 30_000, 35_000]),
        ("1,000,000,5,000", [1_000_000, 5_000]),
        ("4万円 3万円 3万5千円", [40_000, 30_000, 35_000]),
        ("4万円3万円3万5千円", [40_000, 30_000, 35_000]),
        ("40000／30000", [40_000, 30_000]),
        ("40000\n30000\n0", [40_000, 30_000, 0]),
        ("４００００、３００００、３５０００", [40_000, 30_000, 35_000]),
        ("４０，０００，３０，０００", [40_000, 30_000]),
        ("四万、三万五千、なし", [40_000, 35_000, 0]),
        ("40000・30000・33330", [40_000, 30_000, 33_330]),
        ("40000、、30000。", [40_000, 30_000]),
        ("50000", [50_000]),
    ],
)
def test_lists_of_monthly_amounts_are_read_as_a_person_reads_them(text: str, amounts: list[int]) -> None:
    assert parse_yen_list(text) == amounts


@pytest.mark.parametrize("text", ["40000-30000", "たくさん", "40000、たくさん", "", "、、", "123456789012", "3割、4割"])
def test_a_list_that_is_not_amounts_asks_again_with_an_example(text: str) -> None:
    result = parse_yen_list(text)
    assert isinstance(result, Invalid)
    assert "40,000" in result.hint


def test_more_months_than_the_window_asks_again() -> None:
    result = parse_yen_list("、".join(["40000"] * 13), max_items=12)
    assert isinstance(result, Invalid)
    assert "12か月" in result.hint


def test_unknown_list_is_an_answer() -> None:
    assert parse_yen_list("わからない") is UNKNOWN


def test_mild_high_cost_reads_thousands_commas_and_says_what_it_read(chat: Any) -> None:
    chat.click("start:mild-high-cost")
    text = chat.text(chat.say("40,000、30,000、35,000、50,000"))
    assert "40,000円・30,000円・35,000円・50,000円の4か月分として計算します" in text
    assert "超えた月は3か月" in text
    assert "満たしています" in text


# --------------------------------------------------------------------------- months


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("6", 6),
        ("６か月", 6),
        ("六か月", 6),
        ("6ヶ月", 6),
        ("6ヵ月", 6),
        ("6カ月", 6),
        ("半年", 6),
        ("ない", 0),
        ("なし", 0),
        ("ゼロ", 0),
        ("一度もない", 0),
        ("0", 0),
        ("1年", 12),
        ("毎月", 12),
        ("12か月", 12),
        ("十二か月", 12),
        ("6か月以上", 6),
    ],
)
def test_month_counts_are_read(text: str, months: int) -> None:
    assert parse_count(text) == months


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("2", 2),
        ("２", 2),
        ("二か月", 2),
        ("2ヶ月", 2),
        ("2かげつ", 2),
        ("ふたつき", 2),
        ("ふた月です", 2),
        ("みつき", 3),
        ("みっつ", 3),
        ("ろっかげつ", 6),
        ("じゅういっかげつ", 11),
        ("はんとし", 6),
        ("半年くらい", 6),
        ("ひとつきもない", 0),
    ],
)
def test_month_counts_in_kana_and_everyday_words_are_read(text: str, months: int) -> None:
    assert parse_count(text) == months


@pytest.mark.parametrize("text", ["13", "20か月", "2年", "-1"])
def test_more_than_twelve_months_asks_again_within_the_window(text: str) -> None:
    result = parse_count(text)
    assert isinstance(result, Invalid)
    assert "12" in result.hint


@pytest.mark.parametrize("text", ["1.5", "6円", "3割", "たくさん", "2027/3/31"])
def test_month_count_that_is_not_a_count_asks_again(text: str) -> None:
    assert isinstance(parse_count(text), Invalid)


def test_unknown_month_count_is_an_answer() -> None:
    assert parse_count("わからない") is UNKNOWN


# --------------------------------------------------------------------------- rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("3割", 0.3),
        ("３割", 0.3),
        ("三割", 0.3),
        ("30%", 0.3),
        ("３０％", 0.3),
        ("0.3", 0.3),
        ("3", 0.3),
        ("3割負担です", 0.3),
        ("2割", 0.2),
        ("20%", 0.2),
        ("0.2", 0.2),
        ("1割", 0.1),
        ("一割", 0.1),
        ("10%", 0.1),
        ("0.1", 0.1),
    ],
)
def test_insurance_rate_is_read_as_a_fraction(text: str, rate: float) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["5割", "0.5", "100%", "10割", "abc", "", "3万円"])
def test_rate_outside_1_2_3割_asks_again(text: str) -> None:
    result = parse_rate(text)
    assert isinstance(result, Invalid)
    assert "3割" in result.hint


def test_unknown_rate_is_an_answer() -> None:
    assert parse_rate("わからない") is UNKNOWN


# --------------------------------------------------------------------------- household caps


@pytest.mark.parametrize(
    ("text", "caps"),
    [
        ("いない", []),
        ("いません", []),
        ("なし", []),
        ("一人もいない", []),
        ("10,000円", [10_000]),
        ("1万円", [10_000]),
        ("5000円と2500円", [5_000, 2_500]),
        ("5000、2500", [5_000, 2_500]),
        ("5,000円、2,500円", [5_000, 2_500]),
        ("5000,2500", [5_000, 2_500]),
        ("5000 2500", [5_000, 2_500]),
    ],
)
def test_other_household_caps_are_read_as_a_list(text: str, caps: list[int]) -> None:
    assert parse_household_caps(text) == caps


@pytest.mark.parametrize("text", ["40000", "5万円", "10000と50000"])
def test_household_cap_above_30000_asks_again(text: str) -> None:
    result = parse_household_caps(text)
    assert isinstance(result, Invalid)
    assert "30,000円" in result.hint


@pytest.mark.parametrize("text", ["妻と子", "3割", "", "🙂"])
def test_household_caps_that_are_not_amounts_ask_again(text: str) -> None:
    assert isinstance(parse_household_caps(text), Invalid)


def test_unknown_household_caps_is_an_answer() -> None:
    assert parse_household_caps("わからない") is UNKNOWN


def test_the_caps_that_exist_come_from_the_cap_table() -> None:
    assert sorted(existing_caps()) == [500, 1_000, 1_250, 2_500, 5_000, 10_000, 15_000, 20_000, 30_000]


@pytest.mark.parametrize("text", ["1", "６", "7000円", "3千", "100", "2,600円", "5000と7000"])
def test_a_cap_that_does_not_exist_is_reasked_with_the_existing_caps_as_buttons(text: str) -> None:
    result = parse_household_caps(text)
    assert isinstance(result, Invalid)
    assert "10,000円" in result.hint and "1,250円" in result.hint
    assert ("10,000円", "10000") in result.options
    assert [parse_household_caps(value) for _label, value in result.options] == [[int(v)] for _l, v in result.options]


@pytest.mark.parametrize(
    ("text", "caps"),
    [
        ("夫も受給者ですが、上限額はわからない", [None]),
        ("夫も受給者です。金額はわかりません", [None]),
        ("はい、でも金額は知らない", [None]),
        ("妻と娘が受給者で、上限はわからない", [None, None]),
        ("2人いるけど金額はわからない", [None, None]),
        ("夫は10,000円です", [10_000]),
        ("１２５０円", [1_250]),
        ("五百円", [500]),
    ],
)
def test_another_recipient_named_with_dont_know_is_a_cap_not_known(text: str, caps: list[int | None]) -> None:
    assert parse_household_caps(text) == caps


@pytest.mark.parametrize(
    ("text", "people"),
    [
        ("夫も受給者です", 1),
        ("はい", 1),
        ("います", 1),
        ("妻と子", 2),
        ("2人います", 2),
        ("娘が小慢の受給者証を持ってます", 1),
    ],
)
def test_another_recipient_named_without_an_amount_asks_for_it(text: str, people: int) -> None:
    result = parse_household_caps(text)
    assert isinstance(result, CapsNeeded) and result.people == people
    assert "わからない" in result.hint and result.options


@pytest.mark.parametrize("text", ["いるかわからない", "いるかどうかわかりません", "わからない"])
def test_not_knowing_whether_anyone_is_a_recipient_stays_unknown(text: str) -> None:
    assert parse_household_caps(text) is UNKNOWN


def _copay_until_household(chat: Any) -> None:
    chat.click("start:copay")
    for answer in ("いいえ", "いいえ", "いいえ", "30万円", "ない"):
        replies = chat.say(answer)
    assert replies[-1].expecting == "household_caps"


def test_husband_is_a_recipient_then_dont_know_gives_a_labelled_estimate(chat: Any) -> None:
    _copay_until_household(chat)
    replies = chat.say("夫も受給者です")
    assert replies[-1].expecting == "household_caps"
    assert "30,000" in " ".join(c.value for c in replies[-1].choices) or any(
        c.value == "30000" for c in replies[-1].choices
    )
    replies = chat.say("わからない")
    assert replies[-1].expecting == "medical_cost"
    text = chat.text(chat.say("わからない"))
    assert "上限額：15,000円（概算）" in text
    assert "仮定した概算" in text


def test_husband_is_a_recipient_cap_unknown_in_one_answer_gives_the_estimate(chat: Any) -> None:
    _copay_until_household(chat)
    chat.say("夫も受給者ですが、上限額はわからない")
    text = chat.text(chat.say("わからない"))
    assert "上限額：15,000円（概算）" in text


def test_husband_is_a_recipient_then_his_cap_is_split_exactly(chat: Any) -> None:
    _copay_until_household(chat)
    chat.say("夫も受給者です")
    chat.click("10000")
    text = chat.text(chat.say("わからない"))
    assert "上限額：22,500円" in text and "概算" not in text.split("\n")[1]


def test_a_one_digit_cap_is_not_taken_for_yen(chat: Any) -> None:
    _copay_until_household(chat)
    replies = chat.say("６")
    assert replies[-1].expecting == "household_caps"
    assert any(c.value == "5000" for c in replies[-1].choices)


def test_dont_know_alone_still_means_no_split(chat: Any) -> None:
    _copay_until_household(chat)
    chat.say("わからない")
    text = chat.text(chat.say("わからない"))
    assert "上限額：30,000円" in text and "按分はしていません" in text


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2027年3月31日", date(2027, 3, 31)),
        ("2027/3/31", date(2027, 3, 31)),
        ("2027-03-31", date(2027, 3, 31)),
        ("2027.3.31", date(2027, 3, 31)),
        ("２０２７年３月３１日", date(2027, 3, 31)),
        ("20270331", date(2027, 3, 31)),
        ("令和9年3月31日", date(2027, 3, 31)),
        ("R9.3.31", date(2027, 3, 31)),
        ("r9/3/31", date(2027, 3, 31)),
        ("Ｒ９．３．３１", date(2027, 3, 31)),
        ("平成31年4月30日", date(2019, 4, 30)),
        ("H31.4.30", date(2019, 4, 30)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("令和九年三月三十一日", date(2027, 3, 31)),
        ("2027年3月31日(水)", date(2027, 3, 31)),
        ("有効期限は2027年3月31日までです", date(2027, 3, 31)),
        ("2027年3月末", date(2027, 3, 31)),
        ("令和9年2月末日", date(2027, 2, 28)),
    ],
)
def test_dates_in_common_japanese_forms_are_read(text: str, day: date) -> None:
    assert parse_date(text, TODAY) == day


@pytest.mark.parametrize(
    ("text", "today", "day"),
    [
        ("３月末", date(2026, 11, 23), date(2027, 3, 31)),
        ("3月末日", date(2026, 11, 23), date(2027, 3, 31)),
        ("11月末", date(2026, 11, 23), date(2026, 11, 30)),
        ("3月末", date(2027, 3, 31), date(2027, 3, 31)),
        ("3/31", date(2026, 11, 23), date(2027, 3, 31)),
        ("3月31日", date(2026, 11, 23), date(2027, 3, 31)),
        ("11/23", date(2026, 11, 23), date(2026, 11, 23)),
        ("11/22", date(2026, 11, 23), date(2027, 11, 22)),
        ("2/29", date(2026, 11, 23), date(2028, 2, 29)),
    ],
)
def test_date_without_year_is_the_next_one_on_or_after_today(text: str, today: date, day: date) -> None:
    assert parse_date(text, today) == day


@pytest.mark.parametrize("text", ["2027/2/30", "2027年13月1日", "令和0年1月1日", "令和1年4月30日", "2/30", "13/1"])
def test_impossible_dates_ask_again_with_example_forms(text: str) -> None:
    result = parse_date(text, TODAY)
    assert isinstance(result, Invalid)
    assert "令和9年3月31日" in result.hint


@pytest.mark.parametrize("text", ["5", "70000", "7万円", "はい", "27/3/31"])
def test_a_number_where_a_date_was_asked_asks_for_a_date(text: str) -> None:
    result = parse_date(text, TODAY)
    assert isinstance(result, Invalid)
    assert "日付" in result.hint


def test_year_and_month_without_day_asks_for_the_day() -> None:
    result = parse_date("2027年3月", TODAY)
    assert isinstance(result, Invalid)
    assert "月末" in result.hint


def test_unknown_date_is_an_answer() -> None:
    assert parse_date("わからない", TODAY) is UNKNOWN


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("れいわ8ねん4がつ1にち", date(2026, 4, 1)),
        ("れいわ８ねん４がつついたち", date(2026, 4, 1)),
        ("へいせいがんねん2がつ1にち", date(1989, 2, 1)),
        ("８年４月１日", date(2026, 4, 1)),
        ("8年4月1日です", date(2026, 4, 1)),
        ("9年3月31日", date(2027, 3, 31)),
        ("26年4月1日", date(2026, 4, 1)),
        ("今日", TODAY),
        ("きょう", TODAY),
        ("本日です", TODAY),
        ("昨日", date(2026, 11, 22)),
        ("きのうです", date(2026, 11, 22)),
        ("おととい", date(2026, 11, 21)),
        ("一昨日", date(2026, 11, 21)),
        ("明日", date(2026, 11, 24)),
        ("あした", date(2026, 11, 24)),
        ("あさって", date(2026, 11, 25)),
        ("R8.4.1", date(2026, 4, 1)),
        ("Ｒ８．４．１", date(2026, 4, 1)),
        ("2026/4/1", date(2026, 4, 1)),
        ("２０２６／４／１", date(2026, 4, 1)),
        ("2026-04-01", date(2026, 4, 1)),
        ("4/1", date(2027, 4, 1)),
        ("４月１日", date(2027, 4, 1)),
    ],
)
def test_dates_in_every_written_form_people_use_are_read(text: str, day: date) -> None:
    assert parse_date(text, TODAY) == day


@pytest.mark.parametrize(
    ("text", "prefer", "day"),
    [
        ("4/1", "past", date(2026, 4, 1)),
        ("4/1", "nearest", date(2027, 4, 1)),
        ("11/1", "nearest", date(2026, 11, 1)),
        ("11/1", "future", date(2027, 11, 1)),
        ("12/24", "past", date(2025, 12, 24)),
        ("12/24", "nearest", date(2026, 12, 24)),
        ("11月末", "past", date(2025, 11, 30)),
        ("2/29", "past", date(2024, 2, 29)),
    ],
)
def test_date_without_year_takes_the_sensible_year_for_the_question(text: str, prefer: Any, day: date) -> None:
    assert parse_date(text, TODAY, prefer=prefer) == day


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("令和9年2月30日", "2月30日という日はありません"),
        ("2027/2/30", "2月30日という日はありません"),
        ("2月30日", "2月30日という日はありません"),
        ("4月31日", "4月31日という日はありません"),
        ("2/30", "2月30日という日はありません"),
        ("13月1日", "13月という月はありません"),
        ("2027年13月1日", "13月という月はありません"),
        ("13/1", "13月という月はありません"),
        ("れいわ9ねん2がつ30にち", "2月30日という日はありません"),
        ("9年2月30日", "2月30日という日はありません"),
        ("2027年2月29日", "うるう年ではない"),
        ("令和0年1月1日", "令和0年という年はありません"),
        ("令和1年4月30日", "2019年5月1日から"),
    ],
)
def test_a_date_that_does_not_exist_is_answered_as_such(text: str, says: str) -> None:
    result = parse_date(text, TODAY)
    assert isinstance(result, ImpossibleDate)
    assert says in result.hint


@pytest.mark.parametrize("text", ["50年4月1日", "14年4月1日"])
def test_a_year_without_era_far_from_today_asks_for_the_era(text: str) -> None:
    result = parse_date(text, TODAY)
    assert isinstance(result, Invalid) and not isinstance(result, ImpossibleDate)
    assert "元号" in result.hint


def test_an_impossible_date_at_the_reminder_repeat_back_says_the_day_does_not_exist(chat: Any) -> None:
    chat.click("start:reminder")
    chat.say("2027/3/13")
    replies = chat.say("令和9年2月30日")
    assert "2月30日という日はありません" in replies[-1].text
    assert "「はい」か「いいえ」" not in replies[-1].text
    assert replies[-1].expecting == "expiry_date"
    replies = chat.say("令和9年3月31日")  # a real date still corrects the one being confirmed
    assert "2027年3月31日" in replies[-1].text


def test_an_impossible_date_is_answered_as_such_when_first_asked(chat: Any) -> None:
    chat.click("start:reminder")
    replies = chat.say("令和9年2月30日")
    assert "2月30日という日はありません" in replies[-1].text
    assert replies[-1].expecting == "expiry_date"


def test_start_date_form_reads_kana_dates_and_yesterday(chat: Any) -> None:
    chat.click("start:start-date")
    replies = chat.say("れいわ8ねん11がつ1にち")
    assert replies[-1].expecting == "application_date"
    replies = chat.say("昨日")
    assert replies[-1].expecting == "delay_reason"
    text = chat.text(chat.click("none"))
    assert "2026年11月1日" in text


def test_start_date_form_reads_a_diagnosis_date_without_year_as_the_last_one(chat: Any) -> None:
    chat.click("start:start-date")
    chat.say("11/1")
    chat.say("今日")
    text = chat.text(chat.click("none"))
    assert "2026年11月1日" in text


# --------------------------------------------------------------------------- buttons


@pytest.mark.parametrize(
    ("parser", "choices", "expected"),
    [
        (parse_yes_no, YES_NO_CHOICES, [True, False, UNKNOWN]),
        (parse_rate, RATE_CHOICES, [0.3, 0.2, 0.1, UNKNOWN]),
        (parse_count, COUNT_CHOICES, [0, 6, UNKNOWN]),
        (parse_household_caps, HOUSEHOLD_CAPS_CHOICES, [[], UNKNOWN]),
    ],
    ids=["yes-no", "rate", "count", "household-caps"],
)
def test_every_button_value_and_label_parses_with_the_same_parser(
    parser: Callable[[str], Any], choices: tuple[tuple[str, str], ...], expected: list[Any]
) -> None:
    assert [parser(value) for _label, value in choices] == expected
    assert [parser(label) for label, _value in choices] == expected


@pytest.mark.parametrize("value", [str(n) for n in range(13)])
def test_month_buttons_0_to_12_parse(value: str) -> None:
    assert parse_count(value) == int(value)


@pytest.mark.parametrize("parser", [parse_yen, parse_date_today])
def test_unknown_button_value_parses_for_amounts_and_dates(parser: Callable[[str], Any]) -> None:
    assert parser("unknown") is UNKNOWN


# --------------------------------------------------------------------------- never raise

PARSERS: list[tuple[Callable[[str], Any], Callable[[Any], bool]]] = [
    (parse_yes_no, lambda v: isinstance(v, bool)),
    (parse_yen, lambda v: type(v) is int and 0 <= v <= 1_000_000_000),
    (parse_count, lambda v: type(v) is int and 0 <= v <= 12),
    (parse_rate, lambda v: v in (0.1, 0.2, 0.3)),
    (parse_household_caps, lambda v: isinstance(v, list) and all(c is None or c in existing_caps() for c in v)),
    (parse_date_today, lambda v: isinstance(v, date)),
]
PARSER_IDS = ["yes_no", "yen", "count", "rate", "household_caps", "date"]


def _well_formed(result: Any, is_value: Callable[[Any], bool]) -> bool:
    if result is UNKNOWN:
        return True
    if isinstance(result, Invalid):
        return isinstance(result.hint, str) and bool(result.hint)
    return is_value(result)


RUDE = ["", " ", "\n", "\x00", "\u202e", "a" * 10_000, "🙂" * 10_000, "７" * 10_000, "万" * 10_000, "、" * 10_000,
        "👨‍👩‍👧‍👦", "2027/3/31" * 1000, "-" * 50, "...", ",,,", "〇〇〇", "十十", "元年", "R", "末"]  # fmt: skip


@pytest.mark.parametrize(("parser", "is_value"), PARSERS, ids=PARSER_IDS)
@pytest.mark.parametrize("text", RUDE, ids=range(len(RUDE)))
def test_rude_input_never_raises(parser: Callable[[str], Any], is_value: Callable[[Any], bool], text: str) -> None:
    assert _well_formed(parser(text), is_value)


@pytest.mark.parametrize(("parser", "is_value"), PARSERS, ids=PARSER_IDS)
@FAST
@given(text=st.text())
def test_any_text_gives_a_value_unknown_or_invalid(
    parser: Callable[[str], Any], is_value: Callable[[Any], bool], text: str
) -> None:
    assert _well_formed(parser(text), is_value)


NUMERIC_ALPHABET = st.sampled_from(
    list("0123456789０１２３４５６７８９.,，、/-年月日末万千百十億一二三四五六七八九〇元割%円かヶ月令和平成RHrh 　🙂")
)


@pytest.mark.parametrize(("parser", "is_value"), PARSERS, ids=PARSER_IDS)
@FAST
@given(text=st.text(alphabet=NUMERIC_ALPHABET, max_size=30))
def test_number_like_text_gives_a_value_unknown_or_invalid(
    parser: Callable[[str], Any], is_value: Callable[[Any], bool], text: str
) -> None:
    assert _well_formed(parser(text), is_value)


@pytest.mark.parametrize(("parser", "is_value"), PARSERS, ids=PARSER_IDS)
@FAST
@given(text=st.text(min_size=1, max_size=8).map(lambda s: (s * 10_000)[:10_000]))
def test_ten_thousand_characters_give_a_value_unknown_or_invalid(
    parser: Callable[[str], Any], is_value: Callable[[Any], bool], text: str
) -> None:
    assert _well_formed(parser(text), is_value)


@FAST
@given(today=st.dates(), text=st.text(alphabet=NUMERIC_ALPHABET, max_size=20))
def test_any_today_never_breaks_date_parsing(today: date, text: str) -> None:
    assert _well_formed(parse_date(text, today), lambda v: isinstance(v, date))


# --------------------------------------------------------------------------- round trips


@FAST
@given(n=st.integers(min_value=0, max_value=1_000_000_000))
def test_formatted_yen_amounts_round_trip(n: int) -> None:
    assert parse_yen(f"{n:,}円") == n
    assert parse_yen(str(n)) == n


@FAST
@given(n=st.integers(min_value=1, max_value=100_000))
def test_man_yen_amounts_round_trip(n: int) -> None:
    assert parse_yen(f"{n}万円") == n * 10_000


def _era(day: date) -> tuple[str, str, int]:
    if day >= date(2019, 5, 1):
        return "令和", "R", day.year - 2018
    return "平成", "H", day.year - 1988


FULL_WIDTH = str.maketrans("0123456789/", "０１２３４５６７８９／")

DATE_STYLES: list[Callable[[date], str]] = [
    lambda d: f"{d.year}年{d.month}月{d.day}日",
    lambda d: f"{d.year}/{d.month}/{d.day}",
    lambda d: f"{d.year}-{d.month:02}-{d.day:02}",
    lambda d: f"{d.year}.{d.month}.{d.day}",
    lambda d: f"{d:%Y%m%d}",
    lambda d: f"{d.year}/{d.month}/{d.day}".translate(FULL_WIDTH),
    lambda d: f"{_era(d)[0]}{'元' if _era(d)[2] == 1 else _era(d)[2]}年{d.month}月{d.day}日",
    lambda d: f"{_era(d)[1]}{_era(d)[2]}.{d.month}.{d.day}",
    lambda d: f"{_era(d)[1].lower()}{_era(d)[2]}/{d.month}/{d.day}",
]
DATE_STYLE_IDS = ["kanji", "slash", "iso", "dots", "compact", "full-width", "era-kanji", "era-letter", "era-lower"]


@pytest.mark.parametrize("style", DATE_STYLES, ids=DATE_STYLE_IDS)
@FAST
@given(day=st.dates(min_value=date(1989, 1, 8), max_value=date(2100, 12, 31)))
def test_dates_round_trip_in_every_style(style: Callable[[date], str], day: date) -> None:
    assert parse_date(style(day), TODAY) == day


# --------------------------------------------------------------------------- My Number

MY_NUMBER_LIKE = ["123456789012", "１２３４５６７８９０１２", "1234-5678-9012", "1234 5678 9012"]


@pytest.mark.parametrize(
    ("parser", "is_value"), PARSERS + [(parse_yen_list, lambda v: isinstance(v, list))], ids=PARSER_IDS + ["yen_list"]
)
@pytest.mark.parametrize("text", MY_NUMBER_LIKE[:3])
def test_a_my_number_like_input_is_never_read_as_an_answer(
    parser: Callable[[str], Any], is_value: Any, text: str
) -> None:
    result = parser(text)
    assert isinstance(result, Invalid)
    assert "1234" not in result.hint and "9012" not in result.hint


@pytest.mark.parametrize("text", MY_NUMBER_LIKE)
def test_a_my_number_typed_at_the_months_question_is_guarded_not_read(chat: Any, text: str) -> None:
    chat.click("start:mild-high-cost")
    replies = chat.say(text)
    assert "か月分として計算します" not in chat.text(replies)
    assert replies[-1].expecting == "monthly_costs"


# --------------------------------------------------------------------------- found by the simulated patients


@pytest.mark.parametrize(
    "text, meant",
    [("はい受けてます", True), ("いいえ受けてません", False), ("うん受けてる", True), ("ううんつけてない", False)],
)
def test_yes_or_no_typed_straight_into_the_answer_is_read(text: str, meant: bool) -> None:
    assert parse_yes_no(text) is meant


@pytest.mark.parametrize("text", ["はい受けてません", "いいえ受けてます"])
def test_yes_or_no_that_contradicts_its_answer_asks_again(text: str) -> None:
    assert isinstance(parse_yes_no(text), Invalid)


@pytest.mark.parametrize(
    "text, meant", [("私は受けています", True), ("うちは受けてない", False), ("自分は該当しません", False)]
)
def test_who_the_answer_is_about_may_come_first(text: str, meant: bool) -> None:
    assert parse_yes_no(text) is meant


@pytest.mark.parametrize("parse", [parse_yen, parse_count])
def test_nothing_said_in_the_past_tense_is_zero(parse: Callable[[str], Any]) -> None:
    assert parse("なかった") == 0


def test_no_income_in_one_word_is_zero_yen() -> None:
    assert parse_yen("無収入") == 0


@pytest.mark.parametrize(
    "text, caps",
    [
        ("夫が5000円で娘が2500円", [5000, 2500]),
        ("五千円で娘が二千五百円", [5000, 2500]),
        ("10,000円です", [10000]),
        ("5000円でした", [5000]),
    ],
)
def test_caps_said_person_by_person_with_de_are_a_list(text: str, caps: list[int]) -> None:
    assert parse_household_caps(text) == caps


@pytest.mark.parametrize(
    "text, meant",
    [
        ("そうです、受けています", True),
        ("ちがいます、受けてません", False),
        ("イエス", True),
        ("ノー", False),
        ("なしです", False),
    ],
)
def test_yes_or_no_in_other_everyday_words_is_read(text: str, meant: bool) -> None:
    assert parse_yes_no(text) is meant


# --- months with amounts (the cost log) -----------------------------------------------------------


_JUNE = date(2027, 6, 15)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4月 52,000円、5月 61,000円", [(date(2027, 4, 1), 52_000), (date(2027, 5, 1), 61_000)]),
        ("4月52000 5月6万1千円", [(date(2027, 4, 1), 52_000), (date(2027, 5, 1), 61_000)]),
        ("２０２６年７月：５万円", [(date(2026, 7, 1), 50_000)]),
        ("令和8年7月分は52000円", [(date(2026, 7, 1), 52_000)]),
        ("先月 3万円", [(date(2027, 5, 1), 30_000)]),
        ("12月 5万", [(date(2026, 12, 1), 50_000)]),  # no year: the latest December
        ("5月は五万二千円です", [(date(2027, 5, 1), 52_000)]),
        ("5月 なし", [(date(2027, 5, 1), 0)]),
    ],
)
def test_months_with_amounts_are_read(text, expected):
    value = parse_month_amounts(text, _JUNE)
    assert isinstance(value, MonthAmounts) and list(value.amounts) == expected and not value.paid


def test_what_was_paid_is_told_from_the_total():
    assert parse_month_amounts("5月 自己負担 1万円", _JUNE).paid
    assert not parse_month_amounts("5月 総額 52,000円", _JUNE).paid


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("2026年6月 5万", "直近12か月"),  # twelve months back: outside the window
        ("2027年7月 5万", "まだ来ていない"),
        ("13月 5万", "13月という月はありません"),
        ("5月 52000円 5月 1000円", "同じ月が2回"),
        ("5月 わからない", "わかる月だけ"),
        ("40000、30000", "月と金額を組にして"),
        ("5月に3万円払いましたが戻ってきますか", "月と金額を組にして"),  # a question, not an entry
    ],
)
def test_months_that_cannot_be_logged_get_a_kind_hint(text, hint):
    value = parse_month_amounts(text, _JUNE)
    assert isinstance(value, Invalid) and hint in value.hint


# --- katakana and kana units, as typed on older phones ---------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ハイ", True),
        ("ﾊｲ", True),
        ("ウン", True),
        ("オッケー", True),
        ("イイエ", False),
        ("ｲｲｴ", False),
        ("ノー", False),
        ("ダメ", False),
        ("ワカラナイ", UNKNOWN),
        ("ﾜｶﾗﾅｲ", UNKNOWN),
    ],
)
def test_yes_no_typed_in_katakana_is_read_as_in_hiragana(text: str, expected: object) -> None:
    assert parse_yes_no(text) == expected


@pytest.mark.parametrize(
    "text, yen",
    [
        ("７マン", 70_000),
        ("7まん", 70_000),
        ("7まんえん", 70_000),
        ("5せんえん", 5_000),
        ("1まん2せん", 12_000),
        ("ゼロ", 0),
        ("7ﾏﾝ5ｾﾝｴﾝ", 75_000),
        ("7まんくらい", 70_000),
    ],
)
def test_amounts_with_units_in_kana_are_read_as_with_kanji(text: str, yen: int | None) -> None:
    # 「7まん」 was once read as 7円: a number followed by a unit in kana is that unit, never dropped.
    value = parse_yen(text)
    assert value == yen if yen is not None else isinstance(value, Invalid)


def test_kana_units_in_lists_caps_and_months() -> None:
    assert parse_yen_list("4まんえん3まんえん") == [40_000, 30_000]
    assert parse_household_caps("5せんえん　2せん5ひゃくえん") == [5_000, 2_500]
    assert parse_household_caps("イナイ") == []
    assert parse_count("6カ月") == parse_count("ロッカゲツ") == 6
    assert parse_rate("30パーセント") == 0.3
    assert parse_date("2027ねん3がつ31にち", date(2026, 11, 30)) == date(2027, 3, 31)
    read = parse_month_amounts("4がつ 5まんえん", date(2026, 11, 30))
    assert isinstance(read, MonthAmounts) and read.amounts == ((date(2026, 4, 1), 50_000),)
    assert parse_yes_no("いません") is False  # 「せん」 after no digit is no unit


# Dates said relative to today (issue 25): today is 2026-11-23.
@pytest.mark.parametrize(
    "text,day",
    [
        ("来月の10日", date(2026, 12, 10)),
        ("来月末", date(2026, 12, 31)),
        ("再来月の末", date(2027, 1, 31)),
        ("先月の20日", date(2026, 10, 20)),
        ("今月末です", date(2026, 11, 30)),
        ("3か月前", date(2026, 8, 23)),
        ("3ヶ月前くらい", date(2026, 8, 23)),
        ("さんかげつまえ", date(2026, 8, 23)),
        ("半年後", date(2027, 5, 23)),
        ("2週間前", date(2026, 11, 9)),
        ("去年の4月1日", date(2025, 4, 1)),
        ("来年の3月末", date(2027, 3, 31)),
    ],
)
def test_a_date_said_relative_to_today_is_read_from_today(text: str, day: date) -> None:
    assert parse_date(text, TODAY) == day


@pytest.mark.parametrize(
    "text,month", [("来月", "2026年12月"), ("さらいげつ", "2027年1月"), ("去年の4月", "2025年4月")]
)
def test_a_month_without_its_day_is_asked_back_with_the_month_named(text: str, month: str) -> None:
    result = parse_date(text, TODAY)
    assert isinstance(result, Invalid)
    assert result.hint.startswith(f"{month}の何日でしょうか")


def test_a_relative_day_that_does_not_exist_says_so() -> None:
    result = parse_date("来年の2月29日", TODAY)
    assert isinstance(result, Invalid) and "うるう年" in result.hint


@pytest.mark.parametrize(
    "text,value",
    [
        ("たぶん課税されてると思う", False),
        ("課税されてると思います", False),
        ("たぶん非課税だと思う", True),
        ("非課税かもしれません", True),
    ],
)
def test_an_answer_given_with_doubt_is_still_the_answer(text: str, value: bool) -> None:
    exempt = ("住民税非課税", "非課税世帯", "非課税", "全員")
    taxed = ("住民税", "課税世帯", "課税")
    assert parse_yes_no(text, exempt, taxed) is value


def test_doubt_alone_is_no_answer() -> None:
    assert isinstance(parse_yes_no("たぶん"), Invalid)

"""Dates, counts and hedged answers read with their kind (issue 25), at the parser, against a given today."""

from datetime import date
from types import SimpleNamespace

import pytest

from handlers import parsers
from handlers.parsers import Invalid, Noted, OtherKind
from nlp.text import Text

TODAY = date(2026, 11, 23)
# The tax parser forgets the recipients named at a later question (handlers.copay._forgets_named):
# a state is all it reads.
CTX = SimpleNamespace(state=SimpleNamespace(slots={}))


@pytest.mark.parametrize(
    "said, months",
    [
        ("4月から毎月", 8),
        ("11月から毎月", 1),
        ("12月から毎月", 12),
        ("去年の12月から毎月", 12),
        ("今年の1月からずっと", 11),
        ("去年の夏から毎月", 12),
        ("毎月", 12),
        ("ほぼ毎月です", 12),
    ],
)
def test_a_count_said_as_every_month_since_is_counted_to_this_month_and_said_back(said, months):
    read = parsers.read_months_count(said, TODAY)
    assert isinstance(read, Noted) and read.value == months and f"{months}か月" in read.note


def test_a_season_that_may_or_may_not_reach_six_months_is_asked_back():
    # 今年の夏 from November: June gives 6 months, August only 4.
    read = parsers.read_months_count("今年の夏から毎月", TODAY)
    assert isinstance(read, OtherKind) and ("6か月以上", "6") in read.options


@pytest.mark.parametrize("said", ["半年くらい", "6か月ぐらい", "だいたい半年", "5か月くらい", "7か月ほど"])
def test_a_rough_count_at_the_six_month_line_is_asked_back_with_the_two_answers_that_decide(said):
    read = parsers.read_months_count(said, TODAY)
    assert isinstance(read, OtherKind) and "6か月以上" in read.hint
    assert [parsers.parse_count(v) for _, v in read.options] == [6, 5]


@pytest.mark.parametrize("said, count", [("半年", 6), ("3か月くらい", 3), ("6", 6), ("ない", 0), ("10か月", 10)])
def test_a_clear_or_far_from_the_line_count_is_taken(said, count):
    assert parsers.read_months_count(said, TODAY) == count


@pytest.mark.parametrize(
    "said, word", [("3か月前", "日付ではなく"), ("4月1日", "日付ではなく"), ("5万円", "金額ではなく")]
)
def test_a_date_or_an_amount_at_the_count_question_is_asked_back(said, word):
    read = parsers.read_months_count(said, TODAY)
    assert isinstance(read, OtherKind) and word in read.hint


@pytest.mark.parametrize(
    "said, day",
    [
        ("3か月前", date(2026, 8, 23)),
        ("先月の20日", date(2026, 10, 20)),
        ("半年後", date(2027, 5, 23)),
        ("再来月の1日", date(2027, 1, 1)),
    ],
)
def test_dates_relative_to_today(said, day):
    assert parsers.date_of_kind(said, TODAY, prefer="past") == day


@pytest.mark.parametrize(
    "said, word",
    [("12万円", "金額のようです"), ("70000", "金額のようです"), ("5", "何年何月5日"), ("来月", "2026年12月の何日")],
)
def test_an_amount_or_a_month_without_its_day_at_a_date_question_is_asked_back(said, word):
    read = parsers.date_of_kind(said, TODAY, prefer="past")
    assert isinstance(read, OtherKind) and word in read.hint


@pytest.mark.parametrize("said", ["4月1日", "来月", "3か月前", "2026年6月1日"])
def test_a_date_at_an_amount_question_is_asked_back(said):
    read = parsers.amount_is_date(said, TODAY)
    assert isinstance(read, OtherKind) and "金額をうかがっています" in read.hint


@pytest.mark.parametrize("said", ["7万円", "3月に5万円払った", "所得割は71,000円"])
def test_an_amount_at_an_amount_question_is_not_a_date(said):
    assert parsers.amount_is_date(said, TODAY) is None


@pytest.mark.parametrize(
    "said, caps",
    [
        ("夫も受給者証もっていて上限は1万円です", [10_000]),
        ("母も受給者証を持っていて、上限は2,500円です", [2500]),
        ("夫が受給者で、上限は1万円、娘は五〇〇円", [10_000, 500]),
    ],
)
def test_a_household_cap_in_a_sentence(said, caps):
    assert parsers.parse_household_caps(said) == caps


@pytest.mark.parametrize(
    "said, exempt, word",
    [
        ("たぶん課税されてると思う", False, "「課税されている」として進めます"),
        ("非課税かもしれません", True, "「非課税」として進めます"),
    ],
)
def test_a_hedged_answer_at_the_tax_question_is_taken_and_said_back(said, exempt, word):
    from handlers.copay import COPAY_FORM

    read = COPAY_FORM.slot("tax_exempt").parse(Text(said), CTX)
    assert isinstance(read, Noted) and read.value is exempt and word in read.note


def test_a_plain_answer_at_the_tax_question_is_not_said_back():
    from handlers.copay import COPAY_FORM

    assert COPAY_FORM.slot("tax_exempt").parse(Text("課税されてます"), CTX) is False
    assert not isinstance(COPAY_FORM.slot("tax_exempt").parse(Text("たぶん"), CTX), Noted)
    assert isinstance(parsers.read_months_count("xyz", TODAY), Invalid)

"""Simulated patients who answer with dates, counts, corrections and whole sentences (issue 25).

Each seeded patient goes through the copay dialog the way people talk: 「たぶん課税されてると思う」 at the tax
question (taken as 課税, said back as taken), a date (「来月」「4月1日」) given first where the 所得割 amount is asked
(asked back, never taken), the 高額かつ長期 months said as 「毎月」「4月から毎月」「去年の夏から毎月」 (counted from the
bot's clock, said back) or as 「半年くらい」 / 「3か月前」 (asked back, then answered with a button), a correction in
a sentence of the 所得割 given two questions earlier (「ちがう、7万じゃなくて5万だった」: that answer changed, said
so, and the dialog goes on at the question it was at), and the household cap in a sentence
(「夫も受給者証もっていて上限は1万円です」). The conversation must end with the tier and cap the project's
calculator gives for the true facts. The expected count of 「4月から毎月」 is worked out here from the clock
the bot is given (``tests.conftest.FIXED_NOW``), independently of the parser.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from handlers.calc.copay import CopayFacts, possible_results
from tests.conftest import FIXED_NOW
from tests.test_simulated_figures import json_turns, text_turns
from tests.test_simulated_patient import Seen, alarms

SEED = 2525
PATIENTS = 300
START = "自己負担いくらになるか知りたい"
TODAY = FIXED_NOW.date()
CAPS = (2500, 5000, 10_000, 20_000)


@dataclass(frozen=True)
class Patient:
    name: str
    tax_said: str
    date_first: str  # a date said at the 所得割 question
    income_tax_said: str  # the figure first given (maybe misread)
    correction: str | None  # said at the next question, correcting the 所得割
    months_said: tuple[str, ...]  # what is said at the count question, turn by turn
    months_noted: str | None  # what the bot must say back about the count
    caps_said: str
    tier: str
    cap: int


def _months_between(first_month: int, last_year_too: bool) -> int:
    """Months from ``first_month`` to TODAY's month, both counted, at most 12 (the test's own arithmetic)."""
    year = TODAY.year - 1 if last_year_too or first_month > TODAY.month else TODAY.year
    return min(12, (TODAY.year - year) * 12 + TODAY.month - first_month + 1)


def _count_phrase(rng: random.Random) -> tuple[tuple[str, ...], int, str | None]:
    kind = rng.choice(["every", "since", "since-last-year", "season", "rough", "date-first", "plain"])
    if kind == "every":
        return (rng.choice(["毎月", "ほぼ毎月です", "毎月こえてます"]),), 12, "12か月"
    if kind == "since":
        m = rng.randint(1, 12)
        n = _months_between(m, False)
        return (rng.choice([f"{m}月から毎月", f"{m}月からずっと", f"{m}月ごろから毎月です"]),), n, f"{n}か月"
    if kind == "since-last-year":
        m = rng.randint(1, 12)
        n = _months_between(m, True)
        return (f"去年の{m}月から毎月",), n, f"{n}か月"
    if kind == "season":
        # Last summer, 2025: June to August of the year before TODAY's (Nov 2026): over 12 months either way.
        return ("去年の夏から毎月",), 12, "12か月"
    if kind == "rough":
        over = rng.random() < 0.5
        return (
            (
                rng.choice(["半年くらい", "6か月ぐらい", "だいたい半年", "5か月くらい"]),
                "6か月以上" if over else "5か月以下",
            ),
            6 if over else 5,
            None,
        )
    if kind == "date-first":
        n = rng.choice([0, 2, 7, 9])
        return (rng.choice(["3か月前", "4月1日"]), f"{n}か月です" if n else "ない"), n, None
    n = rng.choice([0, 1, 3, 8, 10])
    return (f"{n}か月です" if n else "一度もないです",), n, None


def _patient(i: int, rng: random.Random) -> Patient:
    true_tax = rng.choice([0, 30_000, 50_000, 71_000, 120_000, 251_000, 300_000, rng.randrange(1000, 500_000, 1000)])
    correction = None
    first = true_tax
    if rng.random() < 0.5:
        first = rng.choice([x for x in (40_000, 70_000, 150_000, 260_000) if x != true_tax])
        correction = rng.choice(
            [
                f"ちがう、{first:,}円じゃなくて{true_tax:,}円だった",
                f"さっきの{first:,}円じゃなくて{true_tax:,}円",
                f"間違えました、所得割は{first:,}円ではなく{true_tax:,}円です",
            ]
        )
    months_said, months, noted = _count_phrase(rng)
    others = rng.choice([(), (), (rng.choice(CAPS),)])
    if others:
        cap = others[0]
        caps_said = rng.choice(
            [
                f"夫も受給者証もっていて上限は{cap:,}円です",
                f"妻も受給者で上限額は{cap:,}円です",
                f"母も受給者証を持っていて、上限は{cap:,}円です",
            ]
        )
    else:
        caps_said = rng.choice(["いない", "ほかにはいません"])
    facts = CopayFacts(
        welfare=False,
        ventilator=False,
        tax_exempt=False,
        income=None,
        income_tax=true_tax,
        high_cost_months=months,
        household_caps=others,
        medical_cost=None,
        insurance_rate=None,
    )
    result = possible_results(facts)
    assert len(result) == 1
    return Patient(
        f"kind-{i}",
        rng.choice(["たぶん課税されてると思う", "課税されてると思います", "課税かもしれません", "いいえ"]),
        rng.choice(["来月", "4月1日", "3か月前", "2026年6月1日"]),
        rng.choice([f"所得割は{first:,}円です", f"通知書では{first:,}円でした", f"{first:,}円"]),
        correction,
        months_said,
        noted,
        caps_said,
        result[0].tier,
        result[0].cap,
    )


def patients() -> list[Patient]:
    rng = random.Random(SEED)
    return [_patient(i, rng) for i in range(PATIENTS)]


class Failure(AssertionError):
    pass


def converse(p: Patient, turn: Callable[[str], Seen]) -> None:
    seen = turn(START)
    corrected = date_said = False
    months_left = list(p.months_said)
    for _ in range(25):
        slot = seen.slot
        if slot is None:
            break
        if slot in ("welfare", "ventilator"):
            seen = turn("いいえ")
        elif slot == "tax_exempt":
            seen = turn(p.tax_said)
            if p.tax_said != "いいえ" and "「課税されている」として進めます" not in seen.text:
                raise Failure(f"{p.tax_said!r} was taken without a word: {seen.text[:200]}")
        elif slot == "income_tax" and not date_said:
            date_said = True
            seen = turn(p.date_first)
            if seen.slot != "income_tax" or "日付のようです" not in seen.text:
                raise Failure(
                    f"the date {p.date_first!r} at the 所得割 question was not asked back: "
                    f"{seen.slot} {seen.text[:200]}"
                )
        elif slot == "income_tax":
            seen = turn(p.income_tax_said)
        elif slot == "high_cost_months" and p.correction and not corrected:
            corrected = True
            seen = turn(p.correction)
            if "「所得割」を" not in seen.text or "に直しました" not in seen.text or seen.slot != "high_cost_months":
                raise Failure(
                    f"{p.correction!r} did not change the 所得割 and stay at the count: {seen.slot} {seen.text[:200]}"
                )
        elif slot == "high_cost_months":
            if not months_left:
                raise Failure(f"the count question again after {p.months_said}: {seen.text[:200]}")
            said = months_left.pop(0)
            seen = turn(said)
            if months_left and seen.slot != "high_cost_months":
                raise Failure(f"{said!r} was taken as a count (next: {seen.slot})")
            if not months_left and p.months_noted and p.months_noted not in seen.text:
                raise Failure(f"{said!r} was not said back as {p.months_noted}: {seen.text[:200]}")
        elif slot == "household_caps":
            seen = turn(p.caps_said)
        elif slot == "medical_cost":
            seen = turn("わからない")
        else:
            raise Failure(f"unexpected question {slot}")
    if f"月の自己負担上限額：{p.cap:,}円" not in seen.text or f"階層区分：{p.tier}" not in seen.text:
        raise Failure(f"expected {p.tier} {p.cap:,}円, got: {seen.text[:300]}")


def run_all(bot: Any, edge: str, turns: Callable[[Any, str], Callable[[str], Seen]]) -> None:
    alarm = alarms(bot.kb)
    failures = []
    for p in patients():
        if any(alarm(s) for s in (p.income_tax_said, p.correction or "", p.caps_said)):
            continue  # digits the emergency detector takes for 119 (see test_simulated_patient.alarms)
        try:
            converse(p, turns(bot, f"{edge}-{p.name}"))
        except Failure as exc:
            failures.append(f"{p.name} ({p.months_said} / {p.correction}): {exc}")
    assert not failures, f"{len(failures)} of {PATIENTS} went wrong:\n" + "\n".join(failures[:8])


def test_three_hundred_patients_with_dates_counts_corrections_and_sentences_reach_their_cap_in_the_terminal(bot):
    run_all(bot, "text", text_turns)


def test_three_hundred_patients_with_dates_counts_corrections_and_sentences_reach_their_cap_over_chat_json(bot):
    run_all(bot, "json", json_turns)


def test_the_generated_patients_cover_every_kind():
    everyone = patients()
    assert sum(p.correction is not None for p in everyone) >= 100
    assert sum(len(p.months_said) == 2 for p in everyone) >= 50, "counts asked back"
    assert sum(p.months_noted is not None and p.months_noted != "12か月" for p in everyone) >= 30, "「N月から毎月」"
    assert sum("受給者" in p.caps_said for p in everyone) >= 50, "caps in a sentence"
    assert len({p.tier for p in everyone}) >= 3
    assert {p.date_first for p in everyone} >= {"来月", "4月1日", "3か月前"}

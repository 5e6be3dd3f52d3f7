"""Simulated patients who answer with figures of another kind (issue 25), through the terminal and ``chat --json``.

Each seeded patient is asked the copay questions and answers the amount questions first the way people
do when they do not have the right paper at hand: 「年収は四百五十万くらいです」 or 「住民税が毎月1万2千円引かれてます」
at the 所得割 question, 「年金が月に7万円です」 at the 本人収入 question, 「窓口で3,000円払いました」 at the
10割の医療費 question. The bot must never take such a figure as the slot's own: it must ask the same question
again with a short question that finds the real figure (where 所得割 stands on the 住民税決定通知書), an
explicit 概算 with its assumption and source where one is cited (the national 年収の目安, FACTS.md §3), or the
yearly figure (×12 shown). Then the patient gives the real figure in a sentence
(「通知書を見たら所得割は7万1千円でした」) and the conversation must end with the tier and cap the project's
calculator gives for the true facts.

``test_simulated_patient.py`` is the model (and lends its terminal/JSON readers); this one is about kinds.
"""

from __future__ import annotations

import dataclasses
import io
import random
from dataclasses import dataclass
from typing import Any, Callable

from bot.channels.console import run_json, run_text
from handlers.calc.copay import CopayFacts, possible_results
from tests.test_simulated_patient import Seen, alarms, kanji, seen_in_json, seen_in_text

SEED = 25
PATIENTS = 300
START = "自己負担いくらになるか知りたい"

# The national guide of yearly income per tier (FACTS.md §3), written again here as the test's own oracle.
GUIDE = ((1_600_000, 3_700_000, "一般所得1"), (3_700_000, 8_100_000, "一般所得2"), (8_100_000, 10**12, "上位所得"))


def guide_tier(annual: int) -> str | None:
    return next((tier for low, high, tier in GUIDE if low <= annual < high), None)


@dataclass(frozen=True)
class Patient:
    name: str
    tax_exempt: bool
    income: int | None  # yearly, when tax exempt
    income_tax: int | None  # when taxed
    wrong: str  # the figure of another kind said first
    check_wrong: Callable[[str], bool]  # what the re-ask must say
    right: str  # the real figure, in a sentence
    cost_first: str  # a counter payment said at the 10割 question
    tier: str
    cap: int
    tax_said: str = ""  # the answer to 「非課税ですか？」, often with doubt (「たぶん課税されてると思う」)
    correction: tuple[str, str, int] | None = None  # after the result: 「ちがう、XじゃなくてY」, its tier and cap


def _man(n: int, rng: random.Random) -> str:
    return rng.choice([f"{n // 10_000}万", kanji(n // 10_000) + "万", f"{n:,}円"])


def _patient(i: int, rng: random.Random) -> Patient:
    tax_exempt = rng.random() < 0.3
    if tax_exempt:
        monthly = rng.randrange(30_000, 150_000, 1000)
        income = monthly * 12
        wrong = rng.choice(
            [
                f"年金が月に{_man(monthly, rng) if monthly % 10_000 == 0 else f'{monthly:,}円'}です",
                f"手取りは月{monthly:,}円くらい",
            ]
        )
        right = rng.choice([f"年金が年に{income:,}円です", f"1年で{income:,}円です", f"{income:,}円"])

        def check(text: str, income: int = income) -> bool:
            return f"{income:,}円" in text and "1年分" in text

        facts = CopayFacts(
            welfare=False,
            ventilator=False,
            tax_exempt=True,
            income=income,
            income_tax=None,
            high_cost_months=0,
            household_caps=(),
            medical_cost=None,
            insurance_rate=None,
        )
        income_tax = None
    else:
        income_tax = rng.choice(
            [0, 30_000, 70_000, 71_000, 120_000, 250_000, 251_000, 400_000, rng.randrange(1000, 600_000, 1000)]
        )
        kind = rng.choice(["annual", "resident-monthly", "pension"])
        if kind == "annual":
            annual = rng.randrange(1_000_000, 12_000_000, 100_000)
            wrong = rng.choice([f"年収は{kanji(annual // 10_000)}万くらいです", f"年収{annual // 10_000}万円です"])
            tier = guide_tier(annual)

            def check(text: str, tier: str | None = tier) -> bool:
                return tier is None or ("概算" in text and f"「{tier}」" in text and "出典" in text)
        elif kind == "resident-monthly":
            monthly = rng.randrange(1000, 40_000, 1000)
            wrong = rng.choice(
                [
                    "給料から住民税が毎月"
                    f"{_man(monthly, rng) if monthly % 10_000 == 0 else f'{monthly:,}円'}引かれてます",
                    f"住民税は毎月{monthly:,}円天引きです",
                ]
            )

            def check(text: str, monthly: int = monthly) -> bool:
                return f"{monthly * 12:,}円" in text
        else:
            wrong = f"年金が月に{rng.randrange(5, 25)}万円です"

            def check(text: str) -> bool:
                return "所得割の額ではない" in text

        right = rng.choice(
            [f"通知書を見たら所得割は{income_tax:,}円でした", f"所得割額は{income_tax:,}円です", f"{income_tax:,}円"]
        )
        facts = CopayFacts(
            welfare=False,
            ventilator=False,
            tax_exempt=False,
            income=None,
            income_tax=income_tax,
            high_cost_months=0,
            household_caps=(),
            medical_cost=None,
            insurance_rate=None,
        )
        income = None
    result = possible_results(facts)
    assert len(result) == 1
    paid = rng.randrange(1000, 20_000, 1000)
    tax_said = rng.choice(
        ["はい", "たぶん非課税だと思う", "非課税かもしれません"]
        if tax_exempt
        else ["いいえ", "たぶん課税されてると思う", "課税されてると思います", "住民税は払ってます"]
    )
    correction = None
    if income_tax is not None and rng.random() < 0.5:
        # The patient misread the notice: the 所得割 was another figure, corrected in a sentence after the result.
        fixed = rng.choice([0, 50_000, 100_000, 200_000, 300_000, rng.randrange(1000, 600_000, 1000)])
        if fixed != income_tax:
            again = possible_results(dataclasses.replace(facts, income_tax=fixed))
            said = rng.choice(
                [
                    f"ちがう、{income_tax:,}円じゃなくて{fixed:,}円でした",
                    f"間違えました。所得割は{income_tax:,}円ではなく{fixed:,}円です",
                    f"さっきの{income_tax:,}円じゃなくて{fixed:,}円だった",
                ]
            )
            correction = (said, again[0].tier, again[0].cap)
    return Patient(
        f"fig-{i}",
        tax_exempt,
        income,
        income_tax,
        wrong,
        check,
        right,
        rng.choice([f"窓口で{paid:,}円払いました", f"病院で{paid:,}円支払った"]),
        result[0].tier,
        result[0].cap,
        tax_said,
        correction,
    )


def patients() -> list[Patient]:
    rng = random.Random(SEED)
    return [_patient(i, rng) for i in range(PATIENTS)]


class Failure(AssertionError):
    pass


def converse(patient: Patient, turn: Callable[[str], Seen], alarm: Callable[[str], bool]) -> None:
    """One conversation; raises ``Failure`` naming what a person would notice."""
    amount_slot = "income" if patient.tax_exempt else "income_tax"
    for said in (patient.wrong, patient.right, patient.cost_first):
        if alarm(said):  # digits the emergency detector takes for 119 (see test_simulated_patient.alarms)
            return
    seen = turn(START)
    answers = {
        "welfare": "いいえ",
        "ventilator": "いいえ",
        "tax_exempt": patient.tax_said,
        "high_cost_months": "ない",
        "household_caps": "いない",
    }
    wrong_said = cost_said = False
    for _ in range(20):
        slot = seen.slot
        if slot is None:
            break
        if slot == amount_slot and not wrong_said:
            wrong_said = True
            seen = turn(patient.wrong)
            if seen.slot != amount_slot:
                raise Failure(f"{patient.wrong!r} was taken as the {amount_slot} (next: {seen.slot})")
            if not patient.check_wrong(seen.text):
                raise Failure(f"the re-ask after {patient.wrong!r} does not find the real figure: {seen.text[:300]}")
            if amount_slot == "income_tax" and "決定通知書" not in seen.text:
                raise Failure(f"no word of where 所得割 stands: {seen.text[:300]}")
            seen = turn(patient.right)
            if seen.slot == amount_slot:
                raise Failure(f"the real figure {patient.right!r} was not accepted: {seen.text[:300]}")
            continue
        if slot == "medical_cost" and not cost_said:
            cost_said = True
            seen = turn(patient.cost_first)
            if seen.slot != "medical_cost" or "10割" not in seen.text:
                raise Failure(f"{patient.cost_first!r} was taken as the 10割 total (next: {seen.slot})")
            seen = turn("わからない")
            continue
        if slot not in answers:
            raise Failure(f"unexpected question {slot}")
        seen = turn(answers[slot])
    if f"月の自己負担上限額：{patient.cap:,}円" not in seen.text or f"階層区分：{patient.tier}" not in seen.text:
        raise Failure(f"expected {patient.tier} {patient.cap:,}円, got: {seen.text[:300]}")
    if patient.correction is not None:
        said, tier, cap = patient.correction
        seen = turn(said)
        if f"月の自己負担上限額：{cap:,}円" not in seen.text or f"階層区分：{tier}" not in seen.text:
            raise Failure(f"after {said!r} expected {tier} {cap:,}円, got: {seen.text[:300]}")


def text_turns(bot: Any, user: str) -> Callable[[str], Seen]:
    out = io.StringIO()

    def turn(said: str) -> Seen:
        start = len(out.getvalue())
        run_text(bot, io.StringIO(said + "\n"), out, user=user)
        return seen_in_text(out.getvalue()[start:])

    return turn


def json_turns(bot: Any, user: str) -> Callable[[str], Seen]:
    import json

    out = io.StringIO()

    def turn(said: str) -> Seen:
        run_json(bot, io.StringIO(json.dumps({"user": user, "text": said}, ensure_ascii=False) + "\n"), out, user=user)
        return seen_in_json(out.getvalue().splitlines()[-1])

    return turn


def run_all(bot: Any, edge: str, turns: Callable[[Any, str], Callable[[str], Seen]]) -> None:
    alarm = alarms(bot.kb)
    failures = []
    for p in patients():
        try:
            converse(p, turns(bot, f"{edge}-{p.name}"), alarm)
        except Failure as exc:
            failures.append(f"{p.name} ({p.wrong} / {p.right}): {exc}")
    assert not failures, f"{len(failures)} of {PATIENTS} went wrong:\n" + "\n".join(failures[:8])


def test_three_hundred_patients_with_figures_of_another_kind_reach_their_cap_in_the_terminal(bot):
    run_all(bot, "text", text_turns)


def test_three_hundred_patients_with_figures_of_another_kind_reach_their_cap_over_chat_json(bot):
    run_all(bot, "json", json_turns)


def test_the_generated_patients_cover_every_kind():
    everyone = patients()
    assert sum(p.correction is not None for p in everyone) >= 50, "corrections in a sentence after the result"
    assert sum("と思う" in p.tax_said or "かも" in p.tax_said for p in everyone) >= 50, "answers given with doubt"
    wrong = [p.wrong for p in everyone]
    for word in ("年収", "住民税", "年金が月に", "手取り"):
        assert any(word in w for w in wrong), word
    assert any("四百" in w or "百" in w for w in wrong)

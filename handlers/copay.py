"""The guided calculators: monthly copay cap, subsidy start date, and the 軽症高額 check.

Each is a ``Form`` (handlers.dialog): the questions, their buttons, their
parsers and when each is asked, declared as data. The arithmetic lives in the
pure modules of ``handlers.calc``, shared with ``nanbyo-bot copay``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any, Final, TypeGuard

from handlers import amounts, parsers
from handlers.base import Answers, Context, Form, Slot, known_office
from handlers.calc.copay import CopayError, CopayFacts, CopayResult, possible_results
from handlers.calc.cost_log import RULES, progress, window
from handlers.calc.mild_high_cost import MildHighCostError, check_mild_high_cost
from handlers.calc.start_date import DELAY_REASONS, SCHEME_START, StartDateError, delay_reason, earliest_start
from handlers.cost_log import logged_totals
from handlers.messages import Choice, Fact, Reply, Result, Source
from handlers.parsers import UNKNOWN, Invalid, Noted
from nlp.text import Text

# The 出典 lines of the results are knowledge: ``ctx.kb.citation(name)`` gives the prefecture's own
# line (prefecture.yaml ``citations``) or the national one (sources.yaml ``citations``).


def _choices(pairs: tuple[tuple[str, str], ...]) -> tuple[Choice, ...]:
    return tuple(Choice(label, value) for label, value in pairs)


# Not a slot: remembers, between 「夫も受給者です」 and the answer to the re-ask for the amount,
# how many other recipients were named, so that a following 「わからない」 means "their caps are
# unknown" (an estimated split, FACTS §3) rather than "no idea whether anyone is".
_OTHERS_NAMED = "household_caps_others_named"


def _forgets_named(parse: Callable[[Text, Context], Any]) -> Callable[[Text, Context], Any]:
    """The parser of a question before the caps one, which also forgets the recipients named there.

    Answering an earlier question means the user went back (「戻る」) after 「夫も受給者です」, so a
    later 「わからない」 at the caps question is again "no idea whether anyone is", not "his cap is unknown".
    """

    def parse_and_forget(text: Text, ctx: Context) -> Any:
        ctx.state.slots.pop(_OTHERS_NAMED, None)
        return parse(text, ctx)

    return parse_and_forget


def _yes_no(text: Text, ctx: Context) -> Any:
    return parsers.parse_yes_no(text)


def _yes_no_about(about: tuple[str, ...], opposite: tuple[str, ...] = ()) -> Callable[[Text, Context], Any]:
    """A yes/no parser for a question about ``about`` (see ``parsers.parse_yes_no``)."""

    def parse(text: Text, ctx: Context) -> Any:
        return parsers.parse_yes_no(text, about=about, opposite=opposite)

    return _forgets_named(parse)


_WELFARE = _yes_no_about(("生活保護", "保護"))
_VENTILATOR = _yes_no_about(("人工呼吸器等装着者", "人工呼吸器", "呼吸器", "補助人工心臓", "装着者", "認定", "常時"))
# 「非課税ですか？」: 「課税されてます」「住民税を払ってます」「課税世帯です」 say no.
_TAX_EXEMPT_WORDS = _yes_no_about(
    (
        "市町村民税非課税",
        "住民税非課税",
        "住民税は非課税",
        "住民税が非課税",
        "全員非課税",
        "みんな非課税",
        "非課税世帯",
        "非課税",
        "全員",
        "みんな",
    ),
    ("住民税課税", "住民税は課税", "住民税が課税", "住民税", "市町村民税", "税金", "所得割", "課税世帯", "課税"),
)
# Said alone, 「払ってます」「かかってます」 are about the tax itself: a no (and 「払ってない」 a yes), as
# after 「住民税を」; without it they would read as a plain yes to 「非課税ですか？」.
_PAYS_TAX = re.compile(r"^(?:払っ|はらっ|納め|おさめ|納付し|かかっ)")


# 「たぶん」「思う」: a hedged answer is taken, and said back as taken, so that it can be corrected.
_HEDGED = re.compile(r"たぶん|多分|おそらく|恐らく|と思|はず|かも|気がする")


def _TAX_EXEMPT(text: Text, ctx: Context) -> Any:
    if _PAYS_TAX.match(text.compact):
        text = Text("住民税を" + text.raw)
    value = _TAX_EXEMPT_WORDS(text, ctx)
    if isinstance(value, bool) and _HEDGED.search(text.compact):
        said = "非課税" if value else "課税されている"
        return Noted(
            value,
            f"「{said}」として進めます。はっきりしない場合は、住民税の決定通知書か課税（非課税）証明書で確かめられます。"
            "違っていたら「ちがう、課税じゃなくて非課税」のように送ってください。",
        )
    return value


@_forgets_named
def _count(text: Text, ctx: Context) -> Any:
    return parsers.read_months_count(text, ctx.today)


@_forgets_named
def _rate(text: Text, ctx: Context) -> Any:
    return parsers.parse_rate(text)


def _caps(text: Text, ctx: Context) -> Any:
    value = parsers.parse_household_caps(text)
    if isinstance(value, parsers.CapsNeeded):
        ctx.state.slots[_OTHERS_NAMED] = value.people
        return value
    if isinstance(value, Invalid):
        return value
    named = ctx.state.slots.pop(_OTHERS_NAMED, None)
    if value is UNKNOWN and isinstance(named, int) and named > 0:
        return [None] * named
    return list(value) if isinstance(value, (list, tuple)) else value


def _date(text: Text, ctx: Context) -> Any:
    # Asked for the 診断年月日, a day already past: 「4/1」 without a year is the last 4月1日.
    return parsers.date_of_kind(text, ctx.today, prefer="past")


def _is(answers: Answers, name: str, value: object) -> bool:
    return answers.get(name, None) is value


def _not_welfare(a: Answers) -> bool:
    return not _is(a, "welfare", True)


def _exempt_or_unknown(a: Answers) -> bool:
    return _not_welfare(a) and (_is(a, "tax_exempt", True) or _is(a, "tax_exempt", UNKNOWN))


def _taxed_or_unknown(a: Answers) -> bool:
    return _not_welfare(a) and not _is(a, "tax_exempt", True)


def _high_cost_matters(a: Answers) -> bool:
    # 高額かつ長期 only lowers the caps of 一般所得1 and above, and not below a ventilator's 1,000円.
    return _taxed_or_unknown(a) and not _is(a, "ventilator", True)


def _cost_known(a: Answers) -> bool:
    cost = a.get("medical_cost")
    return _not_welfare(a) and isinstance(cost, int) and cost > 0


Q_WELFARE = "生活保護を受けていますか？"
Q_VENTILATOR = (
    "人工呼吸器や補助人工心臓を常時つけていて、「人工呼吸器等装着者」として認定されていますか？"
    "（認定されると、所得にかかわらず上限は月1,000円です）"
)
Q_TAX_EXEMPT = "同じ医療保険に入っているご家族（支給認定世帯）全員が、市町村民税（住民税）非課税ですか？"
Q_INCOME = "患者さんご本人の、前の年の収入（合計所得金額や年金などの収入）はおよそいくらですか？（例：78万円）"
Q_INCOME_TAX = (
    "同じ医療保険に入っているご家族（支給認定世帯）の、市町村民税の「所得割」の合計額はいくらですか？"
    "（例：7万1千円、71,000円）"
)
Q_HIGH_COST = (
    "この12か月のうち、指定難病の医療費の総額（10割分）が5万円を超えた月は何か月ありますか？"
    "（認定を受けた後の月だけを数えます）"
)
Q_CAPS = (
    "同じ世帯に、ほかに指定難病や小児慢性特定疾病の受給者証を持っている方はいますか？"
    "いる場合は、その方の受給者証にある月額上限額を教えてください（例：10,000円、5000円と2500円）。"
)
Q_COST = (
    "今月かかる医療費の総額（10割分、保険がきく前の金額）がわかれば教えてください。"
    "窓口で払う額の目安を計算します。（例：12万円）"
)
Q_RATE = "ふだんの保険証での窓口負担は何割ですか？（受給者証があっても、もともと1割の方は1割のままです）"

HELP_TAX_EXEMPT = (
    "非課税かどうかは、市町村から届く住民税の「決定通知書」や「課税（非課税）証明書」でわかります。"
    "わからないままでも、考えられる上限額をまとめてお示しします。"
)
HELP_INCOME = "収入がわからなくても大丈夫です。考えられる上限額をまとめてお示しします。"
HELP_INCOME_TAX = (
    "所得割の額は、住民税の「決定通知書」（6月ごろ届きます）や「課税証明書」の「所得割額」の欄に書かれています。"
    "ご家族の分も合計します。わからないままでも、考えられる上限額をまとめてお示しします。"
)
HELP_HIGH_COST = (
    "月ごとの医療費の総額は、「自己負担上限額管理票」に医療機関が書いてくれる総額や、領収書でわかります。"
    "わからなければ、ひとまず数えずに計算します。"
)
HELP_CAPS = "わからなければ、ひとまず按分（世帯内での分け合い）はないものとして計算します。"
HELP_COST = "医療費がわからなければ、上限額だけをお示しします。"
HELP_RATE = "わからなければ、受給者証がある方の標準の2割で計算します。"


# Said with the intro when the message that starts the dialog names a child as the patient (handlers.situations).
NOTE_CHILD: Final = (
    "お子さん（18歳未満）のことでしたら、指定難病ではなく「小児慢性特定疾病」の医療費助成の対象になる場合があり、"
    "上限額の表も指定難病とは別です。ここでの計算は指定難病の上限額で、小児慢性の上限額はこの計算では出せません。"
    "小児慢性の助成は新しく申請できるのが18歳未満まで、引き続き受けられるのが20歳になるまでです。"
    "小児慢性の上限額と申請は、お住まいの地域の保健福祉事務所（前橋市・高崎市は市の保健所）にお尋ねください。"
    "（出典：広島県「小児慢性特定疾病から指定難病への移行について」）"
)


def _child_named(ctx: Context) -> str | None:
    """The 小児慢性特定疾病 note when the starting message names a child, or the user said before that the
    patient is a child (never the adult calculator silently)."""
    # One reading of 「a child as the patient」 (not a helper, not an adult), and what was kept of it.
    from handlers.situations import PATIENT_AGE, UNDER_18, read_child

    told = ctx.state.profile.get(PATIENT_AGE) == UNDER_18
    return NOTE_CHILD if told or read_child(ctx.text) is not None else None


def _facts(a: Answers) -> CopayFacts:
    def val(name: str) -> Any:
        v = a.get(name)
        return None if v is UNKNOWN else v

    caps = val("household_caps")
    return CopayFacts(
        welfare=val("welfare"),
        ventilator=val("ventilator") if not _is(a, "welfare", True) else False,
        tax_exempt=val("tax_exempt"),
        income=val("income"),
        income_tax=val("income_tax"),
        high_cost_months=val("high_cost_months") if "high_cost_months" in a else 0,
        medical_cost=val("medical_cost") or None,
        insurance_rate=val("insurance_rate"),
        household_caps=tuple(caps) if caps is not None else None,
    )


FINAL_SAY = "最終的な区分と上限額は、申請後に県が決めます（この結果は目安です）。"


def _short_one(r: CopayResult, ctx: Context) -> tuple[str, Result]:
    """A result a tired reader takes in at a glance: at most six lines, the working behind 「くわしく」.

    Returns the text and the same result as a card (``Result``), made from the same pieces.
    """
    column = "" if r.column == "一般" else f"（{r.column}）"
    unit = "円" + ("（概算）" if r.estimate else "")
    tier = f"階層区分：{r.tier}{column}"
    details: list[Fact] = []
    if r.cap == 0:
        details.append(Fact("今月お支払いになる額の目安", "0円（指定難病の医療の自己負担はありません）"))
    elif r.payment is not None:
        details.append(Fact("今月お支払いになる額の目安", f"{r.payment:,}円"))
    # A split that is estimated, or not known to apply: one line on it (the rest is behind くわしく).
    split = [x for x in r.reasons if "概算" in x or "按分" in x][:1]
    card = Result("月の自己負担上限額", f"{r.cap:,}", unit, tier, r.reasons[0], tuple(details), (*split, FINAL_SAY))
    lines = [
        f"{card.label}：{card.figure}{unit}",
        tier,
        *(f"{d.label}：{d.value}" for d in details),
        f"決め手：{r.reasons[0]}",
        *split,
        FINAL_SAY + ctx.kb.citation("copay"),
    ]
    return "\n".join(lines), card


def _short_many(results: list[CopayResult], ctx: Context) -> tuple[str, Result]:
    """With unknown figures: one line per possible tier (高額かつ長期 beside it), and the same as a card."""
    by_tier: dict[str, list[CopayResult]] = {}
    for r in results:
        by_tier.setdefault(r.tier, []).append(r)
    details: list[Fact] = []
    for tier, rs in by_tier.items():
        rs.sort(key=lambda r: r.column != "一般")
        main = rs[0]
        pay = f"、今月の目安 {main.payment:,}円" if main.payment is not None else ""
        extra = "".join(f"／{r.column}なら {r.cap:,}円" for r in rs[1:])
        details.append(Fact(f"{tier}なら", f"月{main.cap:,}円{pay}{extra}"))
    lines = [
        f"わからない点があるため、考えられる月の上限額をお示しします（{ctx.kb.citation('copay-short')}。最終的な区分は県が決めます）。"
    ]
    lines += [f"・{d.label} {d.value}" for d in details]
    caps = sorted({r.cap for r in results})
    figure = f"{caps[0]:,}" if len(caps) == 1 else f"{caps[0]:,}〜{caps[-1]:,}"
    card = Result(
        "月の自己負担上限額（考えられる額）",
        figure,
        "円",
        "わからない点があるため、考えられる額をお示しします。",
        details=tuple(details),
        notes=("最終的な区分は県が決めます。",),
    )
    return "\n".join(lines), card


def _copay_results(a: Answers) -> list[CopayResult] | None:
    try:
        return possible_results(_facts(a))
    except CopayError:
        return None


def _copay_error(ctx: Context) -> list[Reply]:
    return [
        Reply(
            "お答えの中に、つじつまの合わないところがあり計算できませんでした。お手数ですが、もう一度最初からお試しください。"
            "ご不明な点は窓口にご相談ください。\n\n" + known_office(ctx),
            choices=(Choice("もう一度計算する", "start:copay"),),
            kind="copay-error",
        )
    ]


def _copay_finish(a: Answers, ctx: Context) -> list[Reply]:
    results = _copay_results(a)
    if results is None:
        return _copay_error(ctx)
    choices = (Choice("高額かつ長期とは", "topic:high-cost-long-term"), Choice("もう一度計算する", "start:copay"))
    if len(results) == 1:
        # The tier, for the cost log's notice of 高額かつ長期 (the cap before and after).
        ctx.state.profile[COPAY_RESULT] = {"tier": results[0].tier, "column": results[0].column}
    text, card = _short_one(results[0], ctx) if len(results) == 1 else _short_many(results, ctx)
    return _from_log_note(a, "high_cost_months") + [
        Reply(
            text,
            choices=choices,
            topic="copay-table",
            kind="copay-result",
            result=card,
            source=Source(ctx.kb.citation("copay-short" if len(results) > 1 else "copay")),
        )
    ]


# In the profile: the tier and column of the last calculation with one result.
COPAY_RESULT = "copay_result"
# Not a slot: the answers of these slots came from the cost log, not from a question.
_FROM_LOG = "from_cost_log"


def _from_log_note(a: Answers, slot: str) -> list[Reply]:
    if slot not in (a.get(_FROM_LOG) or ()):
        return []
    return [
        Reply(
            "医療費の記録から数えました（記録のない月は、超えていない月として数えています）。"
            "違っていれば「答えを直す」で直せます。",
            kind="costlog-used",
        )
    ]


def _copay_prefill(ctx: Context) -> dict[str, Any]:
    """The months over 50,000円 in the last 12, from the cost log when the user keeps one."""
    totals = logged_totals(ctx)
    if not totals:
        return {}
    rule = RULES[0]
    return {
        "high_cost_months": progress(totals, (ctx.today.year, ctx.today.month), rule).count,
        _FROM_LOG: ["high_cost_months"],
    }


def _mild_prefill(ctx: Context) -> dict[str, Any]:
    """The monthly totals from the cost log, from its first month in the window to this month."""
    totals = logged_totals(ctx)
    months = window((ctx.today.year, ctx.today.month), RULES[1].window)
    logged = [m for m in months if m in totals]
    if not logged:
        return {}
    return {
        "monthly_costs": [totals.get(m, 0) for m in months[months.index(logged[0]) :]],
        _FROM_LOG: ["monthly_costs"],
    }


def _copay_details(a: Answers, ctx: Context) -> list[Reply]:
    """The working: every rule applied, what could lower the cap (per tier), where to find figures."""
    results = _copay_results(a)
    if results is None:
        return _copay_error(ctx)
    parts = ["【計算の内訳】"]
    for r in results:
        head = f"〈{r.tier}・{r.column}の場合：月{r.cap:,}円〉\n" if len(results) > 1 else ""
        parts.append(head + "\n".join(f"・{x}" for x in r.reasons))
    hints = [(r, h) for r in results for h in r.hints]
    if hints:
        lines = []
        for r, h in hints:
            where = f"{r.tier}の場合：" if len(results) > 1 else ""
            line = f"・{where}{h}"
            if line not in lines:
                lines.append(line)
        parts.append("【上限額が下がる可能性】\n" + "\n".join(lines))
    if a.get("income_tax") is UNKNOWN:
        parts.append(HELP_INCOME_TAX)
    parts.append(FINAL_SAY)
    parts.append(ctx.kb.citation("copay"))
    return [
        Reply(
            "\n\n".join(parts),
            choices=(Choice("上限額の表", "topic:copay-table"), Choice("もう一度計算する", "start:copay")),
            topic="copay-table",
            kind="copay-details",
        )
    ]


COPAY_FORM = Form(
    name="copay",
    intro=(
        "月々の自己負担の上限額を、いくつかの質問で計算します。わからない質問には「わからない」と答えて大丈夫です。"
        "「戻る」でひとつ前の質問に、「やめる」でいつでも終われます。"
    ),
    slots=(
        Slot("welfare", label="生活保護", ask=Q_WELFARE, parse=_WELFARE, choices=_choices(parsers.YES_NO_CHOICES)),
        Slot(
            "ventilator",
            label="人工呼吸器",
            ask=Q_VENTILATOR,
            parse=_VENTILATOR,
            choices=_choices(parsers.YES_NO_CHOICES),
            ask_if=_not_welfare,
        ),
        Slot(
            "tax_exempt",
            label="住民税非課税",
            ask=Q_TAX_EXEMPT,
            parse=_TAX_EXEMPT,
            choices=_choices(parsers.YES_NO_CHOICES),
            ask_if=_not_welfare,
            unknown_help=HELP_TAX_EXEMPT,
        ),
        Slot(
            "income",
            label="本人の収入",
            unit="円",
            ask=Q_INCOME,
            parse=_forgets_named(amounts.slot_parser("income")),
            choices=_choices((parsers.UNKNOWN_CHOICE,)),
            ask_if=_exempt_or_unknown,
            unknown_help=HELP_INCOME,
        ),
        Slot(
            "income_tax",
            label="所得割",
            unit="円",
            ask=Q_INCOME_TAX,
            parse=_forgets_named(amounts.slot_parser("income_tax")),
            choices=_choices((parsers.UNKNOWN_CHOICE,)),
            ask_if=_taxed_or_unknown,
            unknown_help=HELP_INCOME_TAX,
        ),
        Slot(
            "high_cost_months",
            label="5万円超の月数",
            unit="か月",
            ask=Q_HIGH_COST,
            parse=_count,
            choices=_choices(parsers.COUNT_CHOICES),
            ask_if=_high_cost_matters,
            unknown_help=HELP_HIGH_COST,
        ),
        Slot(
            "household_caps",
            label="ほかの受給者",
            unit="円",
            ask=Q_CAPS,
            parse=_caps,
            choices=_choices(parsers.HOUSEHOLD_CAPS_CHOICES),
            ask_if=_not_welfare,
            unknown_help=HELP_CAPS,
        ),
        Slot(
            "medical_cost",
            label="今月の医療費",
            unit="円",
            ask=Q_COST,
            parse=_forgets_named(amounts.slot_parser("medical_cost")),
            choices=_choices((parsers.UNKNOWN_CHOICE,)),
            ask_if=_not_welfare,
            unknown_help=HELP_COST,
        ),
        Slot(
            "insurance_rate",
            label="負担割合",
            ask=Q_RATE,
            parse=_rate,
            choices=_choices(parsers.RATE_CHOICES),
            ask_if=_cost_known,
            unknown_help=HELP_RATE,
        ),
    ),
    finish=_copay_finish,
    situation=_child_named,
    details=_copay_details,
    prefill=_copay_prefill,
)


# --- subsidy start date (前倒し) -----------------------------------------------


def _reason(text: Text, ctx: Context) -> Any:
    if text.compact in ("none", "特になし", "なし", "ない"):
        return "none"
    found = delay_reason(text.raw.strip())
    if found is not None:
        return found.value
    yes = parsers.parse_yes_no(text)
    if yes is False:
        return "none"
    if yes is UNKNOWN:
        return UNKNOWN
    return Invalid("下のボタンから、いちばん近いものを選んでください。")


def _application_date(text: Text, ctx: Context) -> Any:
    # Filed or about to be filed: 「今日」「昨日」, and 「4/1」 without a year is the nearer 4月1日.
    return parsers.date_of_kind(text, ctx.today, prefer="nearest")


def _accepted(reason: object) -> TypeGuard[str]:
    """Whether a delay reason was given that the office accepts, or may accept (「その他の事情」)."""
    if not isinstance(reason, str) or reason == "none":
        return False
    found = delay_reason(reason)
    return found is not None and found.accepted is not False


def _start_finish(a: Answers, ctx: Context) -> list[Reply]:
    diagnosis, received = a.get("diagnosis_date"), a.get("application_date")
    reason = a.get("delay_reason")
    if not isinstance(diagnosis, date) or not isinstance(received, date):
        return [
            Reply(
                "日付がわからないと計算できません。診断年月日は臨床調査個人票に書かれています。\n\n"
                + known_office(ctx),
                kind="start-error",
            )
        ]
    accepted = _accepted(reason)
    try:
        result = earliest_start(diagnosis, received, unavoidable_reason=accepted)
    except StartDateError:
        return [
            Reply(
                "診断年月日が申請日より後になっています。日付をご確認のうえ、もう一度お試しください。",
                choices=(Choice("もう一度計算する", "start:start-date"),),
                kind="start-error",
            )
        ]
    rule = _start_rule(diagnosis, received, result.start, accepted)
    notes = []
    if _accepted(reason) and (found := delay_reason(reason)) is not None and found.accepted is None:
        notes.append("「その他の事情」は窓口が個別に判断します。3か月までさかのぼれるかは、窓口にご確認ください。")
    notes.append("開始日より後に払った医療費は、受給者証が届いてから払い戻し（償還払い）を申請できます。")
    notes.append("最終的な開始日は県（窓口）が決めます。")
    lines = [
        f"助成の開始日は、早ければ {_ja_date(result.start)} です。",
        f"決め手：{rule}",
        *notes,
        ctx.kb.citation("start-date"),
    ]
    card = Result(
        "助成の開始日", _ja_date(result.start), subtitle="早ければこの日から助成されます", rule=rule, notes=tuple(notes)
    )
    return [
        Reply(
            "\n".join(lines),
            choices=(
                Choice("払い戻しについて", "topic:refund"),
                Choice("診断年月日とは", "topic:diagnosis-date-definition"),
            ),
            topic="start-date-retroactive",
            kind="start-result",
            result=card,
            source=Source(ctx.kb.citation("start-date")),
        )
    ]


def _ja_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _start_rule(diagnosis: date, received: date, start: date, accepted: bool) -> str:
    """The one rule that decided the start date, said once."""
    if start == diagnosis:
        within = "3か月" if accepted else "1か月"
        return f"申請が診断年月日（{_ja_date(diagnosis)}）から{within}以内なので、診断年月日までさかのぼれます。"
    if start == SCHEME_START and diagnosis < SCHEME_START:
        return f"さかのぼって助成する制度は{_ja_date(SCHEME_START)}に始まったため、それより前にはさかのぼれません。"
    if start == received:
        return "この申請は、さかのぼる制度が始まる前に受け付けられたため、受付日からになります。"
    span = "3か月前（やむを得ない理由が認められた場合）" if accepted else "1か月前"
    return f"さかのぼれるのは申請の受付日（{_ja_date(received)}）の{span}までのためです。"


def _start_details(a: Answers, ctx: Context) -> list[Reply]:
    diagnosis, received = a.get("diagnosis_date"), a.get("application_date")
    reason = a.get("delay_reason")
    if not isinstance(diagnosis, date) or not isinstance(received, date):
        return []
    accepted = _accepted(reason)
    try:
        result = earliest_start(diagnosis, received, unavoidable_reason=accepted)
    except StartDateError:
        return []
    text = "【計算の内訳】\n" + "\n".join(f"・{x}" for x in result.reasons) + "\n\n" + ctx.kb.citation("start-date")
    return [Reply(text, kind="start-details", topic="start-date-retroactive")]


# Button labels short enough for a phone and the terminal (the full wording is in DELAY_REASONS).
_SHORT_REASON = {
    "late_certificate": "臨個票の受け取りが遅れた",
    "hospitalised": "入院・急な治療・悪化",
    "other": "その他の事情",
}
REASON_CHOICES = (Choice("特になし", "none"),) + tuple(
    Choice(_SHORT_REASON.get(r.value, r.label), r.value) for r in DELAY_REASONS
)

START_DATE_FORM = Form(
    name="start-date",
    intro="助成がいつから始まるか（開始時期の前倒し）を計算します。",
    slots=(
        Slot(
            "diagnosis_date",
            label="診断年月日",
            ask="臨床調査個人票に書かれた「診断年月日」はいつですか？（例：2025年6月1日、R7.6.1）",
            parse=_date,
            allow_unknown=False,
            unknown_help="診断年月日は、指定医が書く臨床調査個人票に記載されています。主治医の医療機関にお尋ねください。",
        ),
        Slot(
            "application_date",
            label="申請日",
            ask="申請書を窓口に出した日（または出す予定の日）はいつですか？（例：2025年6月20日、今日）",
            parse=_application_date,
            choices=(Choice("今日", "今日"),),
            allow_unknown=False,
            unknown_help="申請日は、窓口が申請書を受け取った日です。予定の日を入れてみてください。",
        ),
        Slot(
            "delay_reason",
            label="遅れた事情",
            ask="診断から1か月以内に申請できなかった事情はありますか？当てはまるものを選んでください。",
            parse=_reason,
            choices=REASON_CHOICES,
        ),
    ),
    finish=_start_finish,
    details=_start_details,
)


# --- 軽症高額 check -------------------------------------------------------------


def _months(text: Text, ctx: Context) -> Any:
    # Up to the 12 months of the 軽症高額 window (FACTS §4), oldest first.
    return parsers.parse_yen_list(text, max_items=12)


def _read_back(values: list[int]) -> str:
    """What we read from the list of monthly totals, said back before the result."""
    return "・".join(f"{v:,}円" for v in values) + f"の{len(values)}か月分として計算します。"


def _mild_check(values: list[int], today: date) -> tuple[list[tuple[int, int]], Any] | None:
    """The months the amounts stand for (the last one is this month) and the 軽症高額 check; None when unreadable."""
    year, month = today.year, today.month
    months: list[tuple[int, int]] = []
    for _ in values:
        months.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    months.reverse()
    try:
        return months, check_mild_high_cost([(y, m, v) for (y, m), v in zip(months, values)])
    except MildHighCostError:
        return None


def _mild_finish(a: Answers, ctx: Context) -> list[Reply]:
    values = a.get("monthly_costs")
    if not isinstance(values, list):
        return [
            Reply(
                "月ごとの医療費の総額は、自己負担上限額管理票や領収書、医療機関が出す「医療費総額の証明」でわかります。"
                "そろったら、もう一度お試しください。\n\n" + ctx.kb.citation("mild-high-cost"),
                topic="mild-high-cost",
                kind="mild-result",
            )
        ]
    checked = _mild_check(values, ctx.today)
    if checked is None:
        return [
            Reply(
                "金額の並びが読み取れませんでした。もう一度お試しください。",
                choices=(Choice("もう一度", "start:mild-high-cost"),),
            )
        ]
    months, result = checked
    head = (
        "軽症高額の条件を満たしています。" if result.qualifies else "今のところ、軽症高額の条件はまだ満たしていません。"
    )
    # At most six lines: what was read, the verdict, the months that counted and the rule; the rest
    # (how the months were counted, when the subsidy starts) behind 「くわしく」.
    counted = [x for x in result.reasons if "か月" in x][:2]
    apply = "申請には医療費申告書と、管理票や領収書などの証明が必要です。最終的な判断は県（窓口）が行います。"
    lines = [_read_back(values), head, *(f"・{x}" for x in counted), apply, ctx.kb.citation("mild-high-cost")]
    card = Result(
        "軽症高額の条件",
        "満たしています" if result.qualifies else "まだ満たしていません",
        subtitle=_read_back(values),
        rule="\n".join(counted),
        notes=(apply,),
    )
    return _from_log_note(a, "monthly_costs") + [
        Reply(
            "\n".join(lines),
            choices=(
                Choice("医療費申告書とは", "topic:medical-expense-declaration"),
                Choice("軽症高額とは", "topic:mild-high-cost"),
            ),
            topic="mild-high-cost",
            kind="mild-result",
            result=card,
            source=Source(ctx.kb.citation("mild-high-cost")),
        )
    ]


def _mild_details(a: Answers, ctx: Context) -> list[Reply]:
    values = a.get("monthly_costs")
    if not isinstance(values, list):
        return []
    checked = _mild_check(values, ctx.today)
    if checked is None:
        return []
    months, result = checked
    listed = "、".join(f"{y}年{m}月 {v:,}円" for (y, m), v in zip(months, values))
    text = (
        f"【計算の内訳】\n今月（{ctx.today.year}年{ctx.today.month}月）を最後の月として、{listed} と数えました。\n"
        + "\n".join(f"・{x}" for x in result.reasons)
        + "\n\n"
        + ctx.kb.citation("mild-high-cost")
    )
    return [Reply(text, kind="mild-details", topic="mild-high-cost")]


MILD_FORM = Form(
    name="mild-high-cost",
    intro="軽症高額該当（重症度を満たさなくても、医療費が高い月が続く方の特例）に当てはまるか確かめます。",
    slots=(
        Slot(
            "monthly_costs",
            label="月ごとの医療費",
            unit="円",
            ask=(
                "直近12か月（今月まで）の、指定難病の医療費の総額（10割分）を、古い月から順に読点で区切って送ってください。"
                "最後が今月です。（例：40000、30000、35000、33330、50000）"
            ),
            parse=_months,
            choices=(Choice("わからない", "unknown"),),
        ),
    ),
    finish=_mild_finish,
    details=_mild_details,
    prefill=_mild_prefill,
)

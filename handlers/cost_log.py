"""The monthly cost log in chat: opt in, log months, see the table, the monthly nudge, and what the
dispatcher says when a rule is met.

What this is: the dialog 「医療費の記録をつけたい」 (a ``Form``: consent the first time, the monthly
nudge the first time, then months with their totals), months typed later outside any dialog
(「5月 52,000円」, the answer to a nudge), 「医療費の記録を見せて」 (a table short enough for a
phone), 「医療費のお知らせをやめて」, and the texts of the nudge and of the notice that 高額かつ長期
or 軽症高額 is met, which ``bot.reminders.dispatch_due`` sends through the reminders' claims.

What this is not: no SQL (``bot.storage.cost_log``), no counting rules (``handlers.calc.cost_log``),
no sending and no clock. The form, its slots, its buttons and its actions keep the ids
``costlog``/``costlog-…`` they were given: they are stored in dialog states and posted in buttons.
The amounts are personal health data: they go to the user and the
database only, never to a log line or the statistics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from handlers import dialog
from handlers.base import MENU, Answers, Context, Form, Slot, office_hint, office_text
from handlers.calc.copay import TIERS
from handlers.calc.cost_log import RULES, Progress, Rule, YearMonth, cap_change, month_add, progress
from handlers.messages import Choice, Fact, IncomingMessage, Reply, Row, Source, Table
from handlers.parsers import Invalid, MonthAmounts, parse_month_amounts, parse_yes_no
from handlers.ports import COST_PAID, COST_TOTAL, NUDGE, CostEntry
from handlers.reminders import SEND_HOUR
from knowledge import KnowledgeBase
from nlp.text import Text

TOKYO = ZoneInfo("Asia/Tokyo")

# The nudge asks on this day of each month, at 09:00 Japan time, for the month before: by then the
# 管理票 of that month is complete.
NUDGE_DAY = 3
# Nudges planned ahead; each month logged plans them again this far.
NUDGE_MONTHS_AHEAD = 12
# In the profile (deleted with the user's data): the user agreed to the log; the day of the last
# months logged (「間違えた」 that day offers to change one).
CONSENT = "costlog"
LAST_LOGGED = "costlog_logged_on"

SHOW = Choice("記録を見る", "costlog-show")
MORE = Choice("続けて入力する", "start:costlog")

WHERE_TOTAL = (
    "医療費の総額（10割分）は、自己負担上限額管理票で、病院や薬局が受診のたびに書き込む「医療費総額（10割分）」の欄に"
    "あります（様式は都道府県で少し違います）。月の合計がその月の総額です。上限額に届いた後も総額を書いてもらうか、"
    "領収書をとっておいてください。入院中の食事代は含めません。"
)
HELP_MONTHS = "わかる月だけで大丈夫です。" + WHERE_TOTAL
# The table's marks: a month over 高額かつ長期's line (50,000円), else over 軽症高額's (33,330円);
# and what every count says about the lines and the final say.
MARKS = {"high-cost": "◎", "mild": "○"}
LEGEND = "　".join(f"{MARKS[rule.name]} {rule.over:,}円超" for rule in RULES)
NOT_COUNTED = "ちょうど5万円・33,330円の月は数えません。最終的な判断は県（窓口）が行います。"


def _ym(d: date) -> YearMonth:
    return d.year, d.month


def _ja(month: YearMonth) -> str:
    return f"{month[0]}年{month[1]}月"


def _sources(kb: KnowledgeBase, topic_id: str) -> str:
    topic = kb.topics.get(topic_id)
    cites = [kb.sources[s].cite() for s in (topic.sources if topic else []) if s in kb.sources]
    return "出典：" + "、".join(cites)


def totals_of(entries: Sequence[CostEntry]) -> dict[YearMonth, int]:
    """The logged totals (10割) by month; amounts only paid (自己負担) are not totals."""
    return {_ym(e.month): e.amount for e in entries if e.kind == COST_TOTAL}


def logged_totals(ctx: Context) -> dict[YearMonth, int]:
    """The user's logged totals, for the calculators (empty when the user keeps no log)."""
    if not ctx.state.profile.get(CONSENT):
        return {}
    return totals_of(ctx.cost_log.entries())


# --- the nudge's plan (pure) ---------------------------------------------------------------------


def nudge_plan(now: datetime, months: int = NUDGE_MONTHS_AHEAD) -> tuple[tuple[date, datetime], ...]:
    """The next ``months`` nudges after ``now``: (the month asked about, 09:00 on the 3rd of the month after)."""
    local = now.astimezone(TOKYO)
    first = (local.year, local.month)
    plan = []
    for k in range(months + 1):
        send = month_add(first, k)
        due = datetime.combine(date(send[0], send[1], NUDGE_DAY), time(SEND_HOUR), tzinfo=TOKYO)
        if due > now:
            asked = month_add(send, -1)
            plan.append((date(asked[0], asked[1], 1), due))
    return tuple(plan[:months])


# --- the dialog ----------------------------------------------------------------------------------


def _consented(answers: Answers) -> bool:
    return answers.get("costlog_consent") is True


def _yes_no(text: Text, ctx: Context) -> Any:
    # Both questions are offers the user decides on: 「わからない」 is no answer to them, and the
    # hint says only what is.
    value = parse_yes_no(text)
    return value if isinstance(value, bool) else Invalid("「はい」か「いいえ」で教えてください。")


def _months(text: Text, ctx: Context) -> Any:
    value = parse_month_amounts(text, ctx.today)
    if isinstance(value, MonthAmounts):  # answers are JSON: months as ISO dates
        return {
            "months": [[m.isoformat(), amount] for m, amount in value.amounts],
            "paid": value.paid,
            "adds": value.adds,
        }
    return value


def _prefill(ctx: Context) -> dict[str, Any]:
    if not ctx.state.profile.get(CONSENT):
        return {}
    return {"costlog_consent": True, "costlog_nudge": ctx.cost_log.nudging()}


Q_CONSENT = (
    "月ごとの医療費の総額（10割分）を記録して、「高額かつ長期」（5万円を超えた月が12か月に6か月以上）や"
    "「軽症高額」（33,330円を超えた月が12か月に3か月以上）に届いたらお知らせします。\n"
    "記録するのは、月と金額だけです。「データを削除」でいつでも全部消せます。記録を始めますか？"
)
Q_NUDGE = (
    f"毎月{NUDGE_DAY}日の午前9時ごろに、先月の医療費の総額をおたずねするお知らせを送りましょうか？"
    "（あとから「医療費のお知らせをやめて」で止められます）"
)
Q_MONTHS = (
    "月ごとの医療費の総額（10割分）を、月と金額の組で送ってください。何か月分でもまとめて送れます。\n"
    "例：4月 52,000円、5月 61,000円\n"
    "窓口で払った額（自己負担）しかわからない月は、「5月 自己負担 10,000円」のように送ってください。"
)


def _finish(answers: Answers, ctx: Context) -> list[Reply]:
    if not _consented(answers):
        return [
            Reply(
                "わかりました。記録はしません。始めたくなったら「医療費の記録をつけたい」と送ってください。",
                choices=(MENU,),
                kind="costlog-declined",
            )
        ]
    repo = ctx.cost_log
    ctx.state.profile[CONSENT] = True
    replies: list[Reply] = []
    if answers.get("costlog_nudge") is True and not repo.nudging():
        repo.plan_nudges(nudge_plan(ctx.now))
        replies.append(
            Reply(f"毎月{NUDGE_DAY}日の午前9時ごろに、先月の医療費の総額をおたずねします。", kind="costlog-nudge-on")
        )
    value = answers.get("costlog_months")
    if not isinstance(value, dict):
        return replies
    months = tuple((date.fromisoformat(m), int(amount)) for m, amount in value["months"])
    return replies + record(ctx, MonthAmounts(months, bool(value.get("paid")), bool(value.get("adds"))))


COST_LOG_FORM = Form(
    name="costlog",
    intro="医療費の記録をつけます。「やめる」でいつでも終われます。",
    slots=(
        Slot("costlog_consent", ask=Q_CONSENT, parse=_yes_no, choices=(Choice("はい", "yes"), Choice("いいえ", "no"))),
        Slot(
            "costlog_nudge",
            ask=Q_NUDGE,
            parse=_yes_no,
            choices=(Choice("はい", "yes"), Choice("いいえ", "no")),
            ask_if=_consented,
        ),
        Slot(
            "costlog_months",
            ask=Q_MONTHS,
            parse=_months,
            ask_if=_consented,
            allow_unknown=False,
            unknown_help=HELP_MONTHS,
            expecting="monthly_costs",
        ),
    ),
    finish=_finish,
    prefill=_prefill,
)


# --- recording months, and what the counts say ------------------------------------------------------


def record(ctx: Context, value: MonthAmounts) -> list[Reply]:
    """Record the months typed, then say what was recorded and where the user stands."""
    repo = ctx.cost_log
    before = totals_of(repo.entries())
    kind = COST_PAID if value.paid else COST_TOTAL
    changed = []
    if value.adds:  # one day's payment: added to what that month's payments were
        paid = {_ym(e.month): e.amount for e in repo.entries() if e.kind == COST_PAID}
        value = MonthAmounts(tuple((m, paid.get(_ym(m), 0) + a) for m, a in value.amounts), paid=True)
        ((month, total_paid),) = value.amounts
        day_amount = total_paid - paid.get(_ym(month), 0)
        repo.record(month, total_paid, COST_PAID)
        ctx.state.profile.pop(dialog.LAST, None)
        ctx.state.profile[LAST_LOGGED] = ctx.today.isoformat()
        text = (
            f"{day_amount:,}円を{month.month}月に窓口で払った額に足しました"
            f"（{month.month}月はこれで合計 {total_paid:,}円）。\n"
            "高額かつ長期と軽症高額は、払った額ではなく医療費の総額（10割分）で数えます。月の総額がわかったら"
            f"「{month.month}月 52,000円」のように送ってください。\n{WHERE_TOTAL}"
        )
        return [Reply(text, choices=(SHOW, MENU), kind="costlog-paid")]
    for month, amount in value.amounts:
        old = before.get(_ym(month)) if kind == COST_TOTAL else None
        repo.record(month, amount, kind)
        if old is not None and old != amount:
            changed.append(f"{month.month}月：{old:,}円 → {amount:,}円")
    ctx.state.profile.pop(dialog.LAST, None)  # 「間違えた」 now means these months, not a calculation
    ctx.state.profile[LAST_LOGGED] = ctx.today.isoformat()
    typed = "、".join(f"{m.month}月 {a:,}円" for m, a in sorted(value.amounts))
    if value.paid:
        text = (
            f"窓口で払った額（自己負担）として記録しました：{typed}\n"
            "高額かつ長期と軽症高額は、払った額ではなく医療費の総額（10割分）で数えます。払った額から総額は計算"
            f"できないため、総額を「5月 52,000円」のように送ってください。\n{WHERE_TOTAL}"
        )
        return [Reply(text, choices=(SHOW, MENU), kind="costlog-paid")]
    lines = [f"記録しました：{typed}"]
    if changed:
        lines.append("直した月：" + "、".join(changed))
    after = totals_of(repo.entries())
    current = _ym(ctx.today)
    for rule in RULES:
        now = progress(after, current, rule)
        lines.append(_standing(now, current))
        if now.qualifies and not progress(before, current, rule).qualifies:
            month = date(current[0], current[1], 1)
            if repo.schedule_notice(rule.name, month, ctx.now):
                lines.append(
                    f"→ {rule.title}の条件に届きました。上限額や申請の手続きを、このあと「お知らせ」でお送りします"
                    "（9時〜20時）。"
                )
    lines.append("数えるのは今月を含む直近12か月で、" + NOT_COUNTED)
    lines.append(_sources(ctx.kb, "high-cost-long-term"))
    offered(ctx)
    return [Reply("\n".join(lines), choices=(MORE, SHOW, MENU), kind="costlog-recorded", topic="high-cost-long-term")]


# In the profile: the state's version of the turn that offered to go on with the cost log (「続けて入力する」).
# Only the very next message (version + 1) answers that offer; a later 「いらない」 is read as usual.
OFFERED = "costlog_offered"
_REFUSAL = re.compile(
    r"^(?:いらない|いらないです|いりません|要らない|要りません|いらん|不要|不要です|結構です|けっこうです|"
    r"もういい|もういいです|大丈夫です|だいじょうぶです|いいです|遠慮します|今はいい|いまはいい|ない|ありません|"
    r"いいえ|もうない|以上です|以上)[。.!！\s]*$"
)


def offered(ctx: Context) -> None:
    ctx.state.profile[OFFERED] = ctx.state.version


def declines_offer(msg: IncomingMessage, ctx: Context) -> bool:
    """Whether the message is a bare refusal (「いらない」) right after the cost log offered to go on:
    it answers that offer only, never the renewal reminders."""
    if msg.text is None or ctx.state.dialog is not None:
        return False
    return ctx.state.profile.get(OFFERED) == ctx.state.version - 1 and _REFUSAL.match(ctx.text.compact) is not None


def decline_offer(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    ctx.state.profile.pop(OFFERED, None)
    return [
        Reply(
            "わかりました。医療費の入力はここまでにします。記録と更新のお知らせはそのままです。"
            "また入力するときは「医療費の記録をつけたい」と送ってください。",
            choices=(SHOW, MENU),
            kind="costlog-offer-declined",
        )
    ]


def _standing(p: Progress, current: YearMonth) -> str:
    rule = p.rule
    head = f"・{rule.title}（{rule.over:,}円を超えた月）：{p.count}か月"
    if p.qualifies:
        return head + f" … {rule.need}か月以上あり、条件に届いています"
    text = head + f"（あと{p.short}か月）"
    if p.projected is not None and p.projected > current:
        text += f"、このまま続けば{_ja(p.projected)}に{rule.need}か月"
    elif p.missing:
        text += f"。記録のない月が{len(p.missing)}か月あります"
    return text


def fix(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """「間違えた」 the day months were logged: ask for the month to change (only that month is replaced)."""
    ctx.state.profile.pop(LAST_LOGGED, None)
    replies = dialog.start(COST_LOG_FORM, ctx)
    return [
        Reply(
            "直したい月と正しい金額を送ってください（例：5月 60,000円）。送った月だけを置き換えます。",
            kind="costlog-fix",
        )
    ] + replies[1:]


def fixing(msg: IncomingMessage, ctx: Context) -> bool:
    """Whether 「間違えた」 now means months logged today."""
    return ctx.state.profile.get(LAST_LOGGED) == ctx.today.isoformat() and ctx.state.dialog is None


def typed_months(msg: IncomingMessage, ctx: Context) -> MonthAmounts | None:
    """Months with amounts typed outside a dialog by a user who keeps the log (the answer to a nudge)."""
    if msg.text is None or msg.choice is not None or not ctx.state.profile.get(CONSENT) or ctx.state.dialog:
        return None
    value = parse_month_amounts(msg.text, ctx.today)
    return value if isinstance(value, MonthAmounts) else None


def record_typed(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    value = typed_months(msg, ctx)
    assert value is not None
    replies = record(ctx, value)
    repo = ctx.cost_log
    if repo.nudging():  # keep a year of nudges ahead
        repo.plan_nudges(nudge_plan(ctx.now))
    return replies


# --- 「医療費の記録を見せて」「医療費のお知らせをやめて」 -----------------------------------------------


@dataclass(frozen=True)
class _Month:
    """One month of the table: its total (10割) or only what was paid, and its mark."""

    month: YearMonth
    total: int | None
    paid: int | None
    mark: str  # "◎" over 50,000円, "○" over 33,330円, else ""


def _months_of(entries: Sequence[CostEntry], today: date) -> list[_Month]:
    """The 12 months that end with this month, oldest first, as logged."""
    current = _ym(today)
    totals = totals_of(entries)
    paid = {_ym(e.month): e.amount for e in entries if e.kind == COST_PAID}
    rows = []
    for k in range(RULES[0].window - 1, -1, -1):
        month = month_add(current, -k)
        total = totals.get(month)
        # RULES is highest line first: a month over both gets 高額かつ長期's mark.
        mark = next((MARKS[r.name] for r in RULES if total is not None and total > r.over), "")
        rows.append(_Month(month, total, paid.get(month), mark))
    return rows


def table_text(entries: Sequence[CostEntry], today: date) -> str:
    """The last 12 months as short lines a phone shows whole: month, total, and a mark for the lines."""
    lines = ["月　　　　総額（10割）"]
    for m in _months_of(entries, today):
        label = f"{m.month[0] % 100:02d}年{m.month[1]:>2}月"
        if m.total is not None:
            lines.append(f"{label}　{m.total:>9,}円 {m.mark}".rstrip())
        elif m.paid is not None:
            lines.append(f"{label}　総額未入力（自己負担 {m.paid:,}円）")
        else:
            lines.append(f"{label}　－")
    lines.append(LEGEND)
    current = _ym(today)
    totals = totals_of(entries)
    for rule in RULES:  # short lines: a phone shows each whole
        p = progress(totals, current, rule)
        lines.append(f"{rule.title}：{p.count}/{rule.need}か月" + (" 条件に届いています" if p.qualifies else ""))
        if not p.qualifies and p.projected is not None and p.projected > current:
            lines.append(f"　このまま続けば{_ja(p.projected)}に届きます")
    return "\n".join(lines)


def table_card(entries: Sequence[CostEntry], today: date) -> Table:
    """The same months as a card's table (LINE, Slack): month, total, mark; the counts under it."""
    rows = []
    for m in _months_of(entries, today):
        amount = (
            f"{m.total:,}円"
            if m.total is not None
            else f"総額未入力（自己負担 {m.paid:,}円）"
            if m.paid is not None
            else "－"
        )
        rows.append(Row((_ja(m.month), amount, m.mark), strong=bool(m.mark)))
    current = _ym(today)
    totals = totals_of(entries)
    summary, notes = [], [LEGEND]
    for rule in RULES:
        p = progress(totals, current, rule)
        label = f"{rule.title}（{MARKS[rule.name]}が{rule.need}か月以上）"
        summary.append(
            Fact(label, f"{p.count}か月" + (" 条件に届いています" if p.qualifies else f"（あと{p.short}か月）"))
        )
        if not p.qualifies and p.projected is not None and p.projected > current:
            notes.append(f"{rule.title}：このまま続けば{_ja(p.projected)}に{rule.need}か月になります。")
    notes.append(NOT_COUNTED)
    return Table("医療費の記録（直近12か月）", ("月", "総額（10割）", ""), tuple(rows), tuple(summary), tuple(notes))


def show(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """「医療費の記録を見せて」: the table of the last 12 months and where the user stands (a card on LINE
    and Slack)."""
    entries = ctx.cost_log.entries() if ctx.state.profile.get(CONSENT) else []
    if not entries:
        replies = [
            Reply(
                "医療費の記録はまだありません。「医療費の記録をつけたい」と送ると始められます。",
                choices=(Choice("記録をつける", "start:costlog"), MENU),
                kind="costlog-table",
            )
        ]
    else:
        source = _sources(ctx.kb, "high-cost-long-term")
        text = "医療費の記録（直近12か月）\n" + table_text(entries, ctx.today) + "\n" + source
        replies = [
            Reply(
                text,
                choices=(MORE, MENU),
                kind="costlog-table",
                topic="high-cost-long-term",
                table=table_card(entries, ctx.today),
                source=Source(source),
            )
        ]
    return replies + _continue(ctx)


def stop_nudge(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """「医療費のお知らせをやめて」: at once, like stopping a reminder (the log itself stays)."""
    stopped = ctx.cost_log.stop_nudges()
    text = (
        "毎月の医療費のお知らせを止めました。記録はそのまま残っています（消すときは「データを削除」）。"
        if stopped
        else "毎月の医療費のお知らせは、いま届く設定になっていません。"
    )
    return [Reply(text, choices=(SHOW, MENU), kind="costlog-nudge-off")] + _continue(ctx)


def _continue(ctx: Context) -> list[Reply]:
    form = ctx.forms.get(ctx.state.dialog or "")
    return dialog.ask(form, ctx, prefix="では、先ほどの続きです。") if form is not None else []


# --- what the dispatcher sends -----------------------------------------------------------------------


def nudge_text(kb: KnowledgeBase, month: date) -> str:
    """The monthly nudge: asks for the total of ``month``."""
    return (
        f"【医療費の記録】{month.year}年{month.month}月の医療費の総額（10割分）を教えてください。"
        f"「{month.month}月 52,000円」のように送っていただければ記録します。\n{WHERE_TOTAL}\n"
        "このお知らせを止めるときは「医療費のお知らせをやめて」と送ってください。"
    )


def notice_text(
    kb: KnowledgeBase, kind: str, entries: Sequence[CostEntry], profile: dict[str, Any], today: date
) -> str:
    """The one message that says 高額かつ長期 (``high-cost``) or 軽症高額 (``mild``) is met: what it
    means, what to apply for, what to bring, the office — with the counts as logged today."""
    rule: Rule = next(r for r in RULES if r.name == kind)
    p = progress(totals_of(entries), _ym(today), rule)
    months = "、".join(f"{m[1]}月" for m in p.over_months)
    lines = [
        f"【{rule.title}のお知らせ】記録では、直近12か月に医療費の総額（10割分）が{rule.over:,}円を超えた月が"
        f"{p.count}か月（{months}）あり、{rule.need}か月以上という条件に届きました。"
    ]
    if kind == "high-cost":
        tier = (profile.get("copay_result") or {}).get("tier")
        column = (profile.get("copay_result") or {}).get("column")
        if column == "人工呼吸器等装着者":
            lines.append("人工呼吸器等装着者の上限額（月1,000円）は変わりません。")
        else:
            for c in cap_change(tier if tier in TIERS else None):
                if c.before == c.after:
                    lines.append(f"{c.tier}の上限額は月{c.before:,}円のままで、高額かつ長期では下がりません。")
                else:
                    lines.append(f"{c.tier}なら、月の上限額が{c.before:,}円 → {c.after:,}円になります。")
            if tier is None:
                lines.append("（上限額の計算をしていただくと、あなたの区分で表示します）")
        lines += [
            "申請：変更申請をします。認められると、原則として申請の翌月から新しい上限額になります。",
            "持ち物：変更申請書、受給者証、自己負担上限額管理票の写し（5万円を超えた月の分）。",
            "数えるのは受給者証の認定期間中の月だけです（小児慢性から切り替えた方は、小慢の期間も数えられる場合があります）。",
        ]
        source = _sources(kb, "high-cost-long-term")
    else:
        lines += [
            "重症度分類を満たさない方でも、「軽症高額該当」として助成の対象になります（すでに受給者証をお持ちの方には関係ありません）。",
            "申請：新規の申請と一緒に、医療費申告書を出します。助成は条件を満たした日の翌日からです（さかのぼれるのは申請の1か月前まで、やむを得ない理由があれば3か月前まで）。",
            "持ち物：申請書、臨床調査個人票、医療費申告書、自己負担上限額管理票や領収書など医療費の総額がわかるもの。",
        ]
        source = kb.citation("mild-high-cost")
    lines += [
        "最終的な判断は県（窓口）が行います。お電話で確かめてから出すと安心です。",
        "",
        known_office_of(kb, profile),
        "",
        source,
    ]
    return "\n".join(lines)


def known_office_of(kb: KnowledgeBase, profile: dict[str, Any]) -> str:
    """The user's office from their profile (outside a turn, for the dispatcher)."""
    muni = profile.get("municipality")
    if muni and any(m.name == muni for m in kb.prefecture.municipalities):
        return office_text(kb, muni)
    return office_hint(kb)


def message_text(
    kb: KnowledgeBase, kind: str, month: date, entries: Sequence[CostEntry], profile: dict[str, Any], today: date
) -> str:
    """The text of one cost-log message the dispatcher sends."""
    if kind == NUDGE:
        return nudge_text(kb, month)
    return notice_text(kb, kind, entries, profile, today)


__all__ = [
    "COST_LOG_FORM",
    "fix",
    "fixing",
    "logged_totals",
    "message_text",
    "nudge_plan",
    "record_typed",
    "show",
    "stop_nudge",
    "table_card",
    "table_text",
    "typed_months",
]

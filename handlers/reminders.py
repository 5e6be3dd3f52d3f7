"""Renewal reminders in chat: register (a Form), list, stop — and what a reminder says.

What this is: the dialog 「更新を忘れないように通知して」 → the certificate's end date
(``expiry_date``, repeated back for a yes/no) → the municipality when unknown
(``municipality``) → the plan of marks (60, 30 and 7 days before, 09:00 Asia/Tokyo),
recorded through the turn's unit of work; the commands 「通知を確認」 and 「通知をやめて」;
the plan itself (``plan_marks``, pure) and the text of a reminder (``reminder_text``),
which the dispatcher in ``bot.reminders`` sends.

What this is not: no sending, no clock, no SQL. Handlers record through ``ctx.reminders``
(``handlers.ports.ReminderBook``) and the core commits with the state;
``bot.reminders.dispatch_due`` delivers.

Facts (FACTS.md §9): renewal must be filed before the end date, after it a 新規申請 is
needed (新規用 臨床調査個人票, only a 難病指定医 may write it); the prefecture's end date and
notice timing are not known, so the user gives the date printed on the card.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from handlers import dialog
from handlers.base import MENU, Answers, Context, Form, Slot, office_hint
from handlers.messages import Choice, IncomingMessage, Reply
from handlers.office import index_for, office_block
from handlers.parsers import UNKNOWN, ImpossibleDate, Invalid, parse_date, parse_yes_no
from handlers.ports import CLAIMED, FAILED, PENDING, SENT, SKIPPED, PlannedMark, Registration, ReminderView
from handlers.system import ask_municipality, parse_municipality
from knowledge import KnowledgeBase
from nlp.text import Text

TOKYO = ZoneInfo("Asia/Tokyo")

# A reminder goes out at a decent hour: a mark's send time is 09:00 on its day, and the
# dispatcher sends only between 09:00 and 20:00 (Japan time); outside that it waits.
SEND_HOUR = 9
QUIET_FROM_HOUR = 20
# A certificate is valid for at most about a year and a half (FACTS §9): an end date more
# than three years ahead is almost surely a typo.
MAX_DAYS_AHEAD = 3 * 366

_WEEKDAYS = "月火水木金土日"


# --- the plan (pure) -------------------------------------------------------------------------


def in_sending_hours(now: datetime) -> bool:
    """True between 09:00 (inclusive) and 20:00 (exclusive), Japan time."""
    local = now.astimezone(TOKYO)
    return SEND_HOUR <= local.hour < QUIET_FROM_HOUR


def mark_due_at(expiry: date, offset_days: int) -> datetime:
    """09:00 Japan time, ``offset_days`` before ``expiry``."""
    return datetime.combine(expiry - timedelta(days=offset_days), time(SEND_HOUR), tzinfo=TOKYO)


def plan_marks(expiry: date, offsets: Iterable[int], now: datetime) -> tuple[PlannedMark, ...]:
    """The marks of a reminder registered at ``now``, earliest first.

    Future marks are pending. Of the marks already passed, only the latest (the one
    nearest the expiry) is pending, so the user hears from us promptly instead of
    nothing; older missed marks are skipped rather than sent in a burst.

    Args:
        expiry: the certificate's last valid day (not yet past).
        offsets: days before ``expiry`` (e.g. 60, 30, 7).
        now: the registration time, timezone-aware.

    Returns:
        One ``PlannedMark`` per distinct offset.
    """
    marks = sorted({(o, mark_due_at(expiry, o)) for o in offsets}, key=lambda m: m[1])
    passed = [o for o, at in marks if at <= now]
    latest_missed = min(passed) if passed else None
    return tuple(PlannedMark(o, at, PENDING if at > now or o == latest_missed else SKIPPED) for o, at in marks)


# --- formatting ------------------------------------------------------------------------------


def format_date(d: date) -> str:
    """2027年3月31日（令和9年3月31日） — the 和暦 helps, since certificates print it."""
    text = f"{d.year}年{d.month}月{d.day}日"
    if d >= date(2019, 5, 1):
        year = d.year - 2018
        text += f"（令和{'元' if year == 1 else year}年{d.month}月{d.day}日）"
    return text


def _short_date(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日（{_WEEKDAYS[d.weekday()]}）"


def _renewal_sources(kb: KnowledgeBase) -> str:
    topic = kb.topics.get("renewal")
    ids = topic.sources if topic else []
    cites = [kb.sources[s].cite() for s in ids if s in kb.sources]
    return (
        "出典："
        + ("、".join(cites) if cites else "各都道府県の更新申請の案内")
        + f"（{kb.prefecture.name}の更新の時期や書類は窓口でご確認ください）"
    )


def _office(kb: KnowledgeBase, municipality: str | None) -> str:
    pref = kb.prefecture
    if municipality and any(m.name == municipality for m in pref.municipalities):
        return office_block(pref, index_for(pref).office_of(municipality), municipality)
    return office_hint(kb)


RENEWAL_CHECKLIST = (
    "更新に向けて準備するもの（一般的な例）：\n"
    "1. 難病指定医（または協力難病指定医）の受診の予約：更新用の臨床調査個人票（臨個票）を書いてもらいます。"
    "書いてもらうまでに時間がかかることがあるので、まずこれを早めに。\n"
    "2. 更新申請書（窓口でもらえます）\n"
    "3. 保険証（資格確認書など）の写し\n"
    "4. 住民票や課税証明書など（マイナンバーで省略できる場合があります）\n"
    "5. 高額かつ長期・軽症高額を希望する方は、自己負担上限額管理票の写し\n"
    "6. 同じ世帯に受給者証をお持ちの方がいれば、その方の受給者証の写し"
)

LAPSE_NOTE = "有効期限を過ぎると、更新ではなく新規の申請（新規申請）になり、新規用の臨床調査個人票が必要になります。"


def reminder_text(kb: KnowledgeBase, *, expiry: date, offset_days: int, municipality: str | None, today: date) -> str:
    """The message of one reminder: days left, what to prepare, the user's office, the source.

    Args:
        kb: the knowledge base (office data and sources).
        expiry: the certificate's last valid day.
        offset_days: the mark this message is for (days before ``expiry``).
        municipality: the user's municipality, or None when unknown.
        today: the sending day in Japan (it may be later than the mark's day after a catch-up).
    """
    days_left = (expiry - today).days
    if days_left > 0:
        when = f"あと{days_left}日です。"
    else:
        when = "今日が有効期間の最後の日です。"
    lines = [f"【更新のお知らせ】受給者証（特定医療費（指定難病））の有効期限は{format_date(expiry)}、{when}"]
    if days_left <= 14:
        lines.append("まだ更新の申請がお済みでなければ、今すぐ窓口にお電話でご相談ください。" + LAPSE_NOTE)
    else:
        lines.append("続けて助成を受けるには、有効期限が切れる前に更新の申請が必要です。" + LAPSE_NOTE)
    lines += [
        "",
        RENEWAL_CHECKLIST,
        "",
        _office(kb, municipality),
        "",
        "このお知らせを止めるときは「通知をやめて」と送ってください。",
        _renewal_sources(kb),
    ]
    return "\n".join(lines)


# --- the registration dialog ---------------------------------------------------------------


def _ask_municipality(answers: Answers, ctx: Context) -> str:
    return "窓口の連絡先もお知らせに入れます。" + ask_municipality(answers, ctx)


def _ask_expiry(answers: Answers, ctx: Context) -> str:
    days = "・".join(f"{o}日前" for o in ctx.reminder_offsets)  # REMINDER_OFFSETS_DAYS
    text = (
        f"受給者証に書かれている有効期間の終わりの日（有効期限）を教えてください。期限の{days}にお知らせします。\n"
        "例：2027年3月31日、令和9年3月31日、R9.3.31、2027/3/31"
    )
    current = ctx.reminders.active()
    if current is not None:
        text += (
            f"\n（いま登録されているお知らせ（有効期限 {format_date(current.expiry_date)}）は、"
            "新しい日付で置き換えます）"
        )
    return text


def _parse_expiry(text: Text, ctx: Context) -> Any:
    value = parse_date(text, ctx.today)
    if isinstance(value, date) and (value - ctx.today).days > MAX_DAYS_AHEAD:
        return Invalid(
            f"{format_date(value)}と読み取りましたが、受給者証の有効期間は原則1年以内なので、先すぎるようです。"
            "受給者証の「有効期間」の終わりの日を、もう一度教えてください。"
        )
    return value


def _ask_confirm(answers: Answers, ctx: Context) -> str:
    expiry: date = answers["expiry_date"]
    days = (expiry - ctx.today).days
    if days > 0:
        left = f"今日からあと{days}日です"
    elif days == 0:
        left = "今日が最後の日です"
    else:
        left = "この日付はすでに過ぎています"
    return f"有効期限は {format_date(expiry)} ですね（{left}）。この日付でよろしいですか？"


def _parse_confirm(text: Text, ctx: Context) -> Any:
    value = parse_yes_no(text, about=("その日付", "この日付", "その日", "この日", "日付", "それ", "これ"))
    if value is UNKNOWN:
        return Invalid("この日付でよければ「はい」、違っていれば「いいえ」を送ってください。")
    if isinstance(value, Invalid):
        # A corrected date is taken by ``amends``; one that does not exist (「令和9年2月30日」)
        # is answered as such, not with 「「はい」か「いいえ」で…」.
        as_date = parse_date(text, ctx.today)
        if isinstance(as_date, ImpossibleDate):
            return as_date
    return value


def _prefill(ctx: Context) -> dict[str, Any]:
    muni = ctx.state.profile.get("municipality")
    return {"municipality": muni} if muni else {}


def _marks_text(view: ReminderView, now: datetime) -> str:
    lines = []
    for mark in view.marks:
        day = mark.due_at.astimezone(TOKYO).date()
        label = f"・{mark.offset_days}日前：{_short_date(day)} 9時ごろ"
        if mark.status == SENT:
            label += " … お送りしました"
        elif mark.status == CLAIMED:
            label += " … お送りしているところです"
        elif mark.status == PENDING and mark.due_at <= now:
            label += " … 時期を過ぎているため、このあとお送りします（9時〜20時）"
        elif mark.status == PENDING:
            label += " … 予定"
        elif mark.status == FAILED:
            label += " … お送りできませんでした"
        elif mark.status == SKIPPED:
            label += " … 時期を過ぎたためお送りしません"
        lines.append(label)
    return "\n".join(lines)


def _finish(answers: Answers, ctx: Context) -> list[Reply]:
    expiry: date = answers["expiry_date"]
    muni = answers.get("municipality")
    municipality = muni if isinstance(muni, str) else None
    if municipality:
        ctx.state.profile["municipality"] = municipality
    if expiry < ctx.today:
        return [
            Reply(
                f"有効期限の {format_date(expiry)} はすでに過ぎているため、お知らせは登録しませんでした。\n"
                "期限が切れた受給者証では助成を受けられません。続けて助成を受けるには、更新ではなく新規の申請（新規申請）が必要です。"
                "新規用の臨床調査個人票は、難病指定医に書いてもらう必要があります（協力難病指定医は新規用を書けません）。"
                "まずは窓口にお電話で、今からの手続きをご相談ください。\n\n"
                f"{_office(ctx.kb, municipality)}\n\n{_renewal_sources(ctx.kb)}",
                choices=(Choice("新しい日付で登録", "start:reminder"), MENU),
                kind="reminder-lapsed",
            )
        ]
    registration = ctx.reminders.register(
        expiry_date=expiry,
        municipality=municipality,
        marks=plan_marks(expiry, ctx.reminder_offsets, ctx.now),
        now=ctx.now,
    )
    return [
        Reply(
            _registered_text(registration, ctx),
            choices=(Choice("通知を確認", "reminder:list"), MENU),
            kind="reminder-registered",
        )
    ]


def _registered_text(registration: Registration, ctx: Context) -> str:
    view = registration.reminder
    text = (
        f"更新のお知らせを登録しました（有効期限 {format_date(view.expiry_date)}）。\n"
        f"次の日の午前9時ごろに、更新に必要な準備と窓口の連絡先をお送りします。\n{_marks_text(view, ctx.now)}"
    )
    if registration.replaced:
        old = "、".join(format_date(d) for d in registration.replaced)
        text += f"\n以前の登録（有効期限 {old}）のお知らせは取り消しました。"
    if (view.expiry_date - ctx.today).days <= 14:
        text += (
            "\n\n期限まで残りわずかです。まだ更新の申請がお済みでなければ、今すぐ窓口にお電話ください。"
            + LAPSE_NOTE
            + f"\n{_office(ctx.kb, view.municipality)}"
        )
    text += "\n\n登録内容は「通知を確認」、止めるときは「通知をやめて」と送ってください。"
    return text


_YES_NO = (Choice("はい", "yes"), Choice("いいえ（入力し直す）", "no"))

REMINDER_FORM = Form(
    name="reminder",
    intro="受給者証の有効期限が近づいたら、更新の準備と窓口の連絡先をお知らせします（午前9時ごろ）。",
    slots=(
        Slot(
            "expiry_date",
            ask=_ask_expiry,
            parse=_parse_expiry,
            allow_unknown=False,
            unknown_help=(
                "有効期限は、受給者証の「有効期間」の欄（「〜まで」と書かれた日付）に書かれています。"
                "お手元の受給者証をご確認のうえ、もう一度教えてください。"
            ),
        ),
        Slot(
            "confirm_expiry",
            ask=_ask_confirm,
            parse=_parse_confirm,
            choices=_YES_NO,
            expecting="expiry_date",
            reset_on_no=("expiry_date",),
            amends="expiry_date",
        ),
        Slot(
            "municipality", ask=_ask_municipality, parse=parse_municipality, choices=(Choice("わからない", "unknown"),)
        ),
    ),
    finish=_finish,
    prefill=_prefill,
)


# --- commands: 「通知を確認」「通知をやめて」 (recognised as actions: knowledge/actions.yaml) ------------


def _continue_open_dialog(ctx: Context) -> list[Reply]:
    """After a command, the question of a dialog that is still open, so the user can go on."""
    form = ctx.forms.get(ctx.state.dialog or "")
    if form is None:
        return []
    return dialog.ask(form, ctx, prefix="では、先ほどの続きです。")


def list_reminders(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """「通知を確認」: the active reminder, its date and marks."""
    view = ctx.reminders.active()
    if view is None:
        days = "・".join(f"{o}日前" for o in ctx.reminder_offsets)
        replies = [
            Reply(
                f"いま登録されている更新のお知らせはありません。受給者証の有効期限を教えていただければ、期限の{days}にお知らせします。",
                choices=(Choice("お知らせを登録", "start:reminder"), MENU),
                kind="reminder-list",
            )
        ]
    else:
        muni = f"\nお住まいの市町村：{view.municipality}" if view.municipality else ""
        lapsed = (
            "\nこの有効期限はすでに過ぎています。新しい受給者証が届いたら、その有効期限を登録し直してください。"
            if view.expiry_date < ctx.today
            else ""
        )
        replies = [
            Reply(
                f"登録中の更新のお知らせです。\n有効期限：{format_date(view.expiry_date)}{muni}{lapsed}\n"
                f"{_marks_text(view, ctx.now)}\n\n"
                "止めるときは「通知をやめて」、日付を変えるときは「更新のお知らせ」と送ってください。",
                choices=(Choice("通知をやめる", "reminder-stop"), Choice("日付を変える", "start:reminder"), MENU),
                kind="reminder-list",
            )
        ]
    return replies + _continue_open_dialog(ctx)


def stop_reminders(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """「通知をやめて」: stops at once, without a confirmation step.

    Stopping is harmless and undone by registering again, while a confirmation would
    stand between a user who wants silence and silence; the reply says so.
    """
    if ctx.state.dialog == REMINDER_FORM.name:
        dialog.end(ctx)  # the user would rather not be reminded: leave the registration too
    stopped = ctx.reminders.stop()
    if stopped:
        text = (
            "更新のお知らせを停止しました（確認なしで、すぐに停止しています）。これ以降、お知らせはお送りしません。\n"
            "また受け取りたいときは「更新のお知らせ」と送ってください。"
        )
    else:
        text = "登録されている更新のお知らせはありません（停止するものはありませんでした）。"
    return [
        Reply(text, choices=(Choice("お知らせを登録", "start:reminder"), MENU), kind="reminder-stop")
    ] + _continue_open_dialog(ctx)


__all__ = [
    "REMINDER_FORM",
    "in_sending_hours",
    "list_reminders",
    "mark_due_at",
    "plan_marks",
    "reminder_text",
    "stop_reminders",
]

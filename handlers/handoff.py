"""A person to reach: 「人と話したい」 → the user's office (phone, hours, what to have at hand) and,
where the operator configured a staff Slack channel, a hand-off note the user agrees to in that
moment.

The dialog ``HANDOFF_FORM`` (started by the ``handoff`` action of ``knowledge/actions.yaml``) asks
the municipality only when it is not known, then names the office with its phone and hours and what
to have at hand when calling. With a staff channel (``ctx.handoff``), it then asks, with two buttons,
whether to pass the user's last questions (redacted) to the staff. The yes is taken for that one
note only: it is never stored, and the next 「人と話したい」 asks again. The note is queued in the
turn's transaction; ``bot.handoff`` posts it to the staff channel and brings the staff's replies in
its thread back to the user, marked ``FROM_STAFF``.
"""

from __future__ import annotations

from handlers.base import Answers, Context, Form
from handlers.messages import Choice, IncomingMessage, Reply, Source
from handlers.office import index_for, office_block, office_card
from handlers.parsers import parse_yes_no
from handlers.system import MUNICIPALITY_SLOT, known_municipality
from nlp.privacy import redact

YES = "handoff:yes"
NO = "handoff:no"
# The profile key of a consent question on the screen: the turn it was asked in (the state's version).
OFFER = "handoff_offer"
# What a staff reply starts with when it reaches the user.
FROM_STAFF = "保健福祉事務所の担当者より："

AT_HAND = (
    "お電話の際は、次のものをお手元にご用意いただくと、お話が早く進みます。\n"
    "・受給者証（お持ちの方）\n"
    "・健康保険証（資格確認書など、保険の分かるもの）\n"
    "・お聞きになりたいこと（メモにしておくと安心です）"
)

CONSENT_QUESTION = (
    "よろしければ、このチャットで最近お尋ねになった内容（お名前や番号などは伏せます）を、"
    "県の担当の職員にお伝えできます。職員からのお返事は、このチャットにお届けします。\n"
    "今回のご相談をお伝えしてよいですか？"
)
CONSENT_CHOICES = (Choice("はい、伝えてください", YES), Choice("いいえ、伝えない", NO))

# Channels a staff reply can reach later (a push); the terminal cannot.
PUSHED = ("line", "slack")
CHANNEL_NAMES = {"line": "LINE", "slack": "Slack", "console": "ターミナル", "json": "JSON"}


def _finish(answers: Answers, ctx: Context) -> list[Reply]:
    pref = ctx.kb.prefecture
    muni = answers.get("municipality")
    source = f"出典：{ctx.kb.sources[pref.sources[0]].cite()}"
    if isinstance(muni, str):
        ctx.state.profile["municipality"] = muni
        office = index_for(pref).office_of(muni)
        text = (
            "担当の方と直接お話しになりたいときは、窓口にお電話ください。\n"
            f"{office_block(pref, office, muni)}\n{source}"
        )
        # The office as a card (LINE, Slack, the terminal's block), what to have at hand under it.
        replies = [
            Reply(text, kind="office", office=office_card(pref, office, muni), source=Source(source)),
            Reply(AT_HAND, kind="handoff-at-hand"),
        ]
    else:  # the town is not known: the prefecture's offices, each with its phone
        offices = "\n".join(f"・{o.name}　{o.phone}" for o in pref.offices.values())
        replies = [
            Reply(
                f"{pref.name}の窓口の一覧です。お住まいの地域の窓口にお電話ください（受付：{pref.hours}）。\n"
                f"{offices}\n\n{AT_HAND}\n{source}",
                kind="office",
            )
        ]
    if ctx.handoff is not None:
        ctx.state.profile[OFFER] = ctx.state.version
        replies.append(Reply(CONSENT_QUESTION, choices=CONSENT_CHOICES, kind="handoff-consent"))
    return replies


HANDOFF_FORM = Form(
    name="handoff",
    intro="担当の方と直接お話しいただける窓口をご案内します。",
    slots=(MUNICIPALITY_SLOT,),
    finish=_finish,
    prefill=known_municipality,
)


# --- the consent, asked each time ----------------------------------------------------------------


def _said(msg: IncomingMessage, ctx: Context) -> bool | None:
    """True/False when the message answers the consent question on the screen, else None."""
    if ctx.state.profile.get(OFFER) is None or ctx.handoff is None:
        return None
    if msg.choice in (YES, NO):
        return msg.choice == YES
    if msg.text is None or len(msg.text) > 20:
        return None
    value = parse_yes_no(ctx.text, about=("伝えて", "伝える", "お願い", "送って"))
    return value if isinstance(value, bool) else None


def answering(msg: IncomingMessage, ctx: Context) -> bool:
    """Whether the message is the yes or no to the consent question just asked."""
    return _said(msg, ctx) is not None


def moved_on(ctx: Context) -> None:
    """A consent question left unanswered for another message is gone: a later 「はい」 is no yes."""
    asked = ctx.state.profile.get(OFFER)
    if asked is not None and asked != ctx.state.version:
        ctx.state.profile.pop(OFFER, None)


def consent(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    yes = _said(msg, ctx)
    ctx.state.profile.pop(OFFER, None)
    assert ctx.handoff is not None
    if not yes:
        return [
            Reply(
                "わかりました。職員にはお伝えしていません。お電話でのご相談は、上の窓口へどうぞ。",
                choices=(Choice("メニュー", "menu"),),
                kind="handoff-declined",
            )
        ]
    recent = ctx.handoff.recent()
    topic = next((t for _, t in reversed(recent) if t), None)
    ref = ctx.handoff.open(topic, note(ctx, recent, topic))
    if ctx.channel in PUSHED:
        later = (
            f"職員からのお返事は、このチャットに「{FROM_STAFF}」として届きます。"
            "開庁時間内の対応のため、お時間をいただくことがあります。"
        )
    else:  # the terminal has no way to receive a message later
        later = "このターミナルには職員からのお返事は届きません。お返事は窓口へのお電話でお聞きください。"
    return [
        Reply(
            f"担当の職員にお伝えします（受付番号：{ref}）。{later}お急ぎのときは、窓口にお電話ください。",
            choices=(Choice("メニュー", "menu"),),
            kind="handoff-sent",
        )
    ]


def note(ctx: Context, recent: list[tuple[str, str | None]], topic: str | None) -> str:
    """The hand-off note for the staff: the reference is added by the desk. Nothing here names the
    user: the questions are redacted again (no digits, names or e-mail addresses)."""
    label = ctx.kb.topics[topic].label if topic in ctx.kb.topics else "（特定できず）"
    lines = [
        f"チャネル：{CHANNEL_NAMES.get(ctx.channel, ctx.channel)}",
        f"話題：{label}" + (f"（{topic}）" if topic else ""),
    ]
    muni = ctx.state.profile.get("municipality")
    if isinstance(muni, str):
        lines.append(f"市町村：{muni}")
    if recent:
        lines.append("最近の質問（個人が分かる部分は伏せています）：")
        lines += [f"・{redact(text)}" for text, _ in recent]
    else:
        lines.append("最近の質問：（記録なし）")
    lines.append(f"このスレッドに返信すると、その文が「{FROM_STAFF}」として利用者に届きます。")
    return "\n".join(lines)


def remember(ctx: Context, text: str, topic: str | None) -> None:
    """Keep a typed question (redacted) for a hand-off note, where hand-offs are configured."""
    if ctx.handoff is not None and text.strip():
        ctx.handoff.remember(redact(text), topic)


__all__ = ["AT_HAND", "FROM_STAFF", "HANDOFF_FORM", "NO", "YES", "answering", "consent", "moved_on", "remember"]

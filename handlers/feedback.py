"""Feedback on answers: 「👍 役に立った」「👎 役に立たなかった」 after every answer, for the people who run the bot.

Every answer that ends a turn — an FAQ answer, a fallback, a redirect, an office, a calculator's
result — gets one small pair of choices after the buttons that lead on (``offer``). Their value
names what was answered (``feedback:yes:<kind>:<topic>``), so a click on an older Slack message
counts for that message; a typed 「役に立った」 or 「わかりにくい」 counts for the last answer offered
(remembered in the user's profile as its kind and topic, never its text).

「役に立たなかった」 is recorded at once, then asks one short optional question (what was missing) and
offers the office: the next typed message is that note, kept only redacted (``nlp.privacy.redact``),
and 「書かずに終える」 or any button skips it. The rows are the statistics' (``QuestionLog``): the user
under a keyed id, the retention of ``STATS_RETENTION_DAYS``, deleted with the user's data.
"""

from __future__ import annotations

from dataclasses import replace

from handlers import dialog, system
from handlers.base import MENU, Context, known_office, text_of
from handlers.messages import FEEDBACK_PREFIX, Choice, IncomingMessage, Reply
from nlp.matcher import Match
from nlp.privacy import redact

PREFIX = FEEDBACK_PREFIX
SKIP = "feedback-skip"  # not PREFIX: it leads on, and channels show it with the other buttons
YES, NO = "yes", "no"
# The kinds of reply that end a turn with something to judge.
RESULT_KINDS = frozenset({"fallback", "redirect", "office", "copay-result", "start-result", "mild-result"})
# Kept in the user's profile: what the last offered pair was about (kind, topic), and the
# feedback whose optional note the next typed message is.
LAST = "feedback_on"
NOTE = "feedback_note"
OFFICE = Choice("窓口を探す", "office")
# Consecutive 「役に立たなかった」 (profile); the second in a row leads to a person (handlers.handoff).
STREAK = "unhelpful_streak"
HANDOFF_FORM = "handoff"

HELPFUL_WORDS = system.phrases(
    "役に立った",
    "役にたった",
    "やくにたった",
    "役に立ちました",
    "役にたちました",
    "参考になった",
    "参考になりました",
    "わかりやすい",
    "分かりやすい",
    "わかりやすかった",
    "分かりやすかった",
    "👍",
)
UNHELPFUL_WORDS = system.phrases(
    "役に立たなかった",
    "役にたたなかった",
    "やくにたたなかった",
    "役に立たない",
    "役にたたない",
    "役に立ちませんでした",
    "わかりにくい",
    "分かりにくい",
    "わかりにくかった",
    "分かりにくかった",
    "わかりづらい",
    "分かりづらい",
    "参考にならなかった",
    "👎",
)

# An answer is "unsure" (listed by ``nanbyo-bot review``) when its confidence is below this, or
# when the next topic is within ``UNSURE_GAP`` points of it: the bot answered, but barely.
UNSURE_BELOW = 60.0
UNSURE_GAP = 8.0


def unsure(score: float, candidates: tuple[Match, ...]) -> bool:
    """Whether an answer given with ``score`` over these ranked topics was a close call."""
    if score < UNSURE_BELOW:
        return True
    return len(candidates) > 1 and candidates[0].confidence - candidates[1].confidence < UNSURE_GAP


def pair(kind: str, topic: str | None) -> tuple[Choice, Choice]:
    """The two feedback choices about an answer of ``kind`` on ``topic``."""
    about = f"{kind}:{topic or ''}"
    return Choice("👍 役に立った", f"{PREFIX}{YES}:{about}"), Choice("👎 役に立たなかった", f"{PREFIX}{NO}:{about}")


def offered(reply: Reply) -> bool:
    return any(c.value.startswith(PREFIX) for c in reply.choices)


def eligible(reply: Reply) -> bool:
    """An answer to judge: not a question the bot waits on, not a menu or a notice."""
    if reply.expecting is not None:
        return False
    return (reply.kind == "answer" and reply.topic is not None) or reply.kind in RESULT_KINDS


def offer(replies: list[Reply], ctx: Context, topic: str | None = None) -> list[Reply]:
    """The replies with the feedback pair after the last one's choices, when it is an answer.

    ``topic`` names what a reply without a topic (a fallback) was closest to. Only the last reply
    gets the pair (on LINE the quick replies are the last message's anyway); a turn that ends with a
    question of a dialog gets none.
    """
    if not replies or offered(replies[-1]) or not eligible(replies[-1]):
        return replies
    last = replies[-1]
    about = last.topic or topic
    ctx.state.profile[LAST] = {"kind": last.kind, "topic": about}
    return [*replies[:-1], replace(last, choices=(*last.choices, *pair(last.kind, about)))]


# --- the route table's conditions and handlers ---------------------------------------------


def _parsed(value: str) -> tuple[bool, str, str | None] | None:
    """(helpful, kind, topic) of a feedback choice's value, or None."""
    parts = value.removeprefix(PREFIX).split(":", 2)
    if len(parts) != 3 or parts[0] not in (YES, NO) or not parts[1]:
        return None
    return parts[0] == YES, parts[1], parts[2] or None


def wanted(msg: IncomingMessage, ctx: Context) -> tuple[bool, str, str | None] | None:
    """The feedback a message gives: a clicked pair, or a typed phrase after an answer; else None."""
    if msg.choice is not None:
        return _parsed(msg.choice) if msg.choice.startswith(PREFIX) and msg.choice != SKIP else None
    last = ctx.state.profile.get(LAST)
    if not isinstance(last, dict) or not last.get("kind"):
        return None
    if system.matches(HELPFUL_WORDS, msg, ctx):
        return True, str(last["kind"]), last.get("topic")
    if system.matches(UNHELPFUL_WORDS, msg, ctx):
        return False, str(last["kind"]), last.get("topic")
    return None


def said_without_answer(msg: IncomingMessage, ctx: Context) -> bool:
    """「役に立った」 or 「わかりにくい」 typed with no answer to attach it to (already judged, or none yet)."""
    return msg.choice is None and (system.matches(HELPFUL_WORDS, msg, ctx) or system.matches(UNHELPFUL_WORDS, msg, ctx))


def acknowledge(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """A kind word back, and for 「わかりにくい」 the office; nothing is recorded without an answer to judge."""
    if system.matches(HELPFUL_WORDS, msg, ctx):
        return [
            Reply(
                "ご意見ありがとうございます。ほかにも気になることがあれば、いつでもお尋ねください。",
                choices=(MENU,),
                kind="feedback-thanks",
            )
        ]
    return [
        Reply(
            "わかりにくくて、申し訳ありません。知りたいことを別の言葉で送っていただくか、窓口にお尋ねください。\n\n"
            + known_office(ctx),
            choices=(OFFICE, MENU),
            kind="feedback-sorry",
        )
    ]


def give(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """Record the feedback; 「役に立たなかった」 asks what was missing (optional) and offers the office."""
    found = wanted(msg, ctx)
    assert found is not None
    helpful, kind, topic = found
    if topic is not None and topic not in ctx.kb.topics:
        topic = None  # a forged or outdated value: the feedback still counts, about no topic
    feedback_id = ctx.questions.feedback(ctx.today, topic, kind, helpful)
    ctx.state.profile.pop(LAST, None)  # one answer, one feedback
    if helpful:
        ctx.state.profile.pop(NOTE, None)
        ctx.state.profile.pop(STREAK, None)
        return [
            Reply(
                "ご意見ありがとうございます。お役に立てたなら何よりです。"
                "ほかにも気になることがあれば、いつでもお尋ねください。",
                choices=(MENU,),
                kind="feedback-thanks",
            )
        ]
    if ctx.state.dialog in ctx.forms:
        # A click on an older answer while a dialog waits: no second question on top of the dialog's.
        return [
            Reply(
                "ご意見ありがとうございます。お役に立てず、申し訳ありません。\n\n" + known_office(ctx),
                kind="feedback-sorry",
            )
        ]
    streak = int(ctx.state.profile.get(STREAK) or 0) + 1
    ctx.state.profile[STREAK] = streak
    person = ctx.forms.get(HANDOFF_FORM)
    if streak >= 2 and person is not None and ctx.state.dialog not in ctx.forms:
        # Two answers in a row that did not help: a person, not a third try. The hand-off gives the
        # office with phone, hours and what to have at hand (and, where staff are on Slack and the
        # user says yes then, a note to them).
        ctx.state.profile.pop(STREAK, None)
        ctx.state.profile.pop(NOTE, None)
        return [
            Reply(
                "続けてお役に立てず、申し訳ありません。担当の方に直接お尋ねいただくのが確かです。",
                kind="feedback-person",
            )
        ] + dialog.start(person, ctx)
    ctx.state.profile[NOTE] = feedback_id
    text = (
        "お役に立てず、申し訳ありません。\n"
        "よろしければ、足りなかったこと（知りたかったこと）を一言で送ってください。"
        "いただいた言葉は、お名前や番号を除いて、回答を見直すために使います。書かなくても大丈夫です。\n\n"
        + known_office(ctx)
    )
    return [Reply(text, choices=(Choice("書かずに終える", SKIP), OFFICE), kind="feedback-ask")]


def noting(msg: IncomingMessage, ctx: Context) -> bool:
    """The message answers 「足りなかったことは」: typed text, or 「書かずに終える」."""
    if not isinstance(ctx.state.profile.get(NOTE), int) or ctx.state.dialog in ctx.forms:
        return False
    return msg.choice == SKIP or (msg.choice is None and bool((msg.text or "").strip()))


def take_note(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    feedback_id = ctx.state.profile.pop(NOTE)
    if msg.choice == SKIP:
        return [
            Reply("承知しました。ほかにご質問があれば、いつでもどうぞ。", choices=(OFFICE, MENU), kind="feedback-skip")
        ]
    note = redact(text_of(msg))
    if note:
        ctx.questions.feedback_note(int(feedback_id), note)
    return [
        Reply(
            "ありがとうございます。いただいたご意見は、回答を見直すときに使わせていただきます。\n"
            "別のご質問があれば、そのまま送ってください。",
            choices=(OFFICE, MENU),
            kind="feedback-noted",
        )
    ]


def skip(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """「書かずに終える」 clicked when no note is awaited any more (an older message)."""
    return [Reply("承知しました。ほかにご質問があれば、いつでもどうぞ。", choices=(MENU,), kind="feedback-skip")]

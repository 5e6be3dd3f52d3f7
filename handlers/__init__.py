"""The route table: which handler answers a message. First match wins.

Emergencies and crises are answered before the route table, by the core (``urgent_in``), in
every state and before the guards. Order matters and reads top to bottom: cancel / menu / delete →
dialog starters and "talk to a person" (they leave an open dialog) → the open
dialog → clicked topics → small talk → the FAQ. A handler is ``(message, context) -> list[Reply]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.messages import Choice, IncomingMessage, Reply
from bot.nlp.normalize import fold
from bot.privacy import redact
from handlers import dialog, reminders, system
from handlers.base import Context, text_of
from handlers.dialog import Form
from handlers.faq import consult, render_topic
from handlers.parsers import Invalid
from handlers.safety import Detection, detect, urgent_reply
from knowledge import KnowledgeBase

Handler = Callable[[IncomingMessage, Context], list[Reply]]


@dataclass(frozen=True)
class Route:
    name: str
    when: Callable[[IncomingMessage, Context], bool]
    handle: Handler


# --- conditions -----------------------------------------------------------------

def _in_dialog(msg: IncomingMessage, ctx: Context) -> bool:
    return ctx.state.dialog in ctx.forms


def _topic_choice(msg: IncomingMessage, ctx: Context) -> bool:
    return text_of(msg).startswith("topic:") and text_of(msg).removeprefix("topic:") in ctx.kb.topics


def starter_for(msg: IncomingMessage, ctx: Context) -> str | None:
    """The dialog a message asks to start, if any: a start: button, or a starter phrase."""
    value = text_of(msg)
    if value.startswith("start:"):
        name = value.removeprefix("start:")
        return name if name in ctx.forms else None
    if msg.text is None:
        return None
    folded = fold(msg.text)
    # The longest matching phrase wins: 「開始日を計算したい」 starts the start-date form, not the copay one.
    best: tuple[int, str] | None = None
    for name, phrases in ctx.starters.items():
        if name not in ctx.forms:
            continue
        for p in phrases:
            if p in folded and (best is None or len(p) > best[0]):
                best = (len(p), name)
    return best[1] if best else None


# --- handlers -------------------------------------------------------------------

# Longest text searched for an emergency; beyond it a message is refused as too long anyway.
URGENT_MAX_CHARS = 10_000


def urgent_in(msg: IncomingMessage, kb: KnowledgeBase) -> Detection | None:
    """The emergency or crisis a typed message reports; checked before anything else, in every state."""
    if msg.text is None or msg.choice is not None:
        return None
    return detect(kb, msg.text[:URGENT_MAX_CHARS])


def urgent(msg: IncomingMessage, ctx: Context, found: Detection) -> list[Reply]:
    """119 (and the crisis lines) first; an open dialog stays where it was, its question asked again."""
    replies = [Reply(urgent_reply(ctx.kb, found), kind=found.kind.value)]
    if ctx.state.dialog in ctx.forms:
        replies += dialog.ask(ctx.forms[ctx.state.dialog], ctx, prefix="（先ほどの続きは、落ち着いてからで大丈夫です）")
    return replies


def answer_topic(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    tid = text_of(msg).removeprefix("topic:")
    body, choices = render_topic(ctx.kb, tid, ctx.state.profile.get("municipality"))
    return [Reply(body, choices=choices, topic=tid)]


def start_dialog(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    name = starter_for(msg, ctx)
    assert name is not None
    return dialog.start(ctx.forms[name], ctx)


def continue_dialog(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """Feed the message to the open dialog; a question asked meanwhile gets its answer, then the pending question."""
    form: Form = ctx.forms[ctx.state.dialog]  # type: ignore[index]
    value = text_of(msg)
    if value == "back" or system.matches(BACK_WORDS, msg):
        return dialog.back(form, ctx)
    if _topic_choice(msg, ctx):
        return answer_topic(msg, ctx) + dialog.ask(form, ctx, prefix="では、先ほどの続きです。")
    # A longer message that is clearly a question of its own gets its answer first; the
    # pending question is asked again afterwards and no answer is recorded from it.
    # The FAQ is consulted at most once per turn, and only for typed text long enough to be a question.
    c = consult(ctx.kb, ctx.matcher, msg.text, ctx.state.profile.get("municipality")) \
        if msg.text and len(msg.text) >= 6 else None
    if c is not None and len(msg.text or "") >= QUESTION_MIN_CHARS and _QUESTION.search((msg.text or "").strip()):
        if c.kind in ("medical", "redirect") or (c.kind == "answer" and c.score >= MID_DIALOG_CONFIDENCE):
            return [c.reply()] + dialog.ask(form, ctx, prefix="では、先ほどの続きです。")
    result = dialog.answer(form, ctx, value)
    if not isinstance(result, Invalid):
        return result
    if c is not None and c.kind in ("answer", "medical", "redirect"):
        return [c.reply()] + dialog.ask(form, ctx, prefix="では、先ほどの続きです。")
    return dialog.reask(form, ctx, result)


# Mid-dialog, a message this long that the FAQ answers this confidently is a question, not an answer.
QUESTION_MIN_CHARS = 15
_QUESTION = re.compile(r"([?？]|ですか|ますか|でしょうか|の|って|かな)$|どう|何|なに|いつ|どこ|いくら|どれ|なぜ|なんで")
MID_DIALOG_CONFIDENCE = 60.0


def faq(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    c = consult(ctx.kb, ctx.matcher, text_of(msg), ctx.state.profile.get("municipality"))
    if ctx.uow is not None and c.kind in ("answer", "fallback", "redirect"):
        # Statistics for the operator: the topic, and for unanswered questions a redacted text.
        closest = c.topic or (c.candidates[0].id if c.candidates else None)
        ctx.uow.record_question(ctx.state.user_key, ctx.today, closest, c.kind == "answer",
                                None if c.kind == "answer" else redact(text_of(msg)))
    if c.kind in ("answer", "office") and c.municipality:
        ctx.state.profile["municipality"] = c.municipality
    return [c.reply()]


BACK_WORDS = system._phrases("戻る", "もどる", "戻って", "前に戻る", "ひとつ戻る", "一つ前", "back", "修正", "訂正",
                             "間違えた", "まちがえた", "間違えました", "まちがえました", "入力ミス")
# After a result, these offer to change one answer (inside a dialog, 「戻る」 goes back one question).
FIX_WORDS = BACK_WORDS | system._phrases("fix", "ちがう", "違う", "違います", "ちがいます", "間違い", "まちがい", "直したい",
                                         "なおしたい", "答えを直す", "答えを直したい", "やっぱり違う", "修正したい", "訂正したい",
                                         "直す", "なおす", "間違ってる", "まちがってる", "間違っています")
RESTART_WORDS = system._phrases("最初から", "はじめから", "初めから", "最初からやり直し", "最初からやり直す", "やり直し",
                                "やりなおし", "やり直す", "やりなおす", "もう一度最初から", "最初からお願いします")
DETAILS_WORDS = system._phrases("details", "くわしく", "詳しく", "詳細", "くわしく見る", "もっと詳しく", "内訳", "計算の内訳")


def _restart_form(ctx: Context) -> Form | None:
    """The dialog 「最初から」 starts again: the open one, else the one that just gave a result."""
    if ctx.state.dialog in ctx.forms:
        return ctx.forms[ctx.state.dialog]  # type: ignore[index]
    last = dialog.last_answers(ctx)
    return last[0] if last else None


def restart(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    form = _restart_form(ctx)
    assert form is not None
    return [Reply("最初からやり直します。", kind="restart")] + dialog.start(form, ctx)


def _after_result(ctx: Context) -> bool:
    return ctx.state.dialog not in ctx.forms and dialog.last_answers(ctx) is not None

ROUTES: tuple[Route, ...] = (
    Route("restart", lambda m, c: system.matches(RESTART_WORDS, m) and _restart_form(c) is not None, restart),
    Route("cancel", lambda m, c: system.matches(system.CANCEL_WORDS, m), system.cancel),
    Route("menu", lambda m, c: system.matches(system.MENU_WORDS, m), system.menu),
    Route("delete", lambda m, c: system.matches(system.DELETE_WORDS, m), system.start_delete),
    Route("reminder-list", lambda m, c: system.matches(reminders.REMINDER_PHRASES["reminder-list"], m),
          reminders.REMINDER_COMMANDS["reminder-list"]),
    Route("reminder-stop", lambda m, c: system.matches(reminders.REMINDER_PHRASES["reminder-stop"], m),
          reminders.REMINDER_COMMANDS["reminder-stop"]),
    Route("reminder-start", lambda m, c: system.matches(reminders.REMINDER_PHRASES["reminder-start"], m),
          reminders.REMINDER_COMMANDS["reminder-start"]),
    # After a result: 「くわしく」 shows the working; 「間違えた」 offers to change one answer.
    Route("details", lambda m, c: _after_result(c) and system.matches(DETAILS_WORDS, m),
          lambda m, c: dialog.details(c)),
    Route("fix", lambda m, c: _after_result(c) and system.matches(FIX_WORDS, m), lambda m, c: dialog.offer_fix(c)),
    Route("fix-answer", lambda m, c: _after_result(c) and text_of(m).startswith("fix:"),
          lambda m, c: dialog.reopen(c, text_of(m).removeprefix("fix:"))),
    # Starting another dialog (a menu button, 「人と話したい」) leaves the open one, as a person would expect.
    Route("start", lambda m, c: starter_for(m, c) is not None, start_dialog),
    Route("office", lambda m, c: system.matches(system.HUMAN_WORDS, m), system.start_office),
    Route("dialog", _in_dialog, continue_dialog),
    Route("topic", _topic_choice, answer_topic),
    Route("greeting", lambda m, c: system.matches(system.GREETING_WORDS, m), system.greeting),
    Route("thanks", lambda m, c: system.matches(system.THANKS_WORDS, m), system.thanks),
    Route("faq", lambda m, c: True, faq),
)


def route(msg: IncomingMessage, ctx: Context) -> tuple[str, list[Reply]]:
    """Run the first route whose condition holds. Returns (route name, replies)."""
    for r in ROUTES:
        if r.when(msg, ctx):
            return r.name, r.handle(msg, ctx)
    raise AssertionError("the faq route always matches")  # pragma: no cover


DEFAULT_FORMS: dict[str, Form] = {
    system.OFFICE_FORM.name: system.OFFICE_FORM,
    system.DELETE_FORM.name: system.DELETE_FORM,
}

__all__ = ["ROUTES", "DEFAULT_FORMS", "Choice", "Route", "route"]

"""The route table: which handler answers a message. First match wins.

Emergencies and crises are answered before the route table, by the core (``urgent_in``), in
every state and before the guards. Then, top to bottom: a clicked action button or a message
that is one of an action's phrasings (``knowledge/actions.yaml``: cancel, menu, start a
calculator, delete my data …) → after a result, its details or changing one answer → the open
dialog (an answer; otherwise the message is understood like any other) → clicked topics →
situations before procedures (a move, a child as the patient: ``handlers.situations``) → small
talk → the one understanding of questions, requests and the services next door
(``handlers.faq.consult``). A handler is ``(message, context) -> list[Reply]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from handlers import amounts, context, cost_log, dialog, feedback, handoff, situations, system, understand
from handlers.base import Context, Form, text_of
from handlers.faq import IN_DIALOG_ACTION_THRESHOLD, Consultation, consult, render_topic
from handlers.messages import IncomingMessage, Reply
from handlers.parsers import Invalid, only_unsure
from handlers.safety import Detection, detect, urgent_reply
from knowledge import KnowledgeBase
from knowledge.models import Action
from nlp.privacy import redact
from nlp.text import Text

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


# --- handlers -------------------------------------------------------------------

# Longest text searched for an emergency; beyond it a message is refused as too long anyway.
URGENT_MAX_CHARS = 10_000


def urgent_in(msg: IncomingMessage, text: Text, kb: KnowledgeBase) -> Detection | None:
    """The emergency or crisis a typed message reports; checked before anything else, in every state.

    ``text`` is the turn's ``Text`` of the message; only a message too long to answer anyway is
    read again, cut to its first ``URGENT_MAX_CHARS``.
    """
    if msg.text is None or msg.choice is not None:
        return None
    return detect(kb, text if len(text.raw) <= URGENT_MAX_CHARS else Text(text.raw[:URGENT_MAX_CHARS]))


def urgent(msg: IncomingMessage, ctx: Context, found: Detection) -> list[Reply]:
    """119 (and the crisis lines) first; an open dialog stays where it was, its question asked again."""
    replies = [Reply(urgent_reply(ctx.kb, found), kind=found.kind.value)]
    if ctx.state.dialog in ctx.forms:
        replies += dialog.ask(ctx.forms[ctx.state.dialog], ctx, prefix="（先ほどの続きは、落ち着いてからで大丈夫です）")
    return replies


def answer_topic(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    tid = text_of(msg).removeprefix("topic:")
    body, choices = render_topic(ctx.kb, tid, ctx.state.profile.get("municipality"))
    context.remember(ctx, tid)
    return [Reply(body, choices=choices, topic=tid)]


def continue_dialog(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """Feed the message to the open dialog; a question asked meanwhile gets its answer, then the pending question."""
    form: Form = ctx.forms[ctx.state.dialog]  # type: ignore[index]
    value = text_of(msg)
    if value == "back" or system.matches(BACK_WORDS, msg, ctx):
        return dialog.back(form, ctx)
    if _topic_choice(msg, ctx):
        return answer_topic(msg, ctx) + dialog.ask(form, ctx, prefix="では、先ほどの続きです。")
    # A longer message that is clearly a question of its own gets its answer first; the
    # pending question is asked again afterwards and no answer is recorded from it.
    # The FAQ is consulted at most once per turn: before the answer only for such a question,
    # otherwise only when the message turned out not to be an answer.
    text = msg.text or ""  # typed: ctx.text has its forms (a message has text or a choice, never both)
    c = None
    if len(text) >= QUESTION_MIN_CHARS and _QUESTION.search(text.strip()):
        c = _consult_mid_dialog(ctx)
        if c.kind in ("medical", "redirect") or (c.kind == "answer" and c.score >= MID_DIALOG_CONFIDENCE):
            return [c.reply()] + dialog.ask(form, ctx, prefix="では、先ほどの続きです。")
    result = dialog.answer(form, ctx, ctx.text)
    if not isinstance(result, Invalid):
        return result
    # 「わからない」 where the question does not take it (an offer to decide on): the question
    # again with what it does take, not the menu that 「使い方がわからない」 would bring.
    # A figure of another kind (「年収は450万です」 at the 所得割 question) was read: its re-ask answers it.
    if only_unsure(ctx.text) or isinstance(result, amounts.OtherKind):
        return dialog.reask(form, ctx, result)
    # Not an answer: understood like any other message (a request, a question), then asked again.
    if c is None and len(text) >= 2:
        c = _consult_mid_dialog(ctx)
    if c is not None and c.kind == "action" and c.action is not None:
        return _still_open(ctx, _performed(c, c.action, msg, ctx))
    if c is not None and c.kind in ("answer", "medical", "redirect"):
        return [c.reply()] + dialog.ask(form, ctx, prefix="では、先ほどの続きです。")
    return dialog.reask(form, ctx, result)


def _consult_mid_dialog(ctx: Context) -> Consultation:
    return consult(
        ctx.kb,
        ctx.matcher,
        ctx.text,
        ctx.state.profile.get("municipality"),
        action_threshold=IN_DIALOG_ACTION_THRESHOLD,
    )


# Mid-dialog, a message this long that the FAQ answers this confidently is a question, not an answer.
QUESTION_MIN_CHARS = 15
_QUESTION = re.compile(r"([?？]|ですか|ますか|でしょうか|の|って|かな)$|どう|何|なに|いつ|どこ|いくら|どれ|なぜ|なんで")
MID_DIALOG_CONFIDENCE = 60.0


def _still_open(ctx: Context, replies: list[Reply]) -> list[Reply]:
    """An action that answered (the menu, the list of reminders …) and left a dialog open is
    followed by the dialog's pending question: else the next 「はい」 would answer a question that
    is no longer on the screen."""
    if ctx.state.dialog in ctx.forms and replies and replies[-1].expecting is None:
        form = ctx.forms[ctx.state.dialog]
        if dialog.pending(form, ctx) is not None:
            return replies + dialog.ask(form, ctx, prefix="では、先ほどの続きです。")
    return replies


def _performed(c: Consultation, action_id: str, msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """Do the action ``action_id`` a message asked for (``c.action``); a topic that was almost as
    close goes on the first reply as a button."""
    if c.municipality:
        ctx.state.profile["municipality"] = c.municipality
    replies = understand.perform(understand.action(ctx.kb, action_id), msg, ctx)
    if c.choices and replies:
        first = replies[0]
        replies[0] = replace(first, choices=first.choices + c.choices)
    return replies


def faq(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    municipality = ctx.state.profile.get("municipality")
    # Read with the topic just answered where the message leans on it; a second question offered.
    c = context.second_question(ctx.kb, ctx.matcher, ctx.text, context.read(ctx, municipality), municipality)
    if c.kind == "answer":
        context.remember(ctx, c.topic)
    if c.kind == "action" and c.action is not None:
        return _performed(c, c.action, msg, ctx)
    if c.kind in ("answer", "fallback", "redirect"):
        # Statistics for the operator: the topic, and for unanswered questions a redacted text.
        closest = c.topic or (c.candidates[0].id if c.candidates else None)
        # The text is kept (redacted) for what the bot did not answer and for what it answered
        # unsure: both are the KB editor's list (``nanbyo-bot review``).
        keep = c.kind != "answer" or feedback.unsure(c.score, c.candidates)
        ctx.questions.record(ctx.today, closest, c.kind == "answer", redact(text_of(msg)) if keep else None)
        handoff.remember(ctx, msg.text or "", closest)  # for a hand-off note, briefly (bot.handoff)
    if c.kind in ("answer", "office") and c.municipality:
        ctx.state.profile["municipality"] = c.municipality
    closest_topic = c.topic or (c.candidates[0].id if c.candidates else None)
    return feedback.offer([c.reply()], ctx, topic=closest_topic)


def _note(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """The note after 「役に立たなかった」 is kept; when it is also a question the bot answers surely
    (the user asked again instead), the answer follows the thanks rather than being lost."""
    replies = feedback.take_note(msg, ctx)
    if msg.choice is None:
        c = consult(ctx.kb, ctx.matcher, ctx.text, ctx.state.profile.get("municipality"))
        if c.kind == "action" or (c.kind == "answer" and not feedback.unsure(c.score, c.candidates)):
            return [replace(replies[0], text="ご意見ありがとうございます。", choices=())] + faq(msg, ctx)
    return replies


BACK_WORDS = system.phrases(
    "戻る",
    "もどる",
    "戻って",
    "前に戻る",
    "ひとつ戻る",
    "一つ前",
    "back",
    "修正",
    "訂正",
    "間違えた",
    "まちがえた",
    "間違えました",
    "まちがえました",
    "入力ミス",
)
# After a result, these offer to change one answer (inside a dialog, 「戻る」 goes back one question).
FIX_WORDS = BACK_WORDS | system.phrases(
    "fix",
    "ちがう",
    "違う",
    "違います",
    "ちがいます",
    "間違い",
    "まちがい",
    "直したい",
    "なおしたい",
    "答えを直す",
    "答えを直したい",
    "やっぱり違う",
    "修正したい",
    "訂正したい",
    "直す",
    "なおす",
    "間違ってる",
    "まちがってる",
    "間違っています",
)
DETAILS_WORDS = system.phrases(
    "details", "くわしく", "詳しく", "詳細", "くわしく見る", "もっと詳しく", "内訳", "計算の内訳"
)


def _corrects(msg: IncomingMessage, ctx: Context) -> bool:
    """Whether a typed message reads as a correction (「XじゃなくてY」) while there are answers to correct."""
    return (
        msg.text is not None and dialog.reads_as_correction(ctx.text) and (_in_dialog(msg, ctx) or _after_result(ctx))
    )


def correct(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """The corrected answer changed (in the dialog, or after its result and computed again); a sentence
    that corrects none of the answers is read as any other message."""
    if _in_dialog(msg, ctx):
        return dialog.correct(ctx.forms[ctx.state.dialog], ctx, ctx.text) or continue_dialog(msg, ctx)  # type: ignore[index]
    return dialog.correct_result(ctx, ctx.text) or faq(msg, ctx)


def _after_result(ctx: Context) -> bool:
    return ctx.state.dialog not in ctx.forms and dialog.last_answers(ctx) is not None


def _action(msg: IncomingMessage, ctx: Context) -> Action | None:
    return understand.clicked(msg, ctx.kb) or understand.said(msg, ctx)


def do_action(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    found = _action(msg, ctx)
    assert found is not None
    return _still_open(ctx, understand.perform(found, msg, ctx))


def _start_button(msg: IncomingMessage, ctx: Context) -> bool:
    return text_of(msg).startswith("start:") and text_of(msg).removeprefix("start:") in ctx.forms


def start_button(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """A start:<dialog> button (a dialog no action names, such as the office finder's own)."""
    return dialog.start(ctx.forms[text_of(msg).removeprefix("start:")], ctx)


ROUTES: tuple[Route, ...] = (
    # 「いらない」 right after the cost log offered to go on answers that offer only.
    Route("costlog-decline", cost_log.declines_offer, cost_log.decline_offer),
    # A button of an action, or a message that is one of its phrasings: at once, in any state.
    Route("action", lambda m, c: _action(m, c) is not None, do_action),
    Route("start", _start_button, start_button),
    # The yes or no to 「職員に伝えてよいですか」, asked with 「人と話したい」 (handlers.handoff), that turn only.
    Route("handoff-consent", handoff.answering, handoff.consent),
    # 「役に立った」「役に立たなかった」 on an answer (a click, or typed after one), and the optional note.
    Route("feedback", lambda m, c: feedback.wanted(m, c) is not None, lambda m, c: _still_open(c, feedback.give(m, c))),
    Route("feedback-note", feedback.noting, lambda m, c: _note(m, c)),
    Route("feedback-skip", lambda m, c: m.choice == feedback.SKIP, feedback.skip),
    Route(
        "feedback-words", lambda m, c: not _in_dialog(m, c) and feedback.said_without_answer(m, c), feedback.acknowledge
    ),
    # After a result: 「くわしく」 shows the working; 「間違えた」 offers to change one answer.
    Route(
        "details", lambda m, c: _after_result(c) and system.matches(DETAILS_WORDS, m, c), lambda m, c: dialog.details(c)
    ),
    Route("fix", lambda m, c: _after_result(c) and system.matches(FIX_WORDS, m, c), lambda m, c: dialog.offer_fix(c)),
    Route(
        "fix-answer",
        lambda m, c: _after_result(c) and text_of(m).startswith("fix:"),
        lambda m, c: dialog.reopen(c, text_of(m).removeprefix("fix:")),
    ),
    # The day months were logged, 「間違えた」 changes a month; months typed by a user who keeps the
    # cost log (the answer to its monthly nudge) are logged.
    Route("costlog-fix", lambda m, c: cost_log.fixing(m, c) and system.matches(FIX_WORDS, m, c), cost_log.fix),
    Route("costlog-months", lambda m, c: cost_log.typed_months(m, c) is not None, cost_log.record_typed),
    # 「ちがう、3割じゃなくて1割だった」: an earlier answer changed, in the dialog or after its result.
    Route("correction", _corrects, correct),
    Route("dialog", _in_dialog, continue_dialog),
    Route("topic", _topic_choice, answer_topic),
    # Situations before procedures: a move, a child as the patient (handlers.situations).
    Route("situation", situations.applies, situations.answer),
    Route("greeting", lambda m, c: system.matches(system.GREETING_WORDS, m, c), system.greeting),
    Route("thanks", lambda m, c: system.matches(system.THANKS_WORDS, m, c), system.thanks),
    Route("faq", lambda m, c: True, faq),
)


def route(msg: IncomingMessage, ctx: Context) -> tuple[str, list[Reply]]:
    """Run the first route whose condition holds. Returns (route name, replies)."""
    awaited = ctx.state.profile.get(feedback.NOTE)
    for r in ROUTES:
        if r.when(msg, ctx):
            replies = r.handle(msg, ctx)
            if r.name != "feedback-note" and ctx.state.profile.get(feedback.NOTE) == awaited:
                ctx.state.profile.pop(feedback.NOTE, None)  # the note was not given: the user moved on
            if r.name != "handoff-consent":
                handoff.moved_on(ctx)  # a consent is given to the question on the screen, or not at all
            # Every answer ends with the feedback pair, after the choices that lead on.
            return r.name, feedback.offer(replies, ctx)
    raise AssertionError("the faq route always matches")  # pragma: no cover


DEFAULT_FORMS: dict[str, Form] = {
    system.OFFICE_FORM.name: system.OFFICE_FORM,
    system.DELETE_FORM.name: system.DELETE_FORM,
    situations.CHILD_AGE_FORM.name: situations.CHILD_AGE_FORM,
    handoff.HANDOFF_FORM.name: handoff.HANDOFF_FORM,
}

__all__ = ["ROUTES", "DEFAULT_FORMS", "Route", "route", "urgent", "urgent_in"]

"""A small form engine: dialogs declared as data, run one question at a time.

A ``Form`` is a list of ``Slot``s (both declared in ``handlers.base``, beside the ``Context``
their functions are given; importable from here too). The engine asks the first slot that is not
answered yet and whose ``ask_if`` holds, parses the answer with the slot's
parser (a clicked button's value goes through the same parser as typed text),
and when no slot is left calls ``finish``. 「戻る」 forgets the last answer and
asks it again; 「やめる」 is handled by the router before any dialog.

Answers live in ``ConversationState.slots`` (JSON), so a dialog survives a
restart or continues on another instance. There are no ``if step == ...``
chains: which question comes next follows from the answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from handlers.base import BACK, CANCEL, Answers, Context, Form, Slot
from handlers.messages import Choice, Reply
from handlers.parsers import UNKNOWN, Invalid, Noted
from nlp.normalize import fold
from nlp.text import Text


def unnoted(value: Any) -> tuple[Any, str | None]:
    return (value.value, value.note) if isinstance(value, Noted) else (value, None)


# --- JSON codec for answers -------------------------------------------------


def encode(value: Any) -> Any:
    if value is UNKNOWN:
        return {"unknown": True}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, dict) and value.get("unknown") is True:
        return UNKNOWN
    if isinstance(value, dict) and "date" in value:
        return date.fromisoformat(value["date"])
    return value


def answers_of(ctx: Context) -> dict[str, Any]:
    return {k: decode(v) for k, v in ctx.state.slots.items()}


# --- the engine ---------------------------------------------------------------


def next_slot(form: Form, answers: Answers) -> Slot | None:
    for slot in form.slots:
        if slot.name not in answers and slot.ask_if(answers):
            return slot
    return None


# Where a form with details keeps its last answers (in the user's profile, deleted with their data).
LAST = "last_dialog"
DETAILS = Choice("くわしく", "details")
FIX = Choice("答えを直す", "fix")


def relevant(form: Form, answers: Answers) -> dict[str, Any]:
    """The answers that still count: a slot whose ``ask_if`` no longer holds (after an earlier
    answer was changed) is dropped, in form order; answers that are not slots (prefills) stay."""
    names = {s.name for s in form.slots}
    kept = {k: v for k, v in answers.items() if k not in names}
    for slot in form.slots:
        if slot.name in answers and slot.ask_if(kept):
            kept[slot.name] = answers[slot.name]
    return kept


def ask(form: Form, ctx: Context, prefix: str | None = None, options: tuple[Choice, ...] = ()) -> list[Reply]:
    """Ask the pending question (or finish when nothing is pending); ``options`` go before its buttons."""
    answers = answers_of(ctx)
    slot = next_slot(form, answers)
    if slot is None:
        answers = relevant(form, answers)
        replies = form.finish(answers, ctx)
        if form.details is not None and replies:
            ctx.state.profile[LAST] = {"form": form.name, "slots": {k: encode(v) for k, v in answers.items()}}
            last = replies[-1]
            replies[-1] = replace(last, choices=(DETAILS, FIX) + last.choices)
        if ctx.state.dialog == form.name:  # finish may have started another dialog
            end(ctx)
        return ([Reply(prefix)] if prefix else []) + replies
    text = slot.question(answers, ctx)
    if prefix:
        text = f"{prefix}\n\n{text}"
    extra = (BACK, CANCEL) if ctx.state.history else (CANCEL,)
    return [Reply(text, choices=options + slot.choices + extra, expecting=slot.expecting or slot.name, kind="question")]


def start(form: Form, ctx: Context) -> list[Reply]:
    ctx.state.profile.pop(LAST, None)
    ctx.state.dialog = form.name
    ctx.state.slots = {k: encode(v) for k, v in form.prefill(ctx).items()}
    ctx.state.history = []
    note = form.situation(ctx)
    return [Reply(form.intro + (f"\n{note}" if note else ""), kind="intro")] + ask(form, ctx)


def end(ctx: Context) -> None:
    ctx.state.dialog = None
    ctx.state.slots = {}
    ctx.state.history = []


def back(form: Form, ctx: Context) -> list[Reply]:
    """Forget the last answer and ask that question again."""
    if not ctx.state.history:
        return ask(form, ctx, prefix="これが最初の質問です。")
    last = ctx.state.history.pop()
    ctx.state.slots.pop(last, None)
    # Answers given after `last` that depended on it are gone already (history is a stack);
    # slots only implied by it (ask_if) are asked again as needed.
    return ask(form, ctx, prefix="ひとつ前の質問に戻ります。")


def pending(form: Form, ctx: Context) -> Slot | None:
    return next_slot(form, answers_of(ctx))


def answer(form: Form, ctx: Context, said: Text) -> list[Reply] | Invalid:
    """Feed one answer (what the user typed or clicked) to the pending slot.

    Returns the next replies, or the parser's ``Invalid`` (untouched state) so
    that the caller can check whether the user asked a question instead.
    """
    slot = pending(form, ctx)
    if slot is None:
        return ask(form, ctx)
    text = picked(slot, said)
    value, note = unnoted(slot.parse(text, ctx))
    if isinstance(value, Invalid) and slot.amends is not None:
        corrected, _ = unnoted(form.slot(slot.amends).parse(text, ctx))
        if not isinstance(corrected, Invalid) and corrected is not UNKNOWN:
            ctx.state.slots[slot.amends] = encode(corrected)
            return ask(form, ctx, prefix="わかりました。直した内容で確認します。")
    if isinstance(value, Invalid):
        return value
    if value is UNKNOWN and not slot.allow_unknown:
        return ask(form, ctx, prefix=slot.unknown_help or "ここは必要な情報です。")
    prefix = slot.unknown_help if value is UNKNOWN else note
    ctx.state.slots[slot.name] = encode(value)
    ctx.state.history.append(slot.name)
    if value is False and slot.reset_on_no:
        for name in slot.reset_on_no + (slot.name,):
            ctx.state.slots.pop(name, None)
            if name in ctx.state.history:
                ctx.state.history.remove(name)
    return ask(form, ctx, prefix=prefix)


def reask(form: Form, ctx: Context, invalid: Invalid) -> list[Reply]:
    """Ask the pending question again after input it could not read, with the parser's hint and options."""
    return ask(form, ctx, prefix=invalid.hint, options=tuple(Choice(label, value) for label, value in invalid.options))


def picked(slot: Slot, said: Text) -> Text:
    """A button's label typed instead of tapped is that button (「仕事が忙しかった」 → its value)."""
    typed = said.folded
    for choice in slot.choices:
        if typed and typed == fold(choice.label):
            return Text(choice.value)
    return said


# --- after a result: details, changing one answer --------------------------------


def last_answers(ctx: Context) -> tuple[Form, dict[str, Any]] | None:
    """The form and answers of the last result, if the user may still change them."""
    last = ctx.state.profile.get(LAST)
    if not isinstance(last, dict) or last.get("form") not in ctx.forms:
        return None
    return ctx.forms[last["form"]], {k: decode(v) for k, v in (last.get("slots") or {}).items()}


def show_value(slot: Slot, value: Any) -> str:
    """An answer as the user would say it back: はい, わからない, 70,000円, 2027年3月31日."""
    if value is UNKNOWN:
        return "わからない"
    if value is True:
        return "はい"
    if value is False:
        return "いいえ"
    if isinstance(value, date):
        return f"{value.year}年{value.month}月{value.day}日"
    for choice in slot.choices:
        if str(value) == choice.value:
            return choice.label
    if isinstance(value, int):
        return f"{value:,}{slot.unit}"
    if isinstance(value, list):
        return "・".join(f"{v:,}{slot.unit}" if isinstance(v, int) else str(v) for v in value) or "なし"
    return str(value)


def offer_fix(ctx: Context) -> list[Reply]:
    """「間違えた」 after a result: one button per answer, to change just that one."""
    found = last_answers(ctx)
    if found is None:
        return []
    form, answers = found
    choices = tuple(
        Choice(f"{slot.label or slot.name}：{show_value(slot, answers[slot.name])}"[:20], f"fix:{slot.name}")
        for slot in form.slots
        if slot.name in answers
    )
    return [
        Reply(
            "どの答えを直しますか？下から選んでください。ほかの答えはそのままで、結果を計算し直します。",
            choices=choices + (CANCEL,),
            kind="fix",
        )
    ]


def reopen(ctx: Context, slot_name: str) -> list[Reply]:
    """Open the last form again with every answer but ``slot_name``, which is asked again."""
    found = last_answers(ctx)
    if found is None:
        return []
    form, answers = found
    answers.pop(slot_name, None)
    ctx.state.dialog = form.name
    ctx.state.slots = {k: encode(v) for k, v in answers.items()}
    ctx.state.history = [s.name for s in form.slots if s.name in answers]
    return ask(form, ctx, prefix="わかりました。その答えだけ、もう一度教えてください。")


# 「ちがう、3割じゃなくて1割だった」「さっきの7万じゃなくて5万」: an earlier answer corrected in a sentence.
_CORRECTION = re.compile(
    r"^(?:(?:ちがう|違う|ちがいます|違います|ちがった|違った|間違えた|まちがえた|間違えました|まちがえました|訂正|やっぱり|すみません)"
    r"[、,。.!！\s]*)*(?:さっきの|先ほどの|前の)?(?P<old>.+?)(?:じゃなくて|ではなくて|じゃなく|ではなく|でなく)[、,\s]*"
    r"(?P<new>.+?)(?:だった|でした|です|だ|に直して|になおして|にして|が正しい|が正解)?(?:ください|下さい)?[。.!！]*$"
)


def reads_as_correction(said: Text) -> bool:
    return _CORRECTION.match(said.raw.strip()) is not None


def correction(form: Form, ctx: Context, said: Text, answers: Mapping[str, Any]) -> tuple[Slot, Any] | None:
    """The answer a sentence corrects, and its new value: the slot (answered before) whose stored
    answer the sentence names as wrong, else the latest answered slot that reads both halves."""
    found = _CORRECTION.match(said.raw.strip())
    if found is None:
        return None
    old, new = Text(found.group("old")), Text(found.group("new"))
    readable: list[tuple[Slot, Any]] = []
    for slot in reversed([s for s in form.slots if s.name in answers]):
        value, _ = unnoted(slot.parse(new, ctx))
        if isinstance(value, Invalid) or value is UNKNOWN:
            continue
        was, _ = unnoted(slot.parse(old, ctx))
        if not isinstance(was, Invalid) and was == answers[slot.name]:
            return slot, value
        if not isinstance(was, Invalid):
            readable.append((slot, value))
    return readable[0] if readable else None


def correct(form: Form, ctx: Context, said: Text) -> list[Reply] | None:
    """Change the answer a sentence corrects (``correction``) and go on from there; None when the
    sentence corrects none of this dialog's answers."""
    found = correction(form, ctx, said, answers_of(ctx))
    if found is None:
        return None
    slot, value = found
    ctx.state.slots[slot.name] = encode(value)
    if slot.name not in ctx.state.history:
        ctx.state.history.append(slot.name)
    return ask(
        form, ctx, prefix=f"わかりました。「{slot.label or slot.name}」を「{show_value(slot, value)}」に直しました。"
    )


def correct_result(ctx: Context, said: Text) -> list[Reply] | None:
    """After a result: the corrected answer changed, the result computed again; None as ``correct``."""
    found = last_answers(ctx)
    if found is None:
        return None
    form, answers = found
    corrected = correction(form, ctx, said, answers)
    if corrected is None:
        return None
    slot, value = corrected
    answers[slot.name] = value
    ctx.state.dialog = form.name
    ctx.state.slots = {k: encode(v) for k, v in answers.items()}
    ctx.state.history = [s.name for s in form.slots if s.name in answers]
    return ask(
        form,
        ctx,
        prefix=f"わかりました。「{slot.label or slot.name}」を「{show_value(slot, value)}」に直して、計算し直します。",
    )


def details(ctx: Context) -> list[Reply]:
    """The full working behind the last result (its 「くわしく」 button)."""
    found = last_answers(ctx)
    if found is None or found[0].details is None:
        return []
    form, answers = found
    return form.details(answers, ctx)  # type: ignore[misc]

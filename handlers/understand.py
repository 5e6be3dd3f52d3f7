"""One understanding of what people type: requests for the bot's actions, as data.

The actions of ``knowledge/actions.yaml`` (start a calculator, register, list or stop reminders,
delete my data, find my office, menu, cancel, start over) are recognised the way topics are: a
whole message that is one of an action's commands or phrasings is that action at once (in any
state, even mid-dialog); anything else goes to the matcher, which ranks actions, topics and the
services next door together (``handlers.faq.consult``). A clicked button carries the action's
``does`` value. This module turns an action into what it does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from handlers.messages import Choice, IncomingMessage, Reply
from nlp.matcher import Match
from nlp.normalize import fold, strip_fillers
from handlers import dialog, reminders, system
from handlers.base import Context, text_of
from knowledge import KnowledgeBase
from knowledge.models import Action

ACTION_PREFIX = "action:"


def _key(text: str) -> str:
    return strip_fillers(fold(text))


@dataclass(frozen=True)
class _Index:
    by_phrase: dict[str, Action]
    by_value: dict[str, Action]
    by_id: dict[str, Action]
    offered: dict[str, tuple[Action, ...]]
    # Folded once here, not on every message.
    requesting: tuple[str, ...]
    personal: tuple[str, ...]
    cues: dict[str, tuple[str, ...]]


_INDEXES: dict[int, _Index] = {}


def _index(kb: KnowledgeBase) -> _Index:
    idx = _INDEXES.get(id(kb))
    if idx is None:
        by_phrase: dict[str, Action] = {}
        offered: dict[str, list[Action]] = {}
        for action in kb.actions:
            for phrase in (*action.commands, *action.phrasings, action.label):
                by_phrase.setdefault(_key(phrase), action)
            for tid in action.offered_by:
                offered.setdefault(tid, []).append(action)
        by_value = {a.does: a for a in kb.actions}
        idx = _INDEXES[id(kb)] = _Index(
            by_phrase, by_value, {a.id: a for a in kb.actions}, {k: tuple(v) for k, v in offered.items()},
            requesting=tuple(fold(r) for r in kb.requesting), personal=tuple(fold(p) for p in kb.personal),
            cues={a.id: tuple(fold(c) for c in a.cues) for a in kb.actions},
        )
    return idx


def action(kb: KnowledgeBase, action_id: str) -> Action:
    return _index(kb).by_id[action_id]


def clicked(msg: IncomingMessage, kb: KnowledgeBase) -> Action | None:
    """The action a clicked button (or a typed button value) asks for."""
    return _index(kb).by_value.get(text_of(msg).strip())


def said(msg: IncomingMessage, kb: KnowledgeBase) -> Action | None:
    """The action a whole typed message is (one of its commands or phrasings, however spelt)."""
    if msg.text is None:
        return None
    key = _key(msg.text)
    return _index(kb).by_phrase.get(key) if key else None


def requests(kb: KnowledgeBase, text: str) -> bool:
    """Whether a message asks the bot to do something (計算して, 見せて …: actions.yaml ``requesting``)."""
    folded = fold(text)
    return any(r in folded for r in _index(kb).requesting)


_FIGURE = re.compile(r"[0-9０-９一二三四五六七八九十]+ *(?:月|日|円|万|か月|ヶ月)")


_ASKS = re.compile(r"(?:[?？]|か|かな|の|っけ|ますか|ですか)[。.!！\s]*$|いつ|どこ|何|なに|どう|どれ|誰|だれ")


def asks(text: str) -> bool:
    """Whether a message is put as a question (「いつ？」「…ですか」), rather than as a request or a statement."""
    return bool(_ASKS.search(text.strip()))


def personal(kb: KnowledgeBase, text: str) -> bool:
    """Whether a question is about one's own case (「自分の場合は」, a date or an amount given)."""
    folded = fold(text)
    return bool(_FIGURE.search(text)) or any(p in folded for p in _index(kb).personal)


def cued(kb: KnowledgeBase, text: str, ranked: list[Match], top: Match, margin: float) -> Match:
    """Among actions ranked within ``margin`` of ``top``, the one whose cue words the text has, else ``top``."""
    folded = fold(text)
    for m in [top, *ranked]:  # the first action keeps its place when its own cues are there
        if not m.id.startswith(ACTION_PREFIX) or top.confidence - m.confidence >= margin:
            continue
        if any(c in folded for c in _index(kb).cues[m.id.removeprefix(ACTION_PREFIX)]):
            return m
    return top


def offers(kb: KnowledgeBase, topic_id: str) -> tuple[Action, ...]:
    return _index(kb).offered.get(topic_id, ())


def offered_by(kb: KnowledgeBase, topic_id: str) -> tuple[Choice, ...]:
    """Buttons for the actions a topic's answer leads to (the renewal topic: register a reminder)."""
    return tuple(button(a) for a in offers(kb, topic_id))


def button(a: Action) -> Choice:
    return Choice(a.label, a.does)


def perform(a: Action, msg: IncomingMessage, ctx: Context) -> list[Reply]:
    """Do what an action does."""
    does = a.does
    if does.startswith("start:"):
        form = ctx.forms.get(does.removeprefix("start:"))
        if form is None:
            return system.menu(msg, ctx)
        if ctx.state.dialog == form.name:
            return dialog.ask(form, ctx, prefix="いま、その計算の途中です。続きからお答えください（「最初から」でやり直せます）。")
        return dialog.start(form, ctx)
    if does == "restart":
        form = restart_form(ctx)
        if form is None:
            return [Reply("やり直す計算や手続きは、いまはありません。", kind="restart-none")] + system.menu(msg, ctx)
        return [Reply("最初からやり直します。", kind="restart")] + dialog.start(form, ctx)
    handler = {
        "menu": system.menu,
        "cancel": system.cancel,
        "office": system.start_office,
        "delete": system.start_delete,
        "reminder-list": reminders.list_reminders,
        "reminder-stop": reminders.stop_reminders,
    }[does]
    return handler(msg, ctx)


def restart_form(ctx: Context) -> dialog.Form | None:
    """The dialog 「最初から」 starts again: the open one, else the one that just gave a result."""
    form = ctx.forms.get(ctx.state.dialog or "")
    if form is not None:
        return form
    last = dialog.last_answers(ctx)
    return last[0] if last else None

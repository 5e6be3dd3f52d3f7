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

from handlers import cost_log, dialog, reminders, system
from handlers.base import Context, text_of
from handlers.messages import Choice, IncomingMessage, Reply
from knowledge import KnowledgeBase
from knowledge.models import Action
from nlp.matcher import KANA_QUESTION, Match
from nlp.normalize import fold, nfkc, strip_fillers
from nlp.text import Text, kana_share, reading

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
    requesting_readings: tuple[str, ...]  # 「けいさんして」 typed in kana
    personal: tuple[str, ...]
    cues: dict[str, tuple[str, ...]]
    cue_readings: dict[str, tuple[str, ...]]  # for messages typed in kana
    needs: dict[str, tuple[str, ...]]
    need_readings: dict[str, tuple[str, ...]]
    unless: dict[str, tuple[re.Pattern[str], ...]]


_INDEXES: dict[int, _Index] = {}


def _index(kb: KnowledgeBase) -> _Index:
    idx = _INDEXES.get(id(kb))
    if idx is None:
        by_phrase, offered = _phrases_and_offers(kb)
        by_value = {a.does: a for a in kb.actions}
        idx = _INDEXES[id(kb)] = _Index(
            by_phrase,
            by_value,
            {a.id: a for a in kb.actions},
            {k: tuple(v) for k, v in offered.items()},
            requesting=tuple(fold(r) for r in kb.requesting),
            requesting_readings=tuple(reading(r) for r in kb.requesting),
            personal=tuple(fold(p) for p in kb.personal),
            cues={a.id: tuple(fold(c) for c in a.cues) for a in kb.actions},
            cue_readings={a.id: tuple(reading(c) for c in a.cues) for a in kb.actions},
            needs={a.id: tuple(fold(c) for c in a.needs) for a in kb.actions},
            need_readings={a.id: tuple(reading(c) for c in a.needs) for a in kb.actions},
            unless={a.id: tuple(re.compile(p) for p in a.unless) for a in kb.actions},
        )
    return idx


def _phrases_and_offers(kb: KnowledgeBase) -> tuple[dict[str, Action], dict[str, list[Action]]]:
    """Each action by every way it is typed (first action wins), and the actions each topic offers."""
    by_phrase: dict[str, Action] = {}
    offered: dict[str, list[Action]] = {}
    for action in kb.actions:
        for phrase in (*action.commands, *action.phrasings, action.label):
            by_phrase.setdefault(_key(phrase), action)
        for tid in action.offered_by:
            offered.setdefault(tid, []).append(action)
    return by_phrase, offered


def action(kb: KnowledgeBase, action_id: str) -> Action:
    return _index(kb).by_id[action_id]


def clicked(msg: IncomingMessage, kb: KnowledgeBase) -> Action | None:
    """The action a clicked button (or a typed button value) asks for."""
    return _index(kb).by_value.get(text_of(msg).strip())


def said(msg: IncomingMessage, ctx: Context) -> Action | None:
    """The action a whole typed message is (one of its commands or phrasings, however spelt)."""
    if msg.text is None:
        return None
    key = ctx.text.plain  # the typed text: a message has text or a choice, never both
    return _index(ctx.kb).by_phrase.get(key) if key else None


# After a request word that ends in て (消して), what makes it a request rather than a state
# (「登録してるかどうか」): the end of a clause, or a polite request form.
_REQUEST_END = re.compile(r"$|[。．.！!？?、,\s]|く[だれ]|ほし|もら|いただ|頂|お願|おねが|ちょうだい|[よねなー〜]")


def requests(kb: KnowledgeBase, text: Text) -> bool:
    """Whether a message asks the bot to do something (計算して, 見せて …: actions.yaml ``requesting``)."""
    idx = _index(kb)
    if _requests_in(text.folded, idx.requesting) or _requests_in(text.reading, idx.requesting_readings):
        return True
    # Folding drops the comma that ends a request clause: 「終わりを覚えといて、忘れっぽいんで」.
    clauses = [c for c in _CLAUSE.split(text.raw) if c]
    return len(clauses) > 1 and any(_requests_in(fold(c), idx.requesting) for c in clauses)


_CLAUSE = re.compile(r"[、,，。．.！!？?\s]+")


# Request words that ask to be shown or told something: 「上限額の表を見せて」 asks for the table (a
# topic), not for the calculator; a list the bot keeps (お知らせ, 医療費の記録) is still shown by them.
_SHOWING = (
    "見せて",
    "みせて",
    "見て",
    "みて",
    "教えてくれる",
    "おしえてくれる",
    "教えて",
    "おしえて",
    "見たい",
    "みたい",
)


def only_shown(kb: KnowledgeBase, text: Text) -> bool:
    """Whether a message's request words are all words of showing or telling (「表を見せて」)."""
    idx = _index(kb)
    others = tuple(r for r in idx.requesting if r not in _SHOWING)
    readings = tuple(r for r, w in zip(idx.requesting_readings, idx.requesting) if w not in _SHOWING)
    return not (_requests_in(text.folded, others) or _requests_in(text.reading, readings))


def _requests_in(haystack: str, words: tuple[str, ...]) -> bool:
    for r in words:
        start = haystack.find(r)
        while start >= 0:
            if not r.endswith("て") or _REQUEST_END.match(haystack, start + len(r)):
                return True
            start = haystack.find(r, start + 1)
    return False


# A date or an amount of one's own; one asked about as a term (「33,330円っていうのは」) is not.
_FIGURE = re.compile(r"[0-9０-９一二三四五六七八九十]+ *(?:月|日|円|万|か月|ヶ月)(?!って|とは|という|というの)")


_ASKS = re.compile(r"(?:[?？]|か|かな|の|っけ|ますか|ですか)[。.!！\s]*$|いつ|どこ|何|なに|どう|どれ|誰|だれ")


def asks(text: Text) -> bool:
    """Whether a message is put as a question (「いつ？」「…ですか」), rather than as a request or a statement."""
    return bool(_ASKS.search(text.raw.strip()))


# A question that asks for a fact (when, where, what, which of two), not whether the bot can do something.
_FACT = re.compile(
    r"いつ|どこ|何|なに|なん[での]|どう|どの|どれ|どっち|どちら|誰|だれ|なぜ|どんな|とは|それとも|"
    r"って[?？]?$"
)


_SENTENCES = re.compile(r"[。．.！!？?\n]+")


def asks_fact(text: Text, last: bool = False) -> bool:
    """Whether a message asks for a fact (「更新の時期っていつ？」), not for something to be done.

    With ``last``, only its last sentence counts: 「申請はどこ？近くの窓口教えて」 ends with a request.
    """
    sentences = [p for p in _SENTENCES.split(text.raw) if p.strip()] if last else [text.raw]
    return bool(sentences) and bool(_FACT.search(sentences[-1]))


def _spelled(
    text: Text, folded: dict[str, tuple[str, ...]], read: dict[str, tuple[str, ...]]
) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The text to look for an action's words in, and those words: as read aloud for a message
    typed in kana (「りまいんだー　とうろく　したい」), else as folded."""
    if kana_share(text.folded) >= KANA_QUESTION:
        return text.reading, read
    return text.folded, folded


def _cues(kb: KnowledgeBase, text: Text) -> tuple[str, dict[str, tuple[str, ...]]]:
    idx = _index(kb)
    return _spelled(text, idx.cues, idx.cue_readings)


def applicable(kb: KnowledgeBase, text: Text, ranked: list[Match]) -> list[Match]:
    """``ranked`` without the actions whose ``needs`` words the message lacks, or which one of their
    ``unless`` patterns says is about something else.

    Actions that share their verbs with others (stop the cost-log nudge, stop reminders) are told
    apart by what they act on: 「母の分のお知らせは止めて」 says nothing of 医療費. And the menu is the
    bot's own use: 「バス乗車証の使い方を教えて」 asks how to use something else.
    """
    haystack, needs = _needs(kb, text)
    unless = _index(kb).unless

    def fits(action_id: str) -> bool:
        words = needs[action_id]
        if words and not any(w in haystack for w in words):
            return False
        typed = nfkc(text.raw)
        return not any(p.search(typed) for p in unless[action_id])

    return [m for m in ranked if not m.id.startswith(ACTION_PREFIX) or fits(m.id.removeprefix(ACTION_PREFIX))]


def _needs(kb: KnowledgeBase, text: Text) -> tuple[str, dict[str, tuple[str, ...]]]:
    idx = _index(kb)
    return _spelled(text, idx.needs, idx.need_readings)


def has_cue(kb: KnowledgeBase, text: Text, action_id: str) -> bool:
    """Whether a message has one of the words that point to this action (its ``cues``)."""
    haystack, cues = _cues(kb, text)
    return any(c in haystack for c in cues[action_id])


# A statement before the question tells the user's own situation: 「…続いてます。特例使えますか」,
# 「…あるんだけど、…もらえる？」 (the statement itself has no question mark).
_STORY = re.compile(r"^[^?？]{4,}?(?:けど|けれど|ので|んですが|のですが|んだが|。)")


def personal(kb: KnowledgeBase, text: Text) -> bool:
    """Whether a question is about one's own case (「自分の場合は」, a date or an amount given, a story)."""
    return bool(_FIGURE.search(text.raw) or _STORY.search(text.raw.strip())) or any(
        p in text.folded for p in _index(kb).personal
    )


def cued(kb: KnowledgeBase, text: Text, ranked: list[Match], top: Match, margin: float) -> Match:
    """Among actions ranked within ``margin`` of ``top``, the one whose cue word comes last in the text.

    Japanese puts what is asked at the end (「登録したリマインダーを削除したい」 is a removal, not a
    list), so the latest cue wins, and at the same place the longest. A cue that two of those actions
    share tells nothing between them (計算 of both calculators in 「いつから適用か計算たのむ」, やめ of
    cancel and of stopping reminders in 「連絡もう来なくていい、やめといて」): two actions are compared
    on the cues one has and the other has not. Without any cue, ``top`` stays.
    """
    haystack, cues = _cues(kb, text)
    near = [
        m
        for m in dict.fromkeys([top, *ranked])
        if m.id.startswith(ACTION_PREFIX) and top.confidence - m.confidence < margin
    ]
    found = {m.id: {c for c in cues[m.id.removeprefix(ACTION_PREFIX)] if c in haystack} for m in near}

    def at(words: set[str]) -> tuple[int, int]:
        return max(((haystack.rfind(c) + len(c), len(c)) for c in words), default=(0, 0))

    best = top
    for m in near:  # on a tie the better ranked action keeps its place
        mine, theirs = found[m.id], found.get(best.id, set())
        if at(mine - theirs) > at(theirs - mine):
            best = m
    return best


# Without a request word, an action's cue alone (「場所」) outweighs a topic only this close: 「申請する
# 場所おしえて」 is the topic's question (the office comes with its answer) when the topic is far ahead.
CUE_ONLY_MARGIN = 15.0
# Within this many points of the topic, a question about one's own case starts the calculator.
PERSONAL_MARGIN = 8.0


def wants(kb: KnowledgeBase, text: Text, action_id: str, topic_ids: tuple[str, ...], behind: float) -> bool:
    """Whether a message whose best match is a topic asks for a close action instead.

    It does when it asks the bot to do something (計算して, 見せて); when it speaks of the
    user's own case and the action is a calculator nearly as close (「診断されたのが3月。いつから
    対象？」); or when it is no question of fact, has the action's own words, and the topic offers
    that action (「保健福祉事務所の場所を知りたい」)
    — the topics are those as close to the message as the action.
    """
    if requests(kb, text) and not (action(kb, action_id).calculates and only_shown(kb, text)):
        return True
    if asks(text) and personal(kb, text) and action(kb, action_id).calculates and behind < PERSONAL_MARGIN:
        return True
    offered = {a.id for t in topic_ids for a in offers(kb, t)}
    return (
        behind < CUE_ONLY_MARGIN
        and not asks_fact(text, last=True)
        and has_cue(kb, text, action_id)
        and action_id in offered
    )


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
            return dialog.ask(
                form, ctx, prefix="いま、その計算の途中です。続きからお答えください（「最初から」でやり直せます）。"
            )
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
        "costlog-show": cost_log.show,
        "costlog-stop": cost_log.stop_nudge,
    }[does]
    return handler(msg, ctx)


def restart_form(ctx: Context) -> dialog.Form | None:
    """The dialog 「最初から」 starts again: the open one, else the one that just gave a result."""
    form = ctx.forms.get(ctx.state.dialog or "")
    if form is not None:
        return form
    last = dialog.last_answers(ctx)
    return last[0] if last else None

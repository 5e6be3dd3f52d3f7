"""The conversation so far: a follow-up is read in the light of the topic just answered.

People ask the way they talk: after 「レスパイト入院ってなに？」 comes 「群馬でもやってる？」, after
「高額かつ長期ってなに」 comes 「私は当てはまる？」. Each of those, read alone, names no topic. So the
bot keeps, for a short while (``CONTEXT_MINUTES``), the id of the topic it last answered — only the
id and the time, never what the user typed — and reads a message that leans on it (``leans_on``)
a second time with the topic's name in front of it (「レスパイト入院 群馬でもやってる？」).

The message alone decides whenever it can stand alone: a follow-up that names a topic of its own
(「じゃあ受給者証をなくしたときは？」) starts that topic, and one that the context does not make
answerable is treated like any other message. Context never overrides safety, a request for one
of the bot's actions, or a service next door.

Two questions in one message (「なくしたんだけど、あと更新はいつ？」) are split at the sentence or
at 「あと」「それと」; the first is answered and the second, when it is a different topic the bot
knows, is offered as the reply's first button, and the reply says so (``second_question``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cached_property

from handlers import understand
from handlers.base import Context, topic_choice
from handlers.faq import ANSWER_THRESHOLD, Consultation, consult, render_topic
from handlers.messages import Choice
from handlers.safety import mentions_domain, redirect_for
from knowledge import KnowledgeBase
from nlp.matcher import Matcher
from nlp.text import Text, as_text

# How long the topic just answered frames the next message. Long enough for a reply read slowly
# on a phone, short enough that tomorrow's question starts afresh.
CONTEXT_MINUTES = 20

# A follow-up that leans on what came before: a pointing word (それ, そこ, その), a bare 「〜は？」,
# or a question about one's own case or place that names no subject (私は当てはまる？ 群馬でも？).
_POINTING = re.compile(
    r"^(?:じゃあ|では|なら|それなら|ちなみに|で、|あと)?"
    r"(?:それ|そこ|その|そっち|あれ|これ|この|そちら|こちら)"
)
_POINTING_LAST = re.compile(r"(?:それ|そこ|あれ|これ)[?？。!！]*$")  # 「何に使うのそれ」
# 「マイナンバーはそこに書くの？」: a pointing word inside the sentence, with its particle.
_POINTING_INSIDE = re.compile(r"(?:そこ|あそこ)(?:に|で|へ|から|まで|は|って)|(?:それ|あれ)(?:を|に|も|って|は)")
# 「期限すぎちゃったら？」「入院したときは？」: a case of the topic just answered.
_CONDITIONAL = re.compile(r"(?:たら|なら|場合は|ときは|時は)[?？]?$")
# 「それもう一回」: the last answer again.
_AGAIN = re.compile(r"もう一回|もういっかい|もう一度|もういちど|もう1回|もう１回")
_QUESTION_END = re.compile(r"(?:[?？]|の|か|かな|っけ|ですか|ますか)$|だれ|誰|何|なに|いつ|どこ|いくら")
_BARE = re.compile(r"^.{1,8}(?:は|って|も)[?？]?$")
_OWN_CASE = re.compile(
    r"(?:私|わたし|自分|うち|母|父|夫|妻|息子|娘|子ども|こども|子供)(?:は|の場合|も)|"
    r"群馬でも|群馬県でも|当てはま|あてはま|対象になる|使える|もらえる|いつまで|いつから|どこで|どこに|いくら|費用は|書類は|"
    r"期限は|条件は|手続きは|場合は"
)
# 「マイナンバー入ってるのでもいい？」「軽いとだめならほかに方法ないの？」: whether a variant of what was
# just said will do, or what else there is.
_ELSE = re.compile(
    r"でもいい|でも大丈夫|でもだいじょうぶ|でも平気|でもok|でもかまわ|でも構わ|"
    r"ほかに方法|他に方法|ほかの方法|他の方法|別の方法|ほかに手|他に手|ほかの手"
)
# A follow-up that asks whether the topic just answered applies to the user.
_WHETHER = re.compile(r"当てはま|あてはま|対象にな|たいしょうにな|使える|つかえる|該当|がいとう|受けられ|もらえ")
# A pointing follow-up that alone matches another topic this well asks that neighbouring question
# (「それってどうやって区分決めるの」 after the table: 68; 「それってどこに出すの」 after 再交付: 51, the same topic).
NEW_QUESTION = 60.0
# A follow-up whose own best topic leads the topic just answered by less than this is about the latter.
CONTEXT_TIE = 10.0
# A message that matches a topic of its own this well is that topic, whatever came before.
STANDS_ALONE = 80.0
# What opens a second question: 「あと」「それと」 … (dropped before it is read on its own).
_CONNECTIVE = re.compile(r"^(?:あと|それと|それから|ついでに|もうひとつ|もう一つ|また|で)[、,\s]*")
# Where a message asks a second question: after a sentence, at 「あと」「それと」「それから」「ついでに」, or
# after 「…のかと、」 (「いくらになるのかと、食費はどうなるのか」).
_SECOND = re.compile(
    r"(?<=[。？?！!])\s*|[、,\s]+(?:あと|それと|それから|ついでに|もうひとつ|もう一つ)[、,\s]*|"
    r"(?<=けど)[、,\s]*(?:あと|それと)|(?<=のかと)[、,\s]*"
)


def leans_on(text: Text) -> bool:
    """Whether a message leans on what was said before it (see the module docstring)."""
    raw = text.raw.strip()
    short = len(raw) <= 20
    return bool(
        points(text)
        or _BARE.match(raw)
        or _OWN_CASE.search(raw if short else raw[:12])
        or (short and _CONDITIONAL.search(raw))
        or _AGAIN.search(raw)
        or _asks_else(text)
    )


def _asks_else(text: Text) -> bool:
    """Whether a message asks if something else will do (see ``_ELSE``)."""
    return bool(_ELSE.search(text.raw.strip().lower()))


def points(text: Text) -> bool:
    """Whether a message points back with a word (それ, そこ … at its start or its end)."""
    raw = text.raw.strip()
    return bool(_POINTING.search(raw) or _POINTING_LAST.search(raw) or _POINTING_INSIDE.search(raw))


def recent_topic(ctx: Context) -> str | None:
    """The topic answered within the last ``CONTEXT_MINUTES``, if any (and if it still exists)."""
    kept = ctx.state.profile.get("context")
    if not isinstance(kept, dict) or kept.get("topic") not in ctx.kb.topics:
        return None
    try:
        at = datetime.fromisoformat(str(kept.get("at")))
    except ValueError:
        return None
    if at.tzinfo is None or not timedelta(0) <= ctx.now - at <= timedelta(minutes=CONTEXT_MINUTES):
        return None
    return str(kept["topic"])


def remember(ctx: Context, topic: str | None) -> None:
    """Keep the topic just answered (or forget the context, with None)."""
    if topic is None:
        ctx.state.profile.pop("context", None)
    else:
        ctx.state.profile["context"] = {"topic": topic, "at": ctx.now.isoformat()}


def _name(ctx: Context, topic: str) -> str:
    """What the topic is called in a sentence: its button label without the note in brackets."""
    label = ctx.kb.topics[topic].label
    return re.sub(r"[（(].*?[）)]", "", label).removesuffix("とは").strip() or label


def read(ctx: Context, municipality: str | None) -> Consultation:
    """The consultation of this turn's message, with the conversation's context where it needs it."""
    alone = consult(ctx.kb, ctx.matcher, ctx.text, municipality)
    topic = recent_topic(ctx)
    if topic is None or _stands_alone(ctx, alone, topic):
        return alone
    turn = _Turn(ctx, alone, topic, _name(ctx, topic), municipality)
    for rule in CONTEXT_RULES:
        found = rule(turn)
        if found is not None:
            return found
    return alone


def _stands_alone(ctx: Context, alone: Consultation, topic: str) -> bool:
    """Whether the message is read alone, whatever topic came before it."""
    if alone.kind in ("emergency", "crisis", "medical", "office"):
        return True
    if alone.kind == "redirect" and (
        redirect_for(ctx.kb, ctx.text) is not None or not (points(ctx.text) or _asks_else(ctx.text))
    ):
        # A service next door named outright (「その病気で障害年金ってもらえる？」); one only ranked close
        # to a message that points back (「その先生ってどうやって探すの」) or asks what else there is
        # (「ほかに方法ないの？」) is read with the topic first.
        return True
    if not leans_on(ctx.text) and not (alone.kind == "fallback" and _short_question(ctx)):
        # A question of its own, answered or not: the context never guesses for it. A short question
        # that names no subject of this bot's (「だれが書くの」) and finds nothing alone leans on the topic.
        return True
    # 「じゃあ受給者証をなくしたときは？」: a topic of its own, unless the topic just answered is nearly as close.
    return (
        alone.kind == "answer"
        and alone.topic != topic
        and alone.score >= STANDS_ALONE
        and not _close_behind(alone, topic)
    )


def _close_behind(alone: Consultation, topic: str) -> bool:
    """Whether the topic just answered ranks within ``CONTEXT_TIE`` of the message's own best topic:
    the conversation then breaks the tie (「マイナンバーはそこに書くの？」 after 世帯状況調書)."""
    return any(m.id == topic and alone.score - m.confidence < CONTEXT_TIE for m in alone.candidates)


class _Turn:
    """A message that leans on the topic just answered: what the context rules read."""

    def __init__(self, ctx: Context, alone: Consultation, topic: str, name: str, municipality: str | None) -> None:
        self.ctx, self.alone, self.topic, self.name, self.municipality = ctx, alone, topic, name, municipality

    @cached_property
    def framed(self) -> Consultation:
        """The message read again with the topic's name in front of it."""
        return consult(self.ctx.kb, self.ctx.matcher, Text(f"{self.name} {self.ctx.text.raw}"), self.municipality)

    @cached_property
    def asked(self) -> bool:
        return understand.requests(self.ctx.kb, self.ctx.text)

    def again(self, text: str, score: float) -> Consultation:
        """The topic's answer once more, after ``text``."""
        body, choices = render_topic(self.ctx.kb, self.topic, self.municipality)
        return Consultation(
            self.topic, score, text + body, choices=choices, kind="answer", municipality=self.municipality
        )

    def as_follow_up(self) -> str:
        return f"先ほどの「{self.name}」についてのお尋ねとしてお答えします。\n\n"


def _once_more(t: _Turn) -> Consultation | None:
    """「それもう一回」: the last answer again."""
    return t.again("もう一度お伝えします。\n\n", 100.0) if _AGAIN.search(t.ctx.text.raw) else None


def _offered_action(t: _Turn) -> Consultation | None:
    """An action the topic just answered leads to, asked for (更新 → 「じゃあ登録して」)."""
    offered = {a.id for a in understand.offers(t.ctx.kb, t.topic)}
    for c in (t.alone, t.framed):
        if (
            c.kind == "action"
            and c.action in offered
            and (t.asked or understand.has_cue(t.ctx.kb, t.ctx.text, c.action))
        ):
            return c
    return None


def _asked_action(t: _Turn) -> Consultation | None:
    """「私が当てはまるかチェックしてほしい」: an action asked for in so many words."""
    return t.alone if t.alone.kind == "action" and t.asked else None


def _own_conditions(t: _Turn) -> Consultation | None:
    """「私は当てはまるかな」: whether the topic just answered applies to the user."""
    raw = t.ctx.text.raw
    return _conditions(t) if _WHETHER.search(raw) and _OWN_CASE.search(raw[:12]) else None


def _where_done(t: _Turn) -> Consultation | None:
    """「それって更新はどこでするの？」 after 更新: where the procedure just answered is done (the
    prefecture's ``where_topic``, with the user's office when the municipality is known), not the same
    answer again. Only when the message names no other topic of its own."""
    where = t.ctx.kb.prefecture.where_topic
    if (
        where is None
        or t.topic == where
        or t.topic not in t.ctx.kb.prefecture.office_topics
        or not _WHERE.search(t.ctx.text.raw)
        or t.framed.topic not in (t.topic, where)
    ):
        return None
    body, choices = render_topic(t.ctx.kb, where, t.municipality)
    return Consultation(
        where,
        t.framed.score,
        f"先ほどの「{t.name}」の窓口についてお答えします。\n\n{body}",
        choices=choices,
        kind="answer",
        municipality=t.municipality,
    )


# A follow-up whose own best topic is one the topic just answered names as related is about that
# neighbour (「その先生ってどうやって探すの」 after 臨床調査個人票: the designated doctor), when the
# message alone reaches it this far, and read with the topic in front it is nearly as much about the
# neighbour as about the topic (within ``CONTEXT_TIE``).
RELATED_FLOOR = 35.0


def _related_neighbour(t: _Turn) -> Consultation | None:
    """A follow-up that asks about one of the topic's related topics: that topic, said so."""
    best = t.alone.candidates[0] if t.alone.candidates else None
    if (
        best is None
        or best.id == t.topic
        or best.id not in t.ctx.kb.topics[t.topic].related
        or best.confidence < RELATED_FLOOR
        or t.asked
        or not _close_behind(t.framed, best.id)
    ):
        return None
    body, choices = render_topic(t.ctx.kb, best.id, t.municipality)
    name = _name(t.ctx, best.id)
    return Consultation(
        best.id,
        best.confidence,
        f"先ほどの「{t.name}」に関連して、「{name}」についてお答えします。\n\n{body}",
        choices=choices,
        kind="answer",
        municipality=t.municipality,
    )


def _framed_answer(t: _Turn) -> Consultation | None:
    """The message read with the topic's name in front answers a topic: that answer, said so."""
    framed, alone = t.framed, t.alone
    if framed.kind != "answer" or framed.score < ANSWER_THRESHOLD:
        return None
    if (
        framed.topic == t.topic
        and alone.kind == "answer"
        and alone.topic != t.topic
        and alone.score >= NEW_QUESTION
        and not _close_behind(alone, t.topic)
    ):
        # 「それってどうやって区分決めるの」 after the table of caps: the neighbouring question it
        # names, not the same answer again.
        return alone
    return _with_office_first(t, replace(framed, text=t.as_follow_up() + framed.text))


# 「それって更新はどこでするの？」: where to do what was just answered.
_WHERE = re.compile(r"どこで|どこに|どこへ|どこの窓口|どこに出|どこまで持")


def _with_office_first(t: _Turn, c: Consultation) -> Consultation:
    """A follow-up that asks where to do what was just answered: the answer, with the office finder as
    its first button (the answer names the office itself once the municipality is known)."""
    if not _WHERE.search(t.ctx.text.raw) or c.topic not in t.ctx.kb.prefecture.office_topics:
        return c
    office = understand.button(understand.action(t.ctx.kb, "office"))
    return replace(c, choices=(office, *(ch for ch in c.choices if ch.value != office.value)))


def _whether(t: _Turn) -> Consultation | None:
    return _conditions(t) if _WHETHER.search(t.ctx.text.raw) else None


def _case_of_topic(t: _Turn) -> Consultation | None:
    """「期限すぎちゃったら？」 after 更新: a case of the topic, not a request for a calculator."""
    if t.alone.kind == "action" and t.framed.kind == "action":
        return t.again(t.as_follow_up(), t.framed.score)
    return None


# The context rules, in order: the first that gives a consultation wins; none, and the message is
# read alone.
CONTEXT_RULES: tuple[Callable[[_Turn], Consultation | None], ...] = (
    _once_more,
    _offered_action,
    _asked_action,
    _own_conditions,
    _where_done,
    _related_neighbour,
    _framed_answer,
    _whether,
    _case_of_topic,
)


def _short_question(ctx: Context) -> bool:
    raw = ctx.text.raw.strip()
    return len(raw) <= 20 and bool(_QUESTION_END.search(raw)) and not mentions_domain(ctx.kb, ctx.text)


def _conditions(t: _Turn) -> Consultation:
    """「私は当てはまる？」 after a scheme: its conditions, which the topic's answer states, not the check
    of another scheme whose words it shares (高額かつ長期 → not the 軽症高額 check)."""
    return t.again(f"「{t.name}」に当てはまるかどうかは、次の条件で決まります。\n\n", 100.0)


def second_question(
    kb: KnowledgeBase, matcher: Matcher, text: Text, first: Consultation, municipality: str | None = None
) -> Consultation:
    """``first`` with a second question of the same message offered as its first button, said so."""
    if first.kind != "answer":
        return first
    parts = [p for p in _SECOND.split(text.raw.strip()) if p and len(p.strip()) >= 4]
    if len(parts) < 2:
        return first
    head = consult(kb, matcher, Text(parts[0]), municipality)
    owns = head.topic == first.topic
    if not owns and _JOINED.search(text.raw) and head.kind == "answer" and head.score >= ANSWER_THRESHOLD:
        # The whole message was read as its second question, or as a blend of both: the first question
        # is answered first, and the second offered (「上限額いくらになるのかと、食費はどうなるのか知りたい」).
        first, owns = head, True
    for part in parts[1:] if owns else parts:
        choice = _offer(kb, matcher, Text(_CONNECTIVE.sub("", part.strip())), first.topic, municipality)
        if choice is None:
            continue
        note = f"\n\nもう一つのご質問（{choice.label}）へのお答えは、下の「{choice.label}」ボタンからご覧ください。"
        choices = (choice, *(c for c in first.choices if c.value != choice.value))
        return replace(first, text=first.text + note, choices=choices)
    return first


# Two questions joined in so many words (「…のかと、…」「…、あと…」), not a story told before a question.
# (あと before a quantity is "… more": 「あと何日で届く？」.)
_JOINED = re.compile(
    r"(?:^|[、,。？?！!\s])(?:あと|それと(?!も)|それから|ついでに|もうひとつ|もう一つ)"
    r"(?!何|なん|どれ|どの|いくら|少し|ちょっと|[0-9０-９一二三四五六七八九十])|のかと[、,]"
)


# A second question is offered as a button, not answered: a topic this close is worth the offer when
# the part alone is not sure enough to be answered (「あと申請はどこ」).
SECOND_THRESHOLD = 40.0


def _offer(
    kb: KnowledgeBase, matcher: Matcher, part: Text, first_topic: str | None, municipality: str | None
) -> Choice | None:
    """The button for a second question: its topic; an action it asks for; else the nearest topic of
    a question of fact (「窓口ってどこ」 asks where to apply, with the office in the answer)."""
    other = consult(kb, matcher, part, municipality)
    if other.kind == "answer" and other.topic is not None:
        return topic_choice(kb, other.topic) if other.topic != first_topic and other.score >= ANSWER_THRESHOLD else None
    best = other.candidates[0] if other.candidates else None
    if (
        other.kind in ("action", "fallback")
        and understand.asks_fact(part)
        and best is not None
        and best.id != first_topic
        and best.confidence >= SECOND_THRESHOLD
    ):
        return topic_choice(kb, best.id)
    if other.kind == "action" and other.action is not None:
        return understand.button(understand.action(kb, other.action))
    return None


def consult_message(
    kb: KnowledgeBase, matcher: Matcher, text: Text | str, municipality: str | None = None
) -> Consultation:
    """One message without a conversation before it (``nanbyo-bot ask`` and ``eval``): its consultation,
    with a second question offered as the chat offers it."""
    text = as_text(text)
    return second_question(kb, matcher, text, consult(kb, matcher, text, municipality), municipality)

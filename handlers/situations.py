"""Situations before procedures: a move, or a child as the patient.

The situation chooses the procedure, so it is read before the consultation: taken as a plain
question, 「高崎から前橋に引っ越して、受給者証もなくしちゃった」 is closest to the topic of leaving the
prefecture, and a mother's 「うちの子の場合の上限額は？」 to the adult calculator. The situations:

- a move within the prefecture (「AからBに引っ越した」, 「Bに転居しました」): the user's stored
  municipality becomes B, and the answer is the change application (変更申請) with B's office, and
  the reissue (再交付) when the certificate was lost;
- a move to another prefecture (「東京に引っ越すことになった」): the stop notice (中止届) here and a new
  application there; the stored municipality stays a place of this prefecture;
- a move into the prefecture from another (「東京から前橋に越してきた」): the application after moving in,
  with the new municipality's office;
- a child as the patient, asking about the procedure or the cap (「10歳の娘が…」, 「うちの子の場合の
  上限額は？」): 小児慢性特定疾病 (what this bot knows of it: the window, the national cap table, the
  18/20歳 limits); when the age is not said, a question (18歳未満か) with buttons; an adult child
  (「30歳の息子」) is the adult scheme and is not taken here.

Everything is recognised with a few regular expressions on the turn's ``Text``: the situations are
few and their words are fixed (引っ越す, 転居, 息子, 〇歳), so a model would add nothing but cost, and
the knowledge (the answers, the offices, the tables) stays in ``knowledge/``. A message that is
not clearly one of these situations (a negation, 「息子が送迎してくれます」) goes on to the consultation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from handlers import context, dialog, feedback, understand
from handlers.base import MENU, Answers, Context, Form, Slot, office_hint, topic_choice
from handlers.calc.copay import TIERS, load_table
from handlers.messages import Choice, IncomingMessage, Reply
from handlers.office import Found, index_for, office_block
from handlers.parsers import UNKNOWN, Invalid, parse_yes_no
from handlers.safety import redirect_for
from knowledge import KnowledgeBase
from nlp.matcher import Match
from nlp.privacy import redact
from nlp.text import Text, reading

# --- places ---------------------------------------------------------------------------------

# The 47 prefectures (a fixed national list). A short form without 都/府/県 is recognised too.
PREFECTURES: Final = (
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
)
# Another prefecture without a name: 「県外に引っ越す」.
_ELSEWHERE: Final = ("県外", "他県", "ほかの県", "別の県", "他の県", "他府県", "ほかの都道府県", "他の都道府県")


def _short(name: str) -> str:
    return name if name == "北海道" else re.sub(r"[都府県]$", "", name)


# A prefecture typed in kana (「さいたまから越してきた」) is found by its reading, when that is four kana
# or more: ちば, なら, みえ, あきた … are also everyday words, and きょうと is 今日と.
_KANA_NAME_MIN: Final = 4
_NOT_BY_KANA: Final = ("京都府",)


@cache
def _kana_names(own: str) -> dict[str, str]:
    """Other prefectures by their reading (folded: とうきよう), long enough not to be another word."""
    out = {}
    for p in PREFECTURES:
        if p == own or p in _NOT_BY_KANA:
            continue
        read = reading(_short(p))
        if len(read) >= _KANA_NAME_MIN:
            out[read] = p
    return out


@dataclass(frozen=True)
class Place:
    start: int
    end: int
    municipality: str | None = None  # of this bot's prefecture
    prefecture: str | None = None  # another prefecture (None with municipality None: unnamed), or this one by name
    inside: bool = False  # somewhere in this prefecture, not named (「県内で引っ越した」, 「群馬に越してきた」)

    @property
    def here(self) -> bool:
        return self.municipality is not None or self.inside


def _places(kb: KnowledgeBase, folded: str) -> list[Place]:
    """The places named in a folded text, in order: municipalities of this prefecture (which win
    where names overlap: 長野原町 is not 長野県), other prefectures, and 「県外」."""
    found: list[Place] = []
    idx = index_for(kb.prefecture)
    for m in idx._re.finditer(folded):  # the index's own longest-first pattern over every alias
        hit: Found | None = idx.find(m.group(0))
        if hit is None or hit.municipality is None or folded[m.end() : m.end() + 1] == "区":  # 千代田区 is Tokyo's
            continue
        found.append(Place(m.start(), m.end(), municipality=hit.municipality))
    own = kb.prefecture.name
    names = {p: p for p in PREFECTURES if p != own} | {_short(p): p for p in PREFECTURES if p != own}
    names["都内"] = "東京都"
    names |= _kana_names(own)
    home = {own, _short(own)}  # 「群馬に引っ越してきました」: somewhere in this prefecture
    pattern = "|".join(sorted(map(re.escape, (*names, *_ELSEWHERE, *home)), key=len, reverse=True))
    for m in re.finditer(pattern, folded):
        if any(p.start < m.end() and m.start() < p.end for p in found):
            continue
        key = m.group(0)
        found.append(
            Place(m.start(), m.end(), prefecture=own, inside=True)
            if key in home
            else Place(m.start(), m.end(), prefecture=names.get(key))
        )
    return sorted(found, key=lambda p: p.start)


# --- a move -----------------------------------------------------------------------------------

# Read on the compact text (punctuation and small kana kept; places are found on the folded one). A move
# denied within its clause (「引っ越しの予定はないです」, 「引っ越さない」) is no move.
# 「こしてきた」 is 越してきた typed in kana (not 起こして, よこして).
_MOVE: Final = re.compile(
    r"引っ越|引越|ひっこ[しすさせそ]|転居|転出|転入|移り住|移住|転勤|越して|(?<![およ])こして(?:き|く)|"
    r"住所が変わ|住所を移"
)
_DENIED: Final = re.compile(r"[^、。,.!?！？]{0,10}?(?:ない|ません|なかった|せず|予定はな|つもりはな)")
# A move only supposed (「引っ越したらどうなる？」): answered, but the stored municipality is kept.
_SUPPOSED: Final = re.compile(r"[^、。,.!?！？]{0,8}?(?:たら|なら|場合|かも|検討|考え|迷っ)")
# A lost certificate (or management sheet): the reissue as well.
_LOST: Final = re.compile(r"なくし|無くし|失くし|なくなっ|無くなっ|紛失|見当たら|見つから|落とし")
# A move within the prefecture, the place not named.
_INSIDE: Final = re.compile(r"県内|市内|町内|村内|同じ市|同じ町|同じ村")
# Someone else moves, who is not the patient (a parent who moves may well be).
_OTHER_MOVER: Final = re.compile(
    r"(?:友人|友達|ともだち|知人|知り合い|娘|息子|子ども|子供|兄|姉|弟|妹|親戚|孫)"
    r"(?:さん|たち)?(?:が|は)"
)
# After a place: it is where the move starts (から) or where it goes (に, へ, 方面).
_FROM: Final = re.compile(r"(?:市|町|村|都|府|県)?(?:内)?から")
_TO: Final = re.compile(r"(?:市|町|村|都|府|県)?(?:に|へ|のほうに|のほうへ|の方に|の方へ|方面)")


@dataclass(frozen=True)
class Move:
    to: Place
    origin: Place | None
    lost: bool
    settled: bool  # said as done or decided, not only supposed: the stored municipality follows it

    @property
    def kind(self) -> str:
        if not self.to.here:
            return "out"
        if (self.origin is not None and not self.origin.here) or self.to.prefecture is not None:
            return "in"  # from another prefecture, or to this one by its name (「群馬県に住所を移した」)
        return "within"


def denied_move(text: Text) -> bool:
    """Whether a message speaks of a move only to deny it (「引っ越しの予定はないです」, 「前橋には引っ越さない」)."""
    verbs = list(_MOVE.finditer(text.compact))
    return bool(verbs) and all(_DENIED.match(text.compact, v.end()) for v in verbs)


def others_move(text: Text) -> bool:
    """Whether the move told of is someone else's (a friend, a child), who may not be the patient."""
    return bool(_MOVE.search(text.compact)) and not denied_move(text) and bool(_OTHER_MOVER.search(text.compact))


def read_move(kb: KnowledgeBase, text: Text) -> Move | None:
    """The move a message tells of, with where it goes; None when it names no destination or is denied."""
    compact = text.compact
    verbs = list(_MOVE.finditer(compact))
    if not verbs or denied_move(text):
        return None
    folded = text.folded
    places = _places(kb, folded)
    origins = [p for p in places if _FROM.match(folded, p.end)]
    targets = [p for p in places if p not in origins]
    marked = [p for p in targets if _TO.match(folded, p.end)]
    if marked:
        to = marked[-1]
    elif len(targets) == 1:
        to = targets[0]  # 「引っ越し先は前橋です」, 「前橋市内で引っ越した」
    elif not places and (m := _INSIDE.search(compact)):
        to = Place(m.start(), m.end(), inside=True)
    else:
        return None
    if others_move(text):
        return None  # 「娘が東京に引っ越したので寂しい」: someone else's move
    supposed = any(_SUPPOSED.match(compact, v.end()) for v in verbs)
    return Move(to, origins[0] if origins else None, bool(_LOST.search(compact)), not supposed)


# --- a child ----------------------------------------------------------------------------------

_CHILD: Final = re.compile(
    r"うちの子|家の子|子ども|子供|こども|息子|娘|長男|長女|次男|次女|我が子|わが子|"
    r"[0-9]{1,2}(?:歳|さい|才)の子"
)  # 「うちの10歳の子が…」
_MINOR: Final = re.compile(
    r"小学|中学|高校生|幼稚園|保育園|乳児|幼児|赤ちゃん|赤ん坊|新生児|未成年|生後|"
    r"(?:小|中|高)[1-6１-６](?:の|年|生)"
)
# About to turn 20, or a 小慢 certificate running out: the 20歳 transition.
_TURNING_20: Final = re.compile(r"もうすぐ(?:二十歳|はたち|20歳|成人)|(?:二十歳|はたち|20歳|成人)に(?:なる|なります)")
# Having children is not being one (「子どもがいるけど上限額は変わる？」).
_HAS_CHILDREN: Final = re.compile(
    r"(?:子ども|子供|こども|子|息子|娘)が"
    r"(?:い|お[りる]|[0-9０-９一二三四五]人|ひとり|ふたり)"
)
_GROWN: Final = re.compile(r"成人した|社会人|大学院|結婚した|既婚|就職した|働いて")
_AGE: Final = re.compile(r"([0-9]{1,2})(?:歳|さい|才)")
# The child helps someone else, who is the patient (「息子が送迎してくれます」), or is one of the household
# (「同居してる息子の給料も入るの？」).
_HELPER: Final = re.compile(
    r"同居|給料|給与|収入|所得|世帯|してくれ|送迎|付き添|つきそ|代わり|かわりに|代理|"
    r"手伝|連れて|乗せて|扶養|もらう|もらい|頼ん|たのん"
)
# Another person named as the patient: the child is not (「娘が就職して扶養から外れた。母の受給者証に…」).
_OTHER: Final = re.compile(
    r"母の|父の|夫の|妻の|祖母|祖父|母が|父が|夫が|妻が|母は|父は|夫は|妻は|"
    r"私の|私が|私は|私も|わたしの|わたしが|わたしは|自分の|自分が|自分は|本人"
)
_MINE: Final = re.compile(r"(?:私|わたし|自分|うち)の(?=子|息子|娘|長男|長女|次男|次女)")
_CAP: Final = re.compile(r"上限|自己負担|いくら|負担額|計算|月額|医療費の負担")
_PROCEDURE: Final = re.compile(r"手続|申請|どうすれば|どうしたら|何をすれば|なにをすれば|書類|窓口|助成|診断|難病")
DEFER_CONFIDENCE: Final = 50.0
CHILD_SERVICE: Final = "child-chronic"  # services.yaml: what the bot says of 小児慢性特定疾病

UNDER_18, TEENS, ADULT, NAMED = "under18", "18-19", "adult", "named"
_SHOMAN: Final = re.compile(r"小児慢性|小慢|しょうまん")


@dataclass(frozen=True)
class Child:
    age: str | None  # UNDER_18, TEENS, NAMED (小児慢性 named, no age), or None when not said
    intent: str  # "cap" or "procedure"


def _age_class(years: int) -> str:
    return UNDER_18 if years < 18 else TEENS if years < 20 else ADULT


def read_child(text: Text) -> Child | None:
    """A child as the patient, asked about the procedure or the cap; None otherwise (adults too)."""
    c = text.compact
    if not (_CHILD.search(c) or _MINOR.search(c)):
        return None
    intent = "cap" if _CAP.search(c) else "procedure" if _PROCEDURE.search(c) else None
    if intent is None or _HELPER.search(c) or _HAS_CHILDREN.search(c) or _OTHER.search(_MINE.sub("", c)):
        return None
    ages = [int(m.group(1)) for m in _AGE.finditer(c)]
    if ages:
        age = _age_class(min(ages))
    elif _TURNING_20.search(c):
        age = TEENS
    elif _MINOR.search(c):
        age = UNDER_18
    elif _GROWN.search(c):
        age = ADULT
    elif _SHOMAN.search(c):
        age = NAMED  # 「子どもの小児慢性の上限は」: the scheme is named; no need to ask the age first
    else:
        age = None
    return None if age == ADULT else Child(age, intent)


def _child_of(ctx: Context) -> Child | None:
    """``read_child`` of the turn, unless a topic answers that question about a child as it is."""
    found = read_child(ctx.text)
    if found is None:
        return None
    redirect = redirect_for(ctx.kb, ctx.text)
    if redirect is not None and redirect.id != CHILD_SERVICE:
        return None  # 「子どもの医療費はいくらまで無料」: the municipality's children's subsidy, not a patient
    ranked = ctx.matcher.rank(ctx.text, limit=5)  # topics, actions and services together, best first
    top = ranked[0] if ranked else None
    if (
        top is not None
        and top.confidence >= DEFER_CONFIDENCE
        and (
            _about_children(ctx.kb, top.id) or (top.id.startswith("service:") and top.id != "service:" + CHILD_SERVICE)
        )
    ):
        return None
    calculators = tuple(a.id for a in ctx.kb.actions if a.calculates)  # what a child's situation replaces
    if _asks_an_action(ctx, ranked, also_kept=calculators) or (
        top is not None
        and top.id.startswith(understand.ACTION_PREFIX)
        and top.confidence >= DEFER_CONFIDENCE
        and top.id.removeprefix(understand.ACTION_PREFIX) not in _NOT_DEFERRED + calculators
    ):
        return None  # 「息子の受給者証の期限もお知らせして」: the reminder, whoever the patient is
    return found


_CHILD_WORDS: Final = re.compile(r"小児|乳幼児|子ども|子供|こども|赤ちゃん")


def _about_children(kb: KnowledgeBase, topic_id: str) -> bool:
    """Whether a topic already answers for children (its answer speaks of them: the 20歳 transition,
    a household with a 小慢 child, a disease of infants); there the consultation answers."""
    return topic_id in kb.topics and bool(_CHILD_WORDS.search(kb.topics[topic_id].answer))


# The bot's own actions a situation does not replace (the situation answers where the office is, and
# 「やめ」「中止」 name the 中止届 as often as a cancel).
_NOT_DEFERRED: Final = ("office", "cancel", "restart", "menu")
ACTION_CONFIDENCE: Final = 40.0


def _asks_an_action(ctx: Context, ranked: list[Match], also_kept: tuple[str, ...] = ()) -> bool:
    """Whether the message asks for one of the bot's actions (ranked close, with its cue words):
    「県外に引っ越すので、リマインドはキャンセルで」 stops the reminders; it is not a move to answer."""
    for m in ranked:
        aid = m.id.removeprefix(understand.ACTION_PREFIX)
        if (
            m.id.startswith(understand.ACTION_PREFIX)
            and aid not in _NOT_DEFERRED + also_kept
            and m.confidence >= ACTION_CONFIDENCE
            and understand.has_cue(ctx.kb, ctx.text, aid)
        ):
            return True
    return False


# The age group of a child patient the user told of (「10歳の娘が…」, or at the age question), kept in the
# profile so that the next 「うちの子の場合は？」 is not asked again; deleted with the user's data.
PATIENT_AGE: Final = "patient_age"


def _said_age(ctx: Context) -> str | None:
    age = ctx.state.profile.get(PATIENT_AGE)
    return age if age in (UNDER_18, TEENS) else None


# --- the route ------------------------------------------------------------------------------

# The topics the answers are made of; a prefecture whose knowledge lacks one leaves that situation to the consultation.
MOVE_TOPICS: Final = ("change-application", "termination", "moving-in", "reissue")


def _moves_known(kb: KnowledgeBase) -> bool:
    return all(t in kb.topics for t in MOVE_TOPICS)


def applies(msg: IncomingMessage, ctx: Context) -> bool:
    """Whether a typed message tells of a move or of a child as the patient (the route's condition)."""
    if msg.text is None or msg.choice is not None:
        return False
    moves = (
        _moves_known(ctx.kb)
        and (read_move(ctx.kb, ctx.text) is not None or denied_move(ctx.text) or others_move(ctx.text))
        and not _asks_an_action(ctx, ctx.matcher.rank(ctx.text, limit=5))
    )
    return moves or (TRANSITION_TOPIC in ctx.kb.topics and _child_of(ctx) is not None)


def answer(msg: IncomingMessage, ctx: Context) -> list[Reply]:
    move = None
    if _moves_known(ctx.kb):
        if denied_move(ctx.text):
            return _not_moving(msg, ctx, NOT_MOVING)
        if others_move(ctx.text):
            return _not_moving(msg, ctx, OTHERS_MOVE)
        move = read_move(ctx.kb, ctx.text)
    if move is not None:
        replies = _moved(ctx, move)
        topic = replies[0].topic
    else:
        child = _child_of(ctx)
        assert child is not None
        age = child.age or _said_age(ctx)
        if age is None:
            return dialog.start(CHILD_AGE_FORM, ctx)
        if age in (UNDER_18, TEENS):
            ctx.state.profile[PATIENT_AGE] = age
        replies = _child_answer(ctx, age, child.intent)
        topic = replies[0].topic or TRANSITION_TOPIC
    # The operator's statistics, as the consultation keeps them (no text: these are not unanswered).
    ctx.questions.record(ctx.today, topic, replies[0].kind == "answer", None)
    # As every answer: the topic frames a follow-up (「県外だったら？」), and the answer can be judged.
    context.remember(ctx, replies[0].topic)
    return feedback.offer(replies, ctx, topic=topic)


# --- answers --------------------------------------------------------------------------------

NOT_MOVING: Final = (
    "わかりました。お引っ越しをしないのでしたら、"
    "住所についての手続き（変更申請や中止届）は要りません。"
    "ほかにご質問があれば、どうぞお送りください。"
)


OTHERS_MOVE: Final = (
    "受給者ご本人のお引っ越しでなければ、受給者証の手続きは要りません。受給者ご本人が引っ越すときは、"
    "「前橋市に引っ越しました」のように引っ越し先を送っていただければ、手続きと窓口をご案内します。"
)


def _not_moving(msg: IncomingMessage, ctx: Context, bare: str) -> list[Reply]:
    """A move denied (「引っ越しの予定はないです」) or someone else's (「友達が前橋に引っ越した」): nothing is
    stored, and no procedure of moving is answered (``bare`` is said when nothing else was asked).

    The rest of the message (「更新の手続きは？」) is answered as any question, for the municipality the
    user is known to live in (a place named in the denied move is not where they live).
    """
    from handlers.faq import consult  # the one consultation (imported here: handlers.faq imports this package)

    rest = [t.raw for t in ctx.text.sentences if not _MOVE.search(t.compact)]
    if not rest:
        return [Reply(bare, choices=(MENU,), kind="answer")]
    text = Text("。".join(rest))
    c = consult(ctx.kb, ctx.matcher, text, _known(ctx))
    if c.kind == "action" and c.action is not None:
        return understand.perform(understand.action(ctx.kb, c.action), msg, ctx)
    ctx.questions.record(
        ctx.today,
        c.topic or (c.candidates[0].id if c.candidates else None),
        c.kind == "answer",
        None if c.kind == "answer" else redact(text.raw),
    )
    return [c.reply()]


def _known(ctx: Context) -> str | None:
    """The user's stored municipality, if it is one of this prefecture's."""
    muni = ctx.state.profile.get("municipality")
    return muni if isinstance(muni, str) and any(m.name == muni for m in ctx.kb.prefecture.municipalities) else None


def _cite(kb: KnowledgeBase, topic_ids: tuple[str, ...], extra: tuple[str, ...] = ()) -> str:
    """One 出典 line for several topics (and extra source ids), each source once, the latest check date."""
    topics = [kb.topics[t] for t in topic_ids]
    ids = list(dict.fromkeys([s for t in topics for s in t.sources] + list(extra)))
    checked = max(t.checked for t in topics)
    names = "、".join(kb.sources[s].cite() for s in ids if s in kb.sources)
    return f"出典：{names}（{checked.year}年{checked.month}月{checked.day}日確認）"


def _buttons(kb: KnowledgeBase, shown: tuple[str, ...], *more: str) -> tuple[Choice, ...]:
    related = [r for t in shown for r in kb.topics[t].related] + list(more)
    ids = [t for t in dict.fromkeys(related) if t not in shown and t in kb.topics]
    return tuple(topic_choice(kb, t) for t in ids[:3])


def _office(kb: KnowledgeBase, municipality: str) -> str:
    return office_block(kb.prefecture, index_for(kb.prefecture).office_of(municipality), municipality)


def _moved(ctx: Context, move: Move) -> list[Reply]:
    answer = _MOVE_ANSWERS[move.kind](ctx, move)
    parts = [*answer.parts, _cite(ctx.kb, answer.shown)]
    choices = answer.first + tuple(
        c for c in _buttons(ctx.kb, answer.shown) if c not in answer.first and c.value not in answer.hidden
    )
    return [Reply("\n\n".join(parts), choices=choices[:4], topic=answer.shown[0], kind="answer")]


@dataclass(frozen=True)
class _MoveAnswer:
    """An answer to a move before its 出典 line: paragraphs, the topics shown, buttons put first or left out."""

    parts: list[str]
    shown: tuple[str, ...]
    first: tuple[Choice, ...] = ()
    hidden: tuple[str, ...] = ()  # choice values not offered


# The procedure each kind of move needs: leaving ends the certificate here (中止届), coming in from
# another prefecture is a new application, a move within the prefecture is a change (変更申請).
_MOVE_TOPIC: Final = {"out": "termination", "in": "moving-in", "within": "change-application"}


def _move_topics(move: Move) -> tuple[str, ...]:
    topic = _MOVE_TOPIC[move.kind]
    return (topic, "reissue") if move.lost else (topic,)


def _moved_out(ctx: Context, move: Move) -> _MoveAnswer:
    """A move to another prefecture: the notice here, a new application there."""
    kb, known = ctx.kb, _known(ctx)
    pref = kb.prefecture.name
    where = move.to.prefecture or "ほかの都道府県"
    shown = _move_topics(move)
    parts = [
        f"{where}へのお引っ越しですね。{pref}の外へ引っ越すときは、{pref}には「中止（終了）届」を出し、"
        f"引っ越し先の{where}で改めて申請します。"
    ]
    parts += [kb.topics[t].answer.strip() for t in shown]
    parts.append(_office(kb, known) if known else office_hint(kb))
    parts.append(
        f"{where}での申請の窓口や必要な書類は、{where}の難病の医療費助成の担当窓口でご確認ください。"
        f"このチャットは{pref}の制度をご案内しています。"
    )
    # Leaving: where to hand in the notice, not how to move in.
    return _MoveAnswer(
        parts, shown, first=(understand.button(understand.action(kb, "office")),), hidden=("topic:moving-in",)
    )


def _moved_here(ctx: Context, move: Move) -> _MoveAnswer:
    """A move into the prefecture or within it; a move to a named municipality, once settled, is stored."""
    kb, known = ctx.kb, _known(ctx)
    to = move.to.municipality
    shown = _move_topics(move)
    lead = _arrival_lead(kb.prefecture.name, move) + _arrival_notes(ctx, move, known)
    parts = [lead, *(kb.topics[t].answer.strip() for t in shown), _office(kb, to) if to else office_hint(kb)]
    if move.kind == "within" and move.origin is None and known is None and to is not None:
        # Where from was not said: it may have been another prefecture, where the procedure differs.
        parts.append(
            f"ほかの都道府県から引っ越してきた場合は、変更ではなく{kb.prefecture.name}での新しい申請になります"
            f"（下の「{kb.topics['moving-in'].label}」をご覧ください）。"
        )
        return _MoveAnswer(parts, shown, first=(topic_choice(kb, "moving-in"),))
    return _MoveAnswer(parts, shown)


def _arrival_lead(pref: str, move: Move) -> str:
    to = move.to.municipality
    if move.kind == "in":
        return f"{to}へのお引っ越しですね。" if to else f"{pref}へのお引っ越しですね。"
    lead = f"{to}へのお引っ越しですね。" if to else f"{pref}内でのお引っ越しですね。"
    change = f"{pref}内でのお引っ越しは、中止ではなく「変更申請」です。" if to else "中止ではなく「変更申請」です。"
    return lead + change


def _arrival_notes(ctx: Context, move: Move, known: str | None) -> str:
    """What follows the lead: a lost certificate, and the new municipality asked for or stored."""
    to = move.to.municipality
    notes = "受給者証をなくされたとのことなので、再交付の申請もご案内します。" if move.lost else ""
    if to is None:
        # 「県内で引っ越した」: the new municipality is not known, and the old one's office is no longer theirs.
        return notes + "\n引っ越し先の市町村名を送っていただければ、そこの窓口をご案内します。"
    if move.settled and to != known:
        ctx.state.profile["municipality"] = to
        return notes + f"\nお住まいの市町村を{to}に変えておきます（これからのご案内は{to}の窓口です）。"
    return notes


_MOVE_ANSWERS: Final = {"out": _moved_out, "in": _moved_here, "within": _moved_here}


def _shoman_caps(ctx: Context) -> str:
    """The national 小児慢性特定疾病 cap table, as the knowledge has it (tables/copay.yaml)."""
    caps = load_table().pediatric_caps
    rows = [
        f"・{tier}：{caps[tier]['一般']:,}円（重症・高額かつ長期は{caps[tier]['高額かつ長期']:,}円）"
        if caps[tier]["一般"] != caps[tier]["高額かつ長期"]
        else f"・{tier}：{caps[tier]['一般']:,}円"
        for tier in TIERS
    ]
    ventilator = {caps[t]["人工呼吸器等装着者"] for t in TIERS if caps[t]["人工呼吸器等装着者"] > 0}
    if len(ventilator) == 1:
        rows.append(f"・人工呼吸器等装着者：{ventilator.pop():,}円")
    return (
        "ご参考までに、国の「小児慢性特定疾病」の月額の自己負担上限額の表は次のとおりです。\n"
        + "\n".join(rows)
        + "\nどの区分に当たるかの確認や申請の書類は、窓口でおたずねください。"
    )


def _service_reply(kb: KnowledgeBase, service_id: str) -> str | None:
    return next((s.reply.strip() for s in kb.services if s.id == service_id), None)


TRANSITION_TOPIC: Final = "shoman-transition"
ADULT_TOPIC: Final = "just-diagnosed"  # an adult's first steps, for 20歳以上 at the age question
LIMITS: Final = "小児慢性の助成は、新しく申請できるのが18歳未満まで、引き続き受けられるのが20歳になるまでです。"


def _child_answer(ctx: Context, age: str, intent: str) -> list[Reply]:
    kb = ctx.kb
    known = _known(ctx)
    if age == TEENS:
        parts = [
            "18歳・19歳の方は、今、小児慢性の助成を受けていれば20歳になるまで続けられます。"
            "新しく申請するときは、病気が指定難病に当たれば指定難病の制度です。",
            kb.topics[TRANSITION_TOPIC].answer.strip(),
            _office(kb, known) if known else office_hint(kb),
            _cite(kb, (TRANSITION_TOPIC,)),
        ]
        copay = understand.button(understand.action(kb, "copay"))
        return [
            Reply(
                "\n\n".join(parts),
                choices=(Choice("指定難病の上限額を計算", copay.value), *_buttons(kb, (TRANSITION_TOPIC,))),
                topic=TRANSITION_TOPIC,
                kind="answer",
            )
        ]
    # Under 18 (or the age not known): 小児慢性特定疾病, never the adult calculator.
    service = _service_reply(kb, CHILD_SERVICE) or (
        "18歳未満のお子さんの医療費助成は、指定難病とは別の「小児慢性特定疾病」の医療費助成で、上限額も申請の書類も"
        "指定難病とは違います。このチャットでは小児慢性の上限額は計算できません。"
    )
    parts = [("" if age == UNDER_18 else "お子さんが18歳未満でしたら、次のとおりです。\n") + service + "\n" + LIMITS]
    extra: tuple[str, ...] = ()
    if intent == "cap":
        parts.append(_shoman_caps(ctx))
        extra = ("SHOMAN-T",)
    parts.append(_office(kb, known) if known else office_hint(kb))
    parts.append(_cite(kb, (TRANSITION_TOPIC,), extra))
    office = understand.button(understand.action(kb, "office"))
    choices = (
        office,
        topic_choice(kb, TRANSITION_TOPIC),
        *(topic_choice(kb, t) for t in ("copay-household-split",) if t in kb.topics),
    )
    # The scheme next door (as the consultation's answer for 小児慢性特定疾病 is), with what this bot knows of it.
    return [Reply("\n\n".join(parts), choices=choices, kind="redirect")]


# --- the age question -----------------------------------------------------------------------

Q_AGE = "お子さんは今、18歳未満ですか？"
AGE_CHOICES: Final = (Choice("18歳未満", UNDER_18), Choice("18歳・19歳", TEENS), Choice("20歳以上", ADULT))
# Asked about the cap, 「20歳以上」 is the copay calculator's own button: one tap starts it.
CAP_AGE_CHOICES: Final = AGE_CHOICES[:2] + (Choice("20歳以上", "start:copay"),)


def _asked_the_cap(a: Answers) -> bool:
    return a.get("child_intent") == "cap"


def _parse_age(text: Text, ctx: Context) -> Any:
    c = text.compact
    if c in (UNDER_18, TEENS, ADULT):
        return c
    if c == "start:copay":
        return ADULT
    if "未満" in c:
        return UNDER_18
    ages = [int(m.group(1)) for m in _AGE.finditer(c)] or ([int(c)] if c.isdigit() and len(c) <= 2 else [])
    if ages:
        return _age_class(ages[0])
    if _MINOR.search(c):
        return UNDER_18
    if re.search(r"以上|成人|大人|社会人|二十歳|はたち", c):
        return ADULT
    yes = parse_yes_no(text)
    if yes is True:
        return UNDER_18
    if yes is UNKNOWN:
        return UNKNOWN
    if yes is False:
        return Invalid("18歳・19歳か、20歳以上かを、下のボタンから選んでください。")
    return Invalid("お子さんの年齢を、下のボタンから選んでください（例：10歳）。")


def _child_prefill(ctx: Context) -> dict[str, Any]:
    found = read_child(ctx.text)
    return {"child_intent": found.intent if found is not None else "procedure"}


def _child_finish(a: Answers, ctx: Context) -> list[Reply]:
    age, intent = a.get("child_age"), a.get("child_intent", "procedure")
    if age in (UNDER_18, TEENS):
        ctx.state.profile[PATIENT_AGE] = age
    else:
        ctx.state.profile.pop(PATIENT_AGE, None)
    if age == ADULT:
        if intent == "cap":
            form = ctx.forms.get("copay")
            if form is not None:
                return [Reply("わかりました。20歳以上の方は、指定難病の上限額を計算します。")] + dialog.start(form, ctx)
        from handlers.faq import render_topic  # the consultation's own rendering of a topic

        said = "わかりました。20歳以上の方は、指定難病の制度です。"
        if ADULT_TOPIC not in ctx.kb.topics:
            return [Reply(said + "\n\n" + office_hint(ctx.kb), choices=(MENU,))]
        body, choices = render_topic(ctx.kb, ADULT_TOPIC, _known(ctx))
        return [Reply(said + "\n\n" + body, choices=choices, topic=ADULT_TOPIC)]
    return _child_answer(
        ctx,
        TEENS if age == TEENS else UNDER_18 if age == UNDER_18 else "unknown",
        intent if intent in ("cap", "procedure") else "procedure",
    )


CHILD_AGE_FORM: Final = Form(
    name="child-age",
    intro=(
        "お子さんのことですね。18歳未満のお子さんの医療費助成は、指定難病ではなく「小児慢性特定疾病」の制度で、"
        "上限額も手続きも指定難病とは違います。まず年齢を教えてください。"
    ),
    # One question; its buttons depend on what was asked (one slot name, so one answer either way).
    slots=(
        Slot(
            "child_age",
            ask=Q_AGE,
            parse=_parse_age,
            choices=CAP_AGE_CHOICES,
            label="お子さんの年齢",
            ask_if=_asked_the_cap,
        ),
        Slot(
            "child_age",
            ask=Q_AGE,
            parse=_parse_age,
            choices=AGE_CHOICES,
            label="お子さんの年齢",
            ask_if=lambda a: not _asked_the_cap(a),
        ),
    ),
    finish=_child_finish,
    prefill=_child_prefill,
)

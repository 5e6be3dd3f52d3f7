"""Parsers for answers typed in chat (or sent by a button) to the dialog questions.

What this is: one function per kind of answer — yes/no, yen amount, month count,
insurance rate, the other household members' caps, a date. Each returns the value,
``UNKNOWN`` (the user said わからない, which is an answer), or ``Invalid(hint)`` with a kind
Japanese hint for asking again. They never raise, whatever the input.

What this is not: no dialog state, no knowledge of which slot is being asked, and no I/O
apart from the cap table (``knowledge/tables/copay.yaml``, read once through
``handlers.calc.copay.existing_caps``) that says which household caps exist.
Range checks that belong to the rules (e.g. contradictions between answers) live in
``handlers.calc``.

Every value a button sends (``*_CHOICES`` below: ASCII values such as ``"yes"``,
``"unknown"``, ``"0.3"``) parses with the same parser as typed text.

Each parser takes the turn's ``nlp.text.Text`` (or a plain string, made into one) and reads its
answer forms, computed once per turn: width, case and katakana folded (ﾊｲ is はい), and units
typed in kana after a number read as their kanji (7まん is 7万).
"""

from __future__ import annotations

import calendar
import enum
import re
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Final, Literal

from nlp.normalize import compact
from nlp.text import Text, as_text

__all__ = [
    "COUNT_CHOICES",
    "CapsNeeded",
    "HOUSEHOLD_CAPS_CHOICES",
    "RATE_CHOICES",
    "UNKNOWN",
    "UNKNOWN_CHOICE",
    "YES_NO_CHOICES",
    "ImpossibleDate",
    "Invalid",
    "Unknown",
    "is_unknown_answer",
    "only_unsure",
    "other_recipients",
    "parse_count",
    "parse_date",
    "parse_household_caps",
    "parse_rate",
    "parse_yen",
    "parse_yen_list",
    "parse_yes_no",
]


class Unknown(enum.Enum):
    """Type of the ``UNKNOWN`` sentinel: the user does not know the answer."""

    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = Unknown.UNKNOWN


@dataclass(frozen=True)
class Invalid:
    """The answer could not be read; ``hint`` is a kind Japanese re-ask.

    ``options`` are (label, value) pairs offered as buttons with the re-ask, e.g. the
    municipalities an ambiguous name could mean; each value must parse.
    """

    hint: str
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Noted:
    """A value read, with a sentence said back before the next question (``handlers.dialog``): how an
    answer that was not said as the slot's own was read (「毎月」 → 12か月), or that a hedged answer
    (「たぶん課税されてると思う」) was taken as it stands."""

    value: object
    note: str


class OtherKind(Invalid):
    """An answer read, but of another kind than the question asks (an amount at a date question, a
    date or a rough count at a count question): the hint is the short question that finds the right
    figure, so the message is not passed on to the FAQ (``handlers.amounts`` uses it for amounts)."""


Rate = float  # one of 0.1, 0.2, 0.3 (a Literal cannot hold floats)

# Button (label, value) pairs. Values are plain ASCII and parse with the matching parser.
UNKNOWN_CHOICE: Final[tuple[str, str]] = ("わからない", "unknown")
YES_NO_CHOICES: Final[tuple[tuple[str, str], ...]] = (("はい", "yes"), ("いいえ", "no"), UNKNOWN_CHOICE)
RATE_CHOICES: Final[tuple[tuple[str, str], ...]] = (("3割", "0.3"), ("2割", "0.2"), ("1割", "0.1"), UNKNOWN_CHOICE)
COUNT_CHOICES: Final[tuple[tuple[str, str], ...]] = (("ない", "0"), ("6か月以上", "6"), UNKNOWN_CHOICE)
HOUSEHOLD_CAPS_CHOICES: Final[tuple[tuple[str, str], ...]] = (("いない", "none"), UNKNOWN_CHOICE)

# Longest answer we try to read; longer text is not an answer to a short question.
MAX_ANSWER_CHARS: Final[int] = 100
# Largest amount of yen we accept (10億円).
MAX_YEN: Final[int] = 1_000_000_000
# Highest cap a 受給者証 can carry (指定難病 上位所得 一般).
MAX_CAP: Final[int] = 30_000

HINT_YES_NO: Final[str] = "「はい」か「いいえ」で教えてください。わからなければ「わからない」と送ってください。"
HINT_YEN: Final[str] = (
    "金額は『7万1千円』『71000』のように数字で教えてください。わからなければ『わからない』と送ってください。"
)
HINT_YEN_RANGE: Final[str] = "0円から10億円までの金額で教えてください。" + HINT_YEN
HINT_COUNT: Final[str] = (
    "月数は『6』『6か月』『半年』のように、0から12までの数で教えてください。"
    "なければ『ない』、わからなければ『わからない』と送ってください。"
)
HINT_COUNT_RANGE: Final[str] = "直近12か月のうちの月数なので、0から12までで教えてください。"
HINT_RATE: Final[str] = (
    "ふだんの窓口での負担割合を『3割』『2割』『1割』のように教えてください。"
    "保険証や資格確認書に書かれています。わからなければ『わからない』と送ってください。"
)
HINT_HOUSEHOLD_CAPS: Final[str] = (
    "同じ世帯でほかに受給者証をお持ちの方の月額上限額を『10,000円』『5000円と2500円』のように教えてください。"
    "いなければ『いない』、わからなければ『わからない』と送ってください。"
)
HINT_HOUSEHOLD_CAP_RANGE: Final[str] = (
    "受給者証の月額上限額は30,000円以下です。受給者証に書かれた金額（例：10,000円）を教えてください。"
)
HINT_DATE: Final[str] = (
    "日付は『2027年3月31日』『令和9年3月31日』『R9.3.31』『2027/3/31』のように教えてください。"
    "わからなければ『わからない』と送ってください。"
)
HINT_DATE_NEEDED: Final[str] = "日付を年・月・日で教えてください。" + HINT_DATE
HINT_DATE_DAY: Final[str] = "日にちまで教えてください（月末なら『3月末』でも大丈夫です）。" + HINT_DATE
HINT_TOO_LONG: Final[str] = "短いお返事で教えてください。"


# --------------------------------------------------------------------------- reading the answer
# (its forms come from the turn's ``nlp.text.Text``: ``spaced`` and ``compact``)


_UNKNOWN_MARKERS: Final[tuple[str, ...]] = (
    "わから",
    "分から",
    "判ら",
    "解ら",
    "わかん",
    "分かん",
    "わかりません",
    "分かりません",
    "不明",
    "知らな",
    "しらな",
    "知りません",
    "しりません",
    "知らん",
    "しらん",
    "覚えてな",
    "覚えていな",
    "おぼえてな",
    "忘れた",
    "unknown",
    "idk",
    "dontknow",
    "don'tknow",
    "notsure",
)


def is_unknown_answer(text: Text | str) -> bool:
    """Whether the (raw or normalised) text says the user does not know."""
    return _says_unknown(as_text(text).compact)


# A message that says only "I don't know" (「わからない」, 「よくわかりません」, 「知らないです」), as
# opposed to one that says what is not known (「使い方がわからない」): one of the markers above,
# with nothing around it but fillers and endings.
_ONLY_UNSURE: Final[re.Pattern[str]] = re.compile(
    r"^(?:よく|ちょっと|まだ|全然|ぜんぜん|さっぱり|うーん|えーと|えっと|[、。,.!?…~ー])*"
    r"(?:" + "|".join(re.escape(m) for m in sorted(_UNKNOWN_MARKERS, key=len, reverse=True)) + ")"
    r"(?:い|ない|ん|なかった|なくて)?(?:です|ですね|な|ね|よ|けど|[、。,.!?…~ー])*$"
)


def only_unsure(text: Text | str) -> bool:
    """Whether the message says nothing but that the user does not know."""
    return bool(_ONLY_UNSURE.match(as_text(text).compact))


def _says_unknown(t: str) -> bool:
    """``is_unknown_answer`` of a text already in its ``compact`` form."""
    return t in ("?", "??", "unknown") or any(marker in t for marker in _UNKNOWN_MARKERS)


# Units typed in kana after a number (「7まん」, ７マン, 「5せんえん」), read as their kanji; 「えん」
# after a number or a unit is 円. Only after a digit, so that 「いません」 stays what it is.
_KANA_UNITS: Final[dict[str, str]] = {"まん": "万", "せん": "千", "ひゃく": "百", "びゃく": "百", "ぴゃく": "百",
                                        "ねん": "年", "がつ": "月"}
_KANA_UNIT: Final[re.Pattern[str]] = re.compile(r"(?<=[0-9])(?:" + "|".join(_KANA_UNITS) + ")")
_KANA_YEN: Final[re.Pattern[str]] = re.compile(r"(?<=[0-9万千百])えん")


def _kana_units(t: str) -> str:
    return _KANA_YEN.sub("円", _KANA_UNIT.sub(lambda m: _KANA_UNITS[m.group()], t))


def _start(text: object, hint: str) -> str | Unknown | Invalid:
    """Common start of every parser: type guard, the ``compact`` form, length guard, わからない.

    Returns the compact text with kana units read, ``UNKNOWN``, or ``Invalid`` carrying ``hint``.
    """
    if not isinstance(text, (str, Text)):
        return Invalid(hint)
    t = as_text(text).compact
    if not t:
        return Invalid(hint)
    if len(t) > MAX_ANSWER_CHARS:
        return Invalid(HINT_TOO_LONG + hint)
    if _says_unknown(t):
        return UNKNOWN
    return _kana_units(t)


_TRAILING: Final[re.Pattern[str]] = re.compile(r"[。.!?、,~ー]+$")


def _strip_trailing(t: str) -> str:
    return _TRAILING.sub("", t)


# --------------------------------------------------------------------------- yes / no

# A yes or no is a short answer, never a sentence that merely ends like one: 「顔が真っ青で唇が紫
# になってる」 ends like 「なってる」 and is no 「はい」 (it is an emergency). So an answer is read only
# when it is, as a whole, one of the forms below: an interjection (はい、…), a bare reply
# (あります, ないです), or a verb of the question (受けてます, 受けていません) after the words the
# question is about (生活保護を, 人工呼吸器). Anything else is Invalid, and the dialog treats it
# as a new message (safety first, then a question) before asking again.
_NO_START: Final[re.Pattern[str]] = re.compile(
    r"^(?:いいえ|いえ|いいや|いや|ううん|no|nope|のー|違う|ちがう|違います|ちがいます)(?:[、。,.!ー~]|です|$)")
_YES_START: Final[re.Pattern[str]] = re.compile(r"^(?:はい|うん|ええ|yes|yeah|ok|okay|おk|おっけー)(?:[、。,.!ー~]|です|だよ|$)")
_YES_BARE: Final[re.Pattern[str]] = re.compile(
    r"^(?:はい|はいはい|うん|ええ|そう|そうです|そうだ|そうだよ|そのとおり|その通り|そうなんです|そうなります|y|yes|yeah|ok|okay|"
    r"おk|おっけー|いえす|true|o|○|◯|👍|あります|ある|あるよ|あり|います|いる|いるよ|該当|該当します|該当する|該当です|"
    r"当てはまる|当てはまります|あてはまる|あてはまります|もちろん|大丈夫|だいじょうぶ|大丈夫です|だいじょうぶです|"
    r"いいです|いいよ|よい|よろしい|よろしいです|正しい|正しいです|ただしい|合ってる|あってる|合ってます|あってます|"
    r"お願いします|おねがいします|お願い|おねがい|お願いね|おねがいね|よろしく|よろしくお願いします|頼みます|たのみます|"
    r"です|だ|だよ)$")
_NO_BARE: Final[re.Pattern[str]] = re.compile(
    r"^(?:いいえ|いえ|いや|ううん|no|n|nope|x|×|✕|false|ない|無い|ないです|ないよ|なし|無し|なしです|ありません|いません|いない|"
    r"いないです|ではない|ではないです|ではありません|じゃない|じゃないです|じゃありません|違う|ちがう|違います|ちがいます|"
    r"非該当|該当しない|該当しません|該当なし|当てはまらない|当てはまりません|あてはまらない|あてはまりません|そうじゃない|"
    r"そうではない|そうではありません|だめ|やめて|やめる|やめます|しない|しません|"
    # a refusal of an offer (「記録を始めますか？」「お知らせを送りましょうか？」) answers that offer only
    r"いらない|いらないです|いりません|要らない|要りません|いらん|不要|不要です|結構です|けっこうです|遠慮します|えんりょします)$")
# A verb of the question, then a yes or a no ending: 受け|てます, 入っ|てない, 認定され|ています.
_STEMS: Final[str] = (
    r"(?:受け|うけ|もらっ|貰っ|入っ|はいっ|加入し|かにゅうし|該当し|がいとうし|持っ|もっ|使っ|つかっ|つけ|付け|着け|装着し|"
    r"そうちゃくし|利用し|受給し|認定され|にんていされ|払っ|はらっ|納め|おさめ|かかっ|され|さ|し|なっ|合っ|あっ|おり|い|あり)")
_YES_VERB: Final[re.Pattern[str]] = re.compile(
    _STEMS + r"(?:ています|ている|ております|てます|てる|てた|ていました|ます|る|ました|た|てください|て|てくれ|てほしい)$")
_NO_VERB: Final[re.Pattern[str]] = re.compile(
    _STEMS + r"(?:ていません|てません|ていない|てない|ないです|ない|ません|ていないです|てないです|なかった|てなかった|"
    r"ていなかった)$")
_ANSWER_TAIL: Final[re.Pattern[str]] = re.compile(r"(?:[。.!?、,~ー]|よね|よ|ね|w)+$")
_OBJECT_PARTICLE: Final[str] = r"(?:は|を|が|も|に|で|の)?"
# Who the answer is about, said first: 「私は受けています」「うちは非課税です」「家族は全員非課税」.
_TOPIC: Final[re.Pattern[str]] = re.compile(r"^(?:私|わたし|僕|ぼく|自分|本人|うち|我が家|わが家|家族|家)(?:は|も|では)")
# はい / いいえ / そうです run into the answer without a comma (「はい受けてます」), as typed on a phone.
_YES_WORD: Final[re.Pattern[str]] = re.compile(r"^(?:はい|うん|ええ|そうです|そう)[、,.。!]*")
_NO_WORD: Final[re.Pattern[str]] = re.compile(r"^(?:いいえ|いや|ううん|違います|ちがいます)[、,.。!]*")


def parse_yes_no(
    text: Text | str, about: tuple[str, ...] = (), opposite: tuple[str, ...] = ()
) -> bool | Unknown | Invalid:
    """Read a yes/no answer, and only an answer.

    はい, うん, そうです, あります, 受けてます, yes → True; いいえ, ううん, ない, 受けていません,
    no → False; わからない → ``UNKNOWN``. Button values: ``"yes"``, ``"no"``, ``"unknown"``.
    A sentence that is not a clear yes or no (「胸が痛い」, 「顔が真っ青になってる」) is Invalid.

    Args:
        text: the answer.
        about: words the question asks about, which may open the answer (生活保護 in
            「生活保護を受けてます」).
        opposite: words that say the opposite of the question's key word; an answer built on one
            is inverted (「課税されてます」 to 「非課税ですか？」 is a no).

    Returns:
        True, False, ``UNKNOWN`` or ``Invalid(hint)``.
    """
    t = _start(text, HINT_YES_NO)
    if not isinstance(t, str):
        return t
    spaced = re.sub(r"\s+", "、", _kana_units(as_text(text).spaced))
    for start, polarity in ((_NO_START, False), (_YES_START, True)):
        m = start.search(spaced)
        if m is None:
            continue
        # 「はい、受けています」 is a yes; 「ちがう、最初から」 is no answer at all (a new message).
        rest = _ANSWER_TAIL.sub("", compact(spaced[m.end():]).lstrip("、。,.!ー~"))
        if not rest:
            return polarity
        agrees = parse_yes_no(rest, about, opposite)
        return polarity if agrees is polarity else Invalid(HINT_YES_NO)
    t = _HEDGE_END.sub("", _HEDGE_START.sub("", _ANSWER_TAIL.sub("", t)))
    topic = _TOPIC.match(t)
    if topic and t[topic.end():]:
        t = t[topic.end():]
    value = _read_yes_no(t, about, opposite)
    if value is not None:
        return value
    # 「はい受けてます」「いいえ受けてません」: the interjection and an answer that agrees with it.
    for word, meant in ((_NO_WORD, False), (_YES_WORD, True)):
        found = word.match(t)
        if found and t[found.end():] and _read_yes_no(t[found.end():], about, opposite) is meant:
            return meant
    return Invalid(HINT_YES_NO)


# An answer given with doubt is still the answer (「たぶん課税されてると思う」 is a no to 「非課税ですか？」);
# the dialog's result states what it was computed from, and 「わからない」 stays its own answer.
_HEDGE_START: Final[re.Pattern[str]] = re.compile(r"^(?:たぶん|多分|おそらく|恐らく|きっと|確か|たしか|一応|いちおう)[、,]?")
_HEDGE_END: Final[re.Pattern[str]] = re.compile(
    r"(?:と思う|と思います|とおもう|とおもいます|と思うけど|と思うんだけど|と思うんですけど|と思いますけど|はず|はずです|"
    r"かも|かもしれない|かもしれません|気がする|気がします|みたい|みたいです|らしい|らしいです)$")


def _read_yes_no(t: str, about: tuple[str, ...], opposite: tuple[str, ...]) -> bool | None:
    value = _bare_yes_no(t)
    if value is not None:
        return value
    # The words the question is about may open the answer, with or without a particle
    # (「非課税です」, 「生活保護を受けてます」); an opposite word inverts it.
    for words, inverts in ((about, False), (opposite, True)):
        for word in sorted(words, key=len, reverse=True):
            w = compact(word)
            if not w or not t.startswith(w):
                continue
            rest = t[len(w):]
            particle = re.match(_OBJECT_PARTICLE, rest)
            for remainder in (rest, rest[particle.end():] if particle else rest):
                value = True if not remainder else _bare_yes_no(remainder)
                if value is not None:
                    return value != inverts
    return None


def _bare_yes_no(t: str) -> bool | None:
    if _YES_BARE.match(t) or _YES_VERB.match(t):
        return True
    if _NO_BARE.match(t) or _NO_VERB.match(t):
        return False
    return None


# --------------------------------------------------------------------------- numbers

_KANJI_DIGITS: Final[dict[str, int]] = {
    "〇": 0, "零": 0, "一": 1, "壱": 1, "二": 2, "弐": 2, "三": 3, "参": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_SMALL_UNITS: Final[dict[str, int]] = {"十": 10, "拾": 10, "百": 100, "千": 1000}
_BIG_UNITS: Final[dict[str, int]] = {"万": 10_000, "萬": 10_000, "億": 100_000_000}
_NUMBER_CHARS: Final[str] = "0-9.," + "".join(_KANJI_DIGITS) + "".join(_SMALL_UNITS) + "".join(_BIG_UNITS)
_NUMBER_RUN: Final[re.Pattern[str]] = re.compile(f"[{_NUMBER_CHARS}]+")
_TOKEN: Final[re.Pattern[str]] = re.compile(
    r"(?P<arabic>[0-9]+(?:\.[0-9]+)?)|(?P<kanji>[" + "".join(_KANJI_DIGITS) + r"]+)|(?P<unit>.)"
)


def _parse_number(run: str, *, bare_decimal: bool = False) -> Fraction | None:
    """Parse a run of Arabic and/or kanji numerals: 71000, 7万1千, 1.5万, 二十五万三千, 一〇〇〇〇.

    A decimal point is read only before a unit ("1.5万") unless ``bare_decimal`` ("0.3"),
    so that "71.000" is not taken for 71.

    Returns None when the run is not a well-formed number.
    """
    run = run.rstrip(".,").lstrip(",")
    # Commas only group thousands ("71,000"): a digit before, exactly three digits after.
    if re.search(r"(?<![0-9]),|,(?![0-9]{3}(?![0-9]))", run):
        return None
    run = run.replace(",", "")
    if not run or run.count(".") > 1:
        return None
    total = Fraction(0)
    section = Fraction(0)  # below 万
    current: Fraction | None = None  # a numeral waiting for its unit
    last_small: int | None = None  # the last 十/百/千 in this section
    last_big: int | None = None  # the last 万/億 seen
    seen_any = False
    current_decimal = False
    for match in _TOKEN.finditer(run):
        if match.group("arabic") is not None or match.group("kanji") is not None:
            if current is not None:
                return None
            if match.group("arabic") is not None:
                current = Fraction(match.group("arabic"))
                current_decimal = "." in match.group("arabic")
            else:
                current = Fraction(int("".join(str(_KANJI_DIGITS[c]) for c in match.group("kanji"))))
                current_decimal = False
            seen_any = True
            continue
        unit = match.group("unit")
        if unit in _SMALL_UNITS:
            value = _SMALL_UNITS[unit]
            if last_small is not None and value >= last_small:
                return None
            section += (current if current is not None else 1) * value
            current = None
            last_small = value
            seen_any = True
        elif unit in _BIG_UNITS:
            value = _BIG_UNITS[unit]
            if current is not None and last_small is not None and current >= last_small:
                return None
            amount = section + (current or 0)
            if amount == 0 and current is None:
                return None  # "万" with nothing before it
            if last_big is not None and (value >= last_big or amount * value >= last_big):
                return None
            total += amount * value
            section, current, last_small, last_big = Fraction(0), None, None, value
            seen_any = True
        else:
            return None
    if not seen_any:
        return None
    if current is not None and current_decimal and not bare_decimal:
        return None
    if current is not None and last_small is not None and current >= last_small:
        return None  # "千5000"
    rest = section + (current or 0)
    if last_big is not None and rest >= last_big:
        return None  # "25万30000"
    return total + rest


_NEGATIVE: Final[re.Pattern[str]] = re.compile(r"(^|[^0-9])(-|まいなす|▲|△)\s*[0-9" + "".join(_KANJI_DIGITS) + "]")
_ZERO_WORDS: Final[re.Pattern[str]] = re.compile(
    r"(なし|ない|無し|無い|なかった|無収入|ぜろ|none|nothing|zero|nil|ありません|ないです)")
# Units that turn a number into something other than yen.
_NOT_YEN_UNIT: Final[re.Pattern[str]] = re.compile(
    r"^(割|%|ぱーせんと|か月|ヶ月|ヵ月|け月|箇月|ヶ|月|年|日|歳|才|人|名|回|件|時|分|秒|個|つ|枚|/|:|\.|-|番)"
)


def _single_number(t: str, *, bare_decimal: bool = False) -> tuple[Fraction, str, str] | Invalid | None:
    """The one number in ``t`` with the text before and after it.

    Returns None when there is no number, Invalid when there are several or it is malformed.
    """
    runs = [m for m in _NUMBER_RUN.finditer(t) if m.group().strip(".,")]
    if not runs:
        return None
    if len(runs) > 1:
        return Invalid("")
    match = runs[0]
    value = _parse_number(match.group(), bare_decimal=bare_decimal)
    if value is None:
        return Invalid("")
    return value, t[: match.start()], t[match.end() :]


def parse_yen(text: Text | str) -> int | Unknown | Invalid:
    """Read an amount of yen.

    Accepts "７万円", "7万1千円", "71,000", "71000円", "約25万", "25万くらい", "二十五万三千",
    "1.5万", "25万円程度", "0"; "なし" / "ない" / "ゼロ" mean 0 yen (e.g. no income).

    Args:
        text: the answer.

    Returns:
        The amount in whole yen (0 to 10億), ``UNKNOWN`` or ``Invalid(hint)``.
    """
    t = _start(text, HINT_YEN)
    if not isinstance(t, str):
        return t
    if _NEGATIVE.search(t):
        return Invalid(HINT_YEN_RANGE)
    found = _single_number(t)
    if found is None:
        return 0 if _ZERO_WORDS.search(t) else Invalid(HINT_YEN)
    if isinstance(found, Invalid):
        return Invalid(HINT_YEN)
    value, _before, after = found
    if _NOT_YEN_UNIT.match(after):
        return Invalid(HINT_YEN)
    if value.denominator != 1:
        return Invalid(HINT_YEN)
    if not 0 <= value <= MAX_YEN:
        return Invalid(HINT_YEN_RANGE)
    return int(value)


# --------------------------------------------------------------------------- lists of amounts

HINT_YEN_LIST: Final[str] = (
    "金額を読点（、）や改行で区切って送ってください（例：40,000、30,000、35,000）。かからなかった月は0で大丈夫です。"
)
# What separates the items of a list of amounts: 、 ・ / ; | と, newlines and spaces. A comma is
# a separator only when it does not group thousands (see ``_split_amounts``).
_AMOUNT_SEPARATORS: Final[re.Pattern[str]] = re.compile(r"[、・/;|]|と|\s+|(?<=円)")
# A comma grouping thousands, as a person reads it: a digit before, exactly three digits after,
# then no further digit ("40,000,30,000" is 40,000 and 30,000).
_THOUSANDS_COMMA: Final[re.Pattern[str]] = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")


def _split_amounts(text: Text) -> list[str]:
    """Split a typed list of amounts into the pieces a person would read as separate amounts."""
    t = _kana_units(text.spaced)
    t = _THOUSANDS_COMMA.sub("", t)  # what is left of the commas separates items
    t = t.replace(",", "、")
    return [p for p in _AMOUNT_SEPARATORS.split(t) if p and p.strip()]


def parse_yen_list(text: Text | str, *, max_items: int = 12) -> list[int] | Unknown | Invalid:
    """Read a list of amounts of yen, e.g. monthly medical totals.

    Items may be separated by 、 , ・ / ; newlines or spaces, or follow each other after 円:
    "40,000、30,000、35,000", "40,000,30,000,35,000" (a comma followed by exactly three
    digits groups thousands; any other comma separates), "4万円 3万円 3万5千円",
    "40000／30000", "四万、三万". Each item is read like ``parse_yen`` ("なし" is 0).

    Args:
        text: the answer.
        max_items: the most items accepted.

    Returns:
        The amounts in whole yen, in the order typed; ``UNKNOWN``; or ``Invalid(hint)``.
    """
    if not isinstance(text, (str, Text)):
        return Invalid(HINT_YEN_LIST)
    said = as_text(text)
    if len(said.raw) > MAX_ANSWER_CHARS * 3:
        return Invalid(HINT_TOO_LONG + HINT_YEN_LIST)
    pieces = _split_amounts(said)
    if not pieces:
        return Invalid(HINT_YEN_LIST)
    if len(pieces) == 1 and is_unknown_answer(pieces[0]):
        return UNKNOWN
    if len(pieces) > max_items:
        return Invalid(f"{max_items}か月分までの金額を送ってください。" + HINT_YEN_LIST)
    values: list[int] = []
    for piece in pieces:
        value = parse_yen(piece)
        if not isinstance(value, int):
            return Invalid(HINT_YEN_LIST)
        values.append(value)
    return values


# --------------------------------------------------------------------------- months

_TWELVE: Final[re.Pattern[str]] = re.compile(r"(毎月|1年|一年|12か月|十二か月|ずっと|全部|すべて|全て|all)")
_HALF_YEAR: Final[re.Pattern[str]] = re.compile(r"半年")
_NO_TIMES: Final[re.Pattern[str]] = re.compile(r"(一度も|1度も|一回も|1回も|ひと月も|一月も|1月も|一か月も|1か月も)")
# Native Japanese counts, as typed in kana: ふたつき (2か月), みつき, ふたつ, ろっかげつ, はんとし.
_KANA_COUNTS: Final[tuple[tuple[str, str], ...]] = (
    ("はんとし", "半年"), ("いちねん", "1年"),
    ("ひとつき", "1か月"), ("ひと月", "1か月"), ("ふたつき", "2か月"), ("ふた月", "2か月"),
    ("みつき", "3か月"), ("み月", "3か月"), ("よつき", "4か月"), ("よ月", "4か月"),
    ("いっかげつ", "1か月"), ("にかげつ", "2か月"), ("さんかげつ", "3か月"), ("よんかげつ", "4か月"),
    ("ごかげつ", "5か月"), ("ろっかげつ", "6か月"), ("ななかげつ", "7か月"), ("はちかげつ", "8か月"),
    ("はっかげつ", "8か月"), ("きゅうかげつ", "9か月"), ("じゅっかげつ", "10か月"), ("じっかげつ", "10か月"),
    ("じゅういっかげつ", "11か月"), ("じゅうにかげつ", "12か月"),
    ("ひとつ", "1"), ("ふたつ", "2"), ("みっつ", "3"), ("よっつ", "4"), ("いつつ", "5"), ("むっつ", "6"),
    ("ななつ", "7"), ("やっつ", "8"), ("ここのつ", "9"),
)  # fmt: skip


def _kana_count(t: str) -> str:
    """Replace a count written in kana by digits (longest words first: じゅういっかげつ before いっかげつ)."""
    for word, digits in sorted(_KANA_COUNTS, key=lambda pair: len(pair[0]), reverse=True):
        t = t.replace(word, digits)
    return t


_COUNT_UNIT: Final[re.Pattern[str]] = re.compile(r"^(か月|ヶ月|ヵ月|け月|箇月|ヶ|月|回|つ|度)?")


def parse_count(text: Text | str) -> int | Unknown | Invalid:
    """Read a number of months (0–12), e.g. months over 50,000円 in the last 12.

    Accepts "6", "６か月", "六か月", "6ヶ月", "6かげつ", "ふたつき" (2), "みっつ" (3),
    "半年" / "はんとし" (6), "ない" / "なし" / "ゼロ" (0), "1年" / "毎月" (12). Button values: "0" … "12", "unknown".

    Args:
        text: the answer.

    Returns:
        0 to 12, ``UNKNOWN`` or ``Invalid(hint)``.
    """
    t = _start(text, HINT_COUNT)
    if not isinstance(t, str):
        return t
    t = _kana_count(t)
    if _NEGATIVE.search(t):
        return Invalid(HINT_COUNT_RANGE)
    if _NO_TIMES.search(t) and _ZERO_WORDS.search(t):
        return 0
    found = _single_number(t)
    if found is None:
        if _TWELVE.search(t):
            return 12
        if _HALF_YEAR.search(t):
            return 6
        return 0 if _ZERO_WORDS.search(t) else Invalid(HINT_COUNT)
    if isinstance(found, Invalid):
        return Invalid(HINT_COUNT)
    value, _before, after = found
    if re.match(r"^年", after):
        return 12 if value == 1 else Invalid(HINT_COUNT_RANGE)
    unit = _COUNT_UNIT.match(after)
    rest = after[unit.end() :] if unit else after
    if re.match(r"^[割%円/:.\-年日歳人]", rest) or value.denominator != 1:
        return Invalid(HINT_COUNT)
    if not 0 <= value <= 12:
        return Invalid(HINT_COUNT_RANGE)
    return int(value)


# --------------------------------------------------------------------------- rate

_RATES: Final[dict[Fraction, Rate]] = {Fraction(1, 10): 0.1, Fraction(2, 10): 0.2, Fraction(3, 10): 0.3}


def parse_rate(text: Text | str) -> Rate | Unknown | Invalid:
    """Read the usual insurance copay rate.

    "3割" / "３割" / "30%" / "0.3" / "3" → 0.3; likewise 2割 → 0.2 and 1割 → 0.1.
    Button values: "0.3", "0.2", "0.1", "unknown".

    Args:
        text: the answer.

    Returns:
        0.1, 0.2 or 0.3, ``UNKNOWN`` or ``Invalid(hint)``.
    """
    t = _start(text, HINT_RATE)
    if not isinstance(t, str):
        return t
    found = _single_number(t, bare_decimal=True)
    if not isinstance(found, tuple) or _NEGATIVE.search(t):
        return Invalid(HINT_RATE)
    value, _before, after = found
    if after.startswith("割"):
        rate = value / 10
    elif after.startswith(("%", "ぱーせんと")):
        rate = value / 100
    elif re.match(r"^[^円月年日人回か]*$", after):
        if value in _RATES:
            rate = value
        elif value in (1, 2, 3):
            rate = value / 10
        elif value in (10, 20, 30):
            rate = value / 100
        else:
            return Invalid(HINT_RATE)
    else:
        return Invalid(HINT_RATE)
    return _RATES.get(rate, Invalid(HINT_RATE))


# --------------------------------------------------------------------------- household caps

_NOBODY: Final[re.Pattern[str]] = re.compile(
    r"(いない|いません|おりません|居ない|居ません|なし|無し|ない|ぜろ|none|nobody|0人"
    r"|ひとりも|一人も|1人も|自分だけ|私だけ|わたしだけ|本人のみ|本人だけ)"
)
# A comma followed by exactly three digits groups thousands; any other comma separates items.
# 「夫が5000円で娘が2500円」: で after 円 separates when another amount follows (「10,000円です」 is one).
_LIST_SEPARATOR: Final[re.Pattern[str]] = re.compile(
    r",(?![0-9]{3}(?![0-9]))|と|、|・|/|&|\+|;|and|および|及び|それと|(?<=円)で(?=.*[0-9一二三四五六七八九十百千万])")
# Someone else in the household named as a recipient: 「夫も受給者です」「妻と子」「娘が小慢の受給者証を持ってる」.
_FAMILY: Final[re.Pattern[str]] = re.compile(
    r"夫|妻|主人|旦那|だんな|嫁|配偶者|息子|娘|子ども|子供|こども|子|長男|長女|次男|次女|父|母|兄|弟|姉|妹|祖父|祖母|家族"
)
_RECIPIENT_WORDS: Final[re.Pattern[str]] = re.compile(r"受給者|受給し|持って|もって|もらって|小慢|小児慢性|指定難病|難病")
# 「はい」「います」「1人います」 to 「…持っている方はいますか？」: someone, amount not said.
_SOMEONE: Final[re.Pattern[str]] = re.compile(
    r"^(?:はい|うん|ええ|yes|いる|います|いるよ|いますよ|おります|ある|あります|いて|いるけど|いますが)(?:[、,。!]|です|$)"
)
_PEOPLE_COUNT: Final[re.Pattern[str]] = re.compile(r"(?P<n>[0-9]{1,2}|一|二|三|四|五|ひと|ふた)(?:人|り)")
_PEOPLE_WORDS: Final[dict[str, int]] = {"一": 1, "ひと": 1, "二": 2, "ふた": 2, "三": 3, "四": 4, "五": 5}
# 「いるかわからない」「いるかどうか」: whether there is anyone is what is not known.
_WHETHER: Final[re.Pattern[str]] = re.compile(r"(いる|います|ある|あります|持って(い)?る)か")


@dataclass(frozen=True)
class CapsNeeded(Invalid):
    """Someone else in the household is a recipient, but the cap was not said.

    The re-ask asks for it; ``people`` is how many such recipients were named (「夫と娘」 → 2).
    A following わからない means "``people`` recipients whose caps are unknown".
    """

    people: int = 1


def _cap_options(allowed: frozenset[int]) -> tuple[tuple[str, str], ...]:
    return tuple((f"{cap:,}円", str(cap)) for cap in sorted(allowed))


def _hint_cap_values(allowed: frozenset[int]) -> str:
    listed = "・".join(f"{cap:,}円" for cap in sorted(allowed))
    return (
        f"受給者証の月額上限額は {listed} のどれかです。受給者証に書かれた金額を下から選ぶか、"
        "『10,000円』のように送ってください。わからなければ『わからない』と送ってください。"
    )


def other_recipients(text: Text | str) -> int:
    """How many other recipients the answer names without giving their caps (0 when none).

    「夫も受給者です」 → 1, 「夫と娘」 → 2, 「2人います」 → 2, 「はい」 → 1; 「いない」 → 0.
    """
    if not isinstance(text, (str, Text)):
        return 0
    t = as_text(text).compact[:MAX_ANSWER_CHARS]
    if _WHETHER.search(t):
        return 0
    counted = _PEOPLE_COUNT.search(t)
    if counted:
        n = counted.group("n")
        people = int(n) if n.isdigit() else _PEOPLE_WORDS.get(n, 1)
        return people if 0 < people <= 10 else 0
    family = {m.group() for m in _FAMILY.finditer(t)}
    if family:
        return min(len(family), 10)
    if _SOMEONE.search(t) or _RECIPIENT_WORDS.search(t):
        return 1
    return 0


def parse_household_caps(text: Text | str, allowed: frozenset[int] | None = None) -> list[int | None] | Unknown | Invalid:
    """Read the caps on the other household members' certificates.

    "いない" / "いません" / "なし" → []; "10,000円" → [10000]; "5000円と2500円" or
    "5000、2500" → [5000, 2500]. Each cap must be one that exists (``allowed``); any other
    amount ("1", "６", "7000円") is re-asked with the existing caps as buttons.
    Someone named without an amount (「夫も受給者です」, 「はい」) is ``CapsNeeded`` (re-ask
    for the amount); named together with わからない (「夫も受給者ですが金額はわからない」) it
    gives ``[None]``: one recipient whose cap is unknown. Button values: "none", "unknown",
    and the caps ("10000").

    Args:
        text: the answer.
        allowed: the caps that exist; by default every cap above 0 of the project's cap
            table (``knowledge/tables/copay.yaml``: 指定難病 and 小児慢性特定疾病, all columns).

    Returns:
        A list of caps in yen (``None`` for a cap not known), ``UNKNOWN`` or ``Invalid(hint)``.
    """
    if allowed is None:
        # The table, not a copy of it: the caps that exist are those knowledge/tables/copay.yaml lists.
        from handlers.calc.copay import existing_caps

        allowed = existing_caps()
    if not isinstance(text, (str, Text)):
        return Invalid(HINT_HOUSEHOLD_CAPS)
    # Whitespace separates items here ("5000 2500"), so split before normalising it away.
    spaced = re.sub(r"(?<=[0-9円万千])\s+(?=[0-9])", "、", _kana_units(as_text(text).spaced))
    t = _start(spaced, HINT_HOUSEHOLD_CAPS)
    if t is UNKNOWN:
        # 「夫も受給者ですが、上限額はわからない」: someone is, the amount is what is not known.
        people = other_recipients(text)
        return [None] * people if people else UNKNOWN
    if not isinstance(t, str):
        return t
    t = _strip_trailing(t)
    if t in ("none", "0", "0円", "0人"):
        return []
    amounts = _PEOPLE_COUNT.sub("", t)
    has_amount = bool(_NUMBER_RUN.search(amounts.replace("一", "")) or re.search(r"[0-9]", amounts))
    # "いない", "一人もいない", "0人" — but not "5000円しかない" (an amount is given).
    if _NOBODY.search(t) and not re.search(r"[0-9]{2,}|[万千百]", t):
        return []
    if not has_amount:
        people = other_recipients(t)
        if people:
            return CapsNeeded(
                "その方の受給者証にある月額上限額を教えてください（下から選べます）。"
                "わからなければ『わからない』と送ってください。同じ上限額と仮定した目安をお示しします。",
                _cap_options(allowed),
                people=people,
            )
    # 「母も受給者証を持っていて、上限は2,500円です」: a clause without a figure is words around the answer.
    parts = [p for p in _LIST_SEPARATOR.split(t) if p and re.search("[0-9十百千万〇" + "".join(_KANJI_DIGITS) + "]", p)]
    if not parts or len(parts) > 10:
        return Invalid(HINT_HOUSEHOLD_CAPS)
    caps: list[int | None] = []
    for part in parts:
        value = parse_yen(part)
        if not isinstance(value, int):
            return Invalid(HINT_HOUSEHOLD_CAPS)
        if value not in allowed:
            return Invalid(_hint_cap_values(allowed), _cap_options(allowed))
        caps.append(value)
    return caps


# --------------------------------------------------------------------------- dates

# (name, first day, first Gregorian year - 1). Dates after an era ended are still read
# arithmetically (old forms printed e.g. 平成32年), but not dates before it began.
_ERAS: Final[dict[str, tuple[date, int]]] = {
    "令和": (date(2019, 5, 1), 2018),
    "r": (date(2019, 5, 1), 2018),
    "平成": (date(1989, 1, 8), 1988),
    "h": (date(1989, 1, 8), 1988),
    "昭和": (date(1926, 12, 25), 1925),
    "s": (date(1926, 12, 25), 1925),
}
_MIN_YEAR: Final[int] = 1900
_MAX_YEAR: Final[int] = 2200

_SEP: Final[str] = r"[年/\-.]"
_SEP2: Final[str] = r"[月/\-.]"
_ERA_DATE: Final[re.Pattern[str]] = re.compile(
    r"(?<![a-z])(?P<era>令和|平成|昭和|r|h|s)(?P<year>[0-9]{1,2}|元)"
    + _SEP
    + r"(?P<month>[0-9]{1,2})"
    + _SEP2
    + r"(?P<day>[0-9]{1,2})(?![0-9])日?"
)
_WESTERN_DATE: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9])(?P<year>[0-9]{4})" + _SEP + r"(?P<month>[0-9]{1,2})" + _SEP2 + r"(?P<day>[0-9]{1,2})(?![0-9])日?"
)
_COMPACT_DATE: Final[re.Pattern[str]] = re.compile(r"^(?P<year>[0-9]{4})(?P<month>[0-9]{2})(?P<day>[0-9]{2})$")
_MONTH_END: Final[re.Pattern[str]] = re.compile(
    r"(?:(?P<era>令和|平成|昭和|r|h|s)(?P<eyear>[0-9]{1,2}|元)" + _SEP + r"|(?<![0-9])(?P<year>[0-9]{4})" + _SEP + r")?"
    r"(?<![0-9])(?P<month>[0-9]{1,2})月?末日?"
)
_MONTH_DAY: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9.])(?P<month>[0-9]{1,2})[月/\-.](?P<day>[0-9]{1,2})(?![0-9.])日?"
)
_YEAR_MONTH_ONLY: Final[re.Pattern[str]] = re.compile(
    r"((令和|平成|昭和)([0-9]{1,2}|元)年|[0-9]{1,4}年|(r|h|s)[0-9]{1,2}[./])[0-9]{1,2}月?$"
)
_WEEKDAY: Final[re.Pattern[str]] = re.compile(r"\(([月火水木金土日])(曜日?)?\)|[月火水木金土日]曜日?$")
_KANJI_NUMBER: Final[re.Pattern[str]] = re.compile("[" + "".join(_KANJI_DIGITS) + "十]+")


def _kanji_to_arabic(t: str) -> str:
    """Turn kanji numerals into Arabic ones (令和九年三月三十一日 → 令和9年3月31日)."""

    def repl(match: re.Match[str]) -> str:
        value = _parse_number(match.group())
        return str(value) if value is not None and value.denominator == 1 else match.group()

    return _KANJI_NUMBER.sub(repl, t)


# Dates written in kana: れいわ8ねん4がつ1にち, へいせいがんねん, 4がつついたち.
_KANA_DATE_WORDS: Final[tuple[tuple[str, str], ...]] = (
    ("れいわ", "令和"), ("へいせい", "平成"), ("しょうわ", "昭和"), ("がんねん", "元年"),
    ("げつまつ", "月末"), ("がつまつ", "月末"), ("ついたち", "1日"), ("ふつか", "2日"), ("みっか", "3日"),
    ("よっか", "4日"), ("いつか", "5日"), ("むいか", "6日"), ("なのか", "7日"), ("ようか", "8日"),
    ("ここのか", "9日"), ("とおか", "10日"), ("はつか", "20日"), ("ねん", "年"), ("がつ", "月"), ("にち", "日"),
)  # fmt: skip
# Days said relative to today (read before kanji numerals: 一昨日 is not 1昨日).
_RELATIVE_DAYS: Final[dict[str, int]] = {
    "今日": 0, "きょう": 0, "本日": 0, "today": 0,
    "昨日": -1, "きのう": -1, "yesterday": -1,
    "一昨日": -2, "おととい": -2, "おとつい": -2,
    "明日": 1, "あした": 1, "あす": 1, "tomorrow": 1,
    "明後日": 2, "あさって": 2,
}  # fmt: skip
_RELATIVE_DAY: Final[re.Pattern[str]] = re.compile(
    "^(?P<word>" + "|".join(sorted(_RELATIVE_DAYS, key=len, reverse=True)) + r")"
    r"(?:です|でした|だ|だよ|の予定|予定です|予定|になります|に出します|に出しました|出した|出します)?$"
)
# A year without an era (「8年4月1日」): read as 令和, or as 20xx when two digits, whichever
# falls within this many years of today (so 「8年」 is 令和8年 and 「26年」 is 2026年).
_ERALESS_DATE: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9a-z令和平成昭元])(?P<year>[0-9]{1,2})年(?P<month>[0-9]{1,2})月(?P<day>[0-9]{1,2})(?![0-9])日?"
)
_ERALESS_YEARS_BACK: Final[int] = 10
_ERALESS_YEARS_AHEAD: Final[int] = 5

Prefer = Literal["future", "past", "nearest"]
# The most days a month can have (February in a leap year).
_DAYS_IN_MONTH: Final[dict[int, int]] = {m: calendar.monthrange(2024, m)[1] for m in range(1, 13)}


@dataclass(frozen=True)
class ImpossibleDate(Invalid):
    """A date that does not exist (2月30日, 13月, 令和0年); the hint says so, kindly."""


def _no_such_date(year: int | None, month: int, day: int | None) -> ImpossibleDate:
    if not 1 <= month <= 12:
        return ImpossibleDate(f"{month}月という月はありません。" + HINT_DATE)
    if day is not None and month == 2 and day == 29 and year is not None and not calendar.isleap(year):
        return ImpossibleDate(f"{year}年はうるう年ではないので、2月29日はありません。" + HINT_DATE)
    return ImpossibleDate(f"{month}月{day}日という日はありません。" + HINT_DATE)


def _make_date(year: int, month: int, day: int) -> date | None:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _dated(year: int, month: int, day: int) -> date | Invalid:
    """The date, or why it cannot be one: no such day (ImpossibleDate), or a year out of range."""
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return Invalid(HINT_DATE)
    found = _make_date(year, month, day)
    return found if found is not None else _no_such_date(year, month, day)


def _era_year(era: str, year_text: str) -> int | None:
    year = 1 if year_text == "元" else int(year_text)
    if year < 1:
        return None
    return _ERAS[era][1] + year


_ERA_NAMES: Final[dict[str, str]] = {"令和": "令和", "r": "令和", "平成": "平成", "h": "平成", "昭和": "昭和", "s": "昭和"}


def _no_such_era_year(era: str) -> ImpossibleDate:
    name = _ERA_NAMES[era]
    first = _ERAS[era][0]
    return ImpossibleDate(
        f"{name}0年という年はありません（{name}の最初の年は{name}元年＝{first.year}年です）。" + HINT_DATE
    )


def _only_this(t: str, match: re.Match[str]) -> bool:
    """No other digits around the date (so "3/31と4/30" or "2027/3/31 10:00" are not read)."""
    rest = t[: match.start()] + t[match.end() :]
    return not re.search(r"[0-9]", rest)


def _occurrence(month: int, day: int | None, today: date, prefer: Prefer) -> date | None:
    """The date with this month and day (or month end, ``day`` None) that the user most likely means.

    ``future``: the next one on or after today; ``past``: the last one on or before today;
    ``nearest``: whichever is closer (the later one on a tie).
    """
    candidates: list[date] = []
    for year in range(max(today.year - 9, _MIN_YEAR), min(today.year + 9, _MAX_YEAR) + 1):
        last = calendar.monthrange(year, month)[1]
        candidate = _make_date(year, month, last if day is None else day)
        if candidate is not None:
            candidates.append(candidate)
    future = [c for c in candidates if c >= today]
    past = [c for c in candidates if c <= today]
    if prefer == "future":
        return min(future, default=None)
    if prefer == "past":
        return max(past, default=None)
    options = [c for c in (max(past, default=None), min(future, default=None)) if c is not None]
    return min(options, key=lambda c: (abs((c - today).days), -c.toordinal()), default=None)


def _eraless_year(year_text: str, today: date) -> int | None:
    """The year a person means by 「8年」 or 「26年」 without an era, or None when unclear."""
    n = int(year_text)
    candidates = {_ERAS["令和"][1] + n} if n >= 1 else set()
    if len(year_text) == 2:
        candidates.add(2000 + n)
    near = [y for y in candidates if today.year - _ERALESS_YEARS_BACK <= y <= today.year + _ERALESS_YEARS_AHEAD]
    return near[0] if len(near) == 1 else None


def _read_kana(t: str) -> str:
    for word, written in _KANA_DATE_WORDS:
        t = t.replace(word, written)
    return t


# Months and spans said relative to today: 「来月の10日」「来月末」「先月」「3か月前」「半年後」「去年の4月1日」.
_RELATIVE_MONTH_WORDS: Final[dict[str, int]] = {
    "再来月": 2, "さらいげつ": 2, "来月": 1, "らいげつ": 1, "今月": 0, "こんげつ": 0,
    "先月": -1, "せんげつ": -1, "先々月": -2, "せんせんげつ": -2,
}  # fmt: skip
_RELATIVE_YEAR_WORDS: Final[dict[str, int]] = {
    "再来年": 2, "さらいねん": 2, "来年": 1, "らいねん": 1, "今年": 0, "ことし": 0,
    "去年": -1, "昨年": -1, "きょねん": -1, "一昨年": -2, "おととし": -2,
}  # fmt: skip
_ABOUT: Final[str] = r"(?:ごろ|頃|くらい|ぐらい|あたり|位)?(?:です|でした|だ|の予定|予定)?"
_RELATIVE_MONTH: Final[re.Pattern[str]] = re.compile(
    "^(?P<word>" + "|".join(sorted(_RELATIVE_MONTH_WORDS, key=len, reverse=True)) + r")の?"
    r"(?:(?P<day>[0-9]{1,2})日|(?P<end>末日|末|終わり|おわり))?" + _ABOUT + "$")
_RELATIVE_YEAR: Final[re.Pattern[str]] = re.compile(
    "^(?P<word>" + "|".join(sorted(_RELATIVE_YEAR_WORDS, key=len, reverse=True)) + r")の?"
    r"(?P<month>[0-9]{1,2})月(?:(?P<day>[0-9]{1,2})日|(?P<end>末日|末))?" + _ABOUT + "$")
_RELATIVE_SPAN: Final[re.Pattern[str]] = re.compile(
    r"^(?P<n>[0-9]{1,2}|半)(?P<unit>年|か月|ヶ月|ヵ月|カ月|箇月|かげつ|週間|しゅうかん|日)(?:ほど|くらい|ぐらい)?"
    r"(?P<dir>前|まえ|後|ご|あと|先|さき)" + _ABOUT + "$")


def _month_shift(today: date, months: int) -> tuple[int, int]:
    index = today.year * 12 + today.month - 1 + months
    return index // 12, index % 12 + 1


def _relative_date(t: str, today: date) -> date | Invalid | None:
    """A date said relative to today (see ``_RELATIVE_MONTH``); None when ``t`` is none of those.

    A month without its day (「来月」) is asked back with the month named: a date of expiry or of
    diagnosis is a day, and guessing the 1st or the last would move a deadline."""
    match = _RELATIVE_MONTH.match(t)
    year_match = _RELATIVE_YEAR.match(t) if match is None else None
    if match is not None or year_match is not None:
        if match is not None:
            year, month = _month_shift(today, _RELATIVE_MONTH_WORDS[match.group("word")])
        else:
            assert year_match is not None
            match = year_match
            year, month = today.year + _RELATIVE_YEAR_WORDS[match.group("word")], int(match.group("month"))
            if not 1 <= month <= 12:
                return _no_such_date(year, month, None)
        if match.group("end"):
            return date(year, month, calendar.monthrange(year, month)[1])
        if match.group("day"):
            return _dated(year, month, int(match.group("day")))
        return Invalid(f"{year}年{month}月の何日でしょうか（月末なら『{month}月末』）。" + HINT_DATE)
    match = _RELATIVE_SPAN.match(_kana_count(t))  # 「さんかげつまえ」, 「はんとしご」
    if match is None:
        return None
    sign = -1 if match.group("dir") in ("前", "まえ") else 1
    n, unit = match.group("n"), match.group("unit")
    if n == "半":
        if unit != "年":
            return None
        n, unit = "6", "か月"
    count = int(n) * sign
    if unit == "日":
        return today + timedelta(days=count)
    if unit in ("週間", "しゅうかん"):
        return today + timedelta(weeks=count)
    months = count * 12 if unit == "年" else count
    year, month = _month_shift(today, months)
    return date(year, month, min(today.day, calendar.monthrange(year, month)[1]))


def parse_date(text: Text | str, today: date, *, prefer: Prefer = "future") -> date | Unknown | Invalid:
    """Read a date.

    Accepts 2027年3月31日, 2027/3/31, 2027-03-31, 2027.3.31, 20270331, 令和9年3月31日,
    R9.3.31, r9/3/31, 平成31年4月30日, H31.4.30, 令和元年5月1日, 令和九年三月三十一日,
    れいわ9ねん3がつ31にち, 「9年3月31日」 (no era: 令和9年, or 20xx for two digits, whichever
    is within 10 years before or 5 after today); 今日, 昨日, おととい, 明日, あさって; 来月の10日,
    来月末, 先月の20日, 去年の4月1日, 3か月前, 半年後, 2週間前 (a month without its day is asked back);
    "3月末" / "3月末日" (end of that month) and "3/31" (year left out): see ``prefer``.
    Button value: "unknown".

    Args:
        text: the answer.
        today: the current date in Japan (a parameter, the clock is not read here).
        prefer: for a date typed without a year, which year: ``"future"`` the next such day on
            or after today (an expiry date), ``"past"`` the last one on or before today (a
            diagnosis date), ``"nearest"`` the closer one (an application date).

    Returns:
        The date, ``UNKNOWN`` or ``Invalid(hint)``. A date that does not exist (2027/2/30,
        13月1日, 令和0年) is an ``ImpossibleDate`` (an ``Invalid``) whose hint says so; bare
        numbers ("5", "70000") are Invalid asking for a date.
    """
    t = _start(text, HINT_DATE)
    if not isinstance(t, str):
        return t
    t = _strip_trailing(t)
    relative = _RELATIVE_DAY.match(t)
    if relative:
        return today + timedelta(days=_RELATIVE_DAYS[relative.group("word")])
    t = _WEEKDAY.sub("", _kanji_to_arabic(_read_kana(t)))
    relative_date = _relative_date(t, today)
    if relative_date is not None:
        return relative_date

    match = _ERA_DATE.search(t)
    if match and _only_this(t, match):
        era = match.group("era")
        year = _era_year(era, match.group("year"))
        if year is None:
            return _no_such_era_year(era)
        dated = _dated(year, int(match.group("month")), int(match.group("day")))
        if isinstance(dated, date) and dated < _ERAS[era][0]:
            first = _ERAS[era][0]
            return ImpossibleDate(
                f"{_ERA_NAMES[era]}は{first.year}年{first.month}月{first.day}日からなので、その日付はありません。" + HINT_DATE
            )
        return dated
    match = _WESTERN_DATE.search(t) or _COMPACT_DATE.search(t)
    if match and _only_this(t, match):
        return _dated(int(match.group("year")), int(match.group("month")), int(match.group("day")))
    match = _ERALESS_DATE.search(t)
    if match and _only_this(t, match):
        year = _eraless_year(match.group("year"), today)
        if year is None:
            return Invalid("何年のことか、『令和』『平成』などの元号をつけるか、西暦4桁で教えてください。" + HINT_DATE)
        return _dated(year, int(match.group("month")), int(match.group("day")))
    match = _MONTH_END.search(t)
    if match and _only_this(t, match):
        month = int(match.group("month"))
        if not 1 <= month <= 12:
            return _no_such_date(None, month, None)
        if match.group("era"):
            year = _era_year(match.group("era"), match.group("eyear"))
            if year is None:
                return _no_such_era_year(match.group("era"))
        elif match.group("year"):
            year = int(match.group("year"))
        else:
            found = _occurrence(month, None, today, prefer)
            return found if found is not None else Invalid(HINT_DATE)
        found = _make_date(year, month, 1)
        if found is None:
            return Invalid(HINT_DATE)
        return found.replace(day=calendar.monthrange(year, month)[1])
    match = _MONTH_DAY.search(t)
    if match and _only_this(t, match):
        month, day = int(match.group("month")), int(match.group("day"))
        if not 1 <= month <= 12 or not 1 <= day <= 31 or day > _DAYS_IN_MONTH[month]:
            return _no_such_date(None, month, day)
        found = _occurrence(month, day, today, prefer)
        return found if found is not None else Invalid(HINT_DATE)
    if _YEAR_MONTH_ONLY.search(t):
        return Invalid(HINT_DATE_DAY)
    return Invalid(HINT_DATE_NEEDED)


# --------------------------------------------------------------------------- months with amounts (cost log)

HINT_MONTH_AMOUNTS: Final[str] = (
    "月と金額を組にして送ってください（例：「4月 52,000円、5月 61,000円」）。12か月分まで、まとめて送れます。"
)
HINT_MONTH_FUTURE: Final[str] = "まだ来ていない月は記録できません。" + HINT_MONTH_AMOUNTS
HINT_MONTH_OLD: Final[str] = "記録できるのは、今月を含む直近12か月の分です。" + HINT_MONTH_AMOUNTS
HINT_MONTH_TWICE: Final[str] = "同じ月が2回あります。1つの月には1つの金額を送ってください。" + HINT_MONTH_AMOUNTS
HINT_MONTH_UNKNOWN: Final[str] = (
    "わからない月は飛ばして大丈夫です。わかる月だけ送ってください。" + HINT_MONTH_AMOUNTS
)

# A month: 「4月」「4月分」「2026年4月」「令和8年4月」「R8年4月」「今月」「先月」「先々月」.
_MONTH_TOKEN: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9])(?:(?P<year>[0-9]{4})年|(?P<era>令和|r)(?P<era_year>[0-9]{1,2}|元)年)?(?P<month>[0-9]{1,2})月(?:分)?"
    r"|(?P<relative>先々月|先月|今月)(?:分)?"
)
_RELATIVE_MONTHS: Final[dict[str, int]] = {"今月": 0, "先月": -1, "先々月": -2}
# Words around an amount that say nothing more than "the amount of that month is".
_AMOUNT_FILLERS: Final[re.Pattern[str]] = re.compile(
    r"医療費の?総額|医療費|総額|合計|10割|十割|自己負担額?|窓口で?|支払った|払った|支払いました|払いました|かかった|かかりました"
    r"|でした|です|約|およそ|くらい|ぐらい|ほど|[\s:：、,，。.・/はのがでにもを()（）]"
)
_AMOUNT_ONLY: Final[re.Pattern[str]] = re.compile(r"[0-9" + "".join(_KANJI_DIGITS) + r"万千百十円]+|なし|ない|ぜろ")
# Said about what the patient paid at the counter, not the month's total (10割).
_PAID_WORDS: Final[re.Pattern[str]] = re.compile(r"自己負担|払った|払いました|支払|窓口")
_TOTAL_WORDS: Final[re.Pattern[str]] = re.compile(r"総額|10割|十割")


@dataclass(frozen=True)
class MonthAmounts:
    """Months with an amount each, as typed (「4月 52,000円、5月 61,000円」).

    Attributes:
        amounts: (first day of the month, yen) in the order typed.
        paid: the user said these are what they paid (自己負担), not the month's total (10割).
    """

    amounts: tuple[tuple[date, int], ...]
    paid: bool = False
    adds: bool = False  # one day's payment (「今日〇〇薬局で1,230円払いました」), added to its month's


# One payment on one day, with where it was paid: 「今日さくら薬局で1,230円払いました」「きのう病院で2400円かかった」.
_DAY_PAYMENT: Final[re.Pattern[str]] = re.compile(
    r"^(?P<day>今日|きょう|本日|昨日|きのう|一昨日|おととい|(?P<dnum>[0-9]{1,2})日)(?:に|は)?[、,\s]*(?:.{0,24}?)(?:で|の|に)?[、,\s]*"
    r"(?P<amount>[0-9" + "".join(_KANJI_DIGITS) + r"万千百十]+)円(?:を|が|ほど|くらい|ぐらい)?"
    r"(?:払った|払いました|はらった|支払った|支払いました|かかった|かかりました|払ってきた|払ってきました|でした)[。!！]*$")


def _day_payment(t: str, today: date) -> MonthAmounts | Invalid | None:
    """One day's payment at a hospital or a pharmacy, as that month's paid amount to add to."""
    found = _DAY_PAYMENT.match(t)
    if found is None:
        return None
    word = found.group("day")
    if found.group("dnum"):
        day_number = int(found.group("dnum"))
        if not 1 <= day_number <= today.day:
            return Invalid(HINT_MONTH_AMOUNTS)
        day = today.replace(day=day_number)
    else:
        day = today + timedelta(days=_RELATIVE_DAYS.get(word, 0))
    amount = parse_yen(found.group("amount") + "円")
    if not isinstance(amount, int):
        return Invalid(HINT_MONTH_AMOUNTS)
    return MonthAmounts(((day.replace(day=1), amount),), paid=True, adds=True)


def _month_of(match: re.Match[str], today: date) -> date | Invalid:
    this = today.year * 12 + today.month - 1
    if match.group("relative"):
        index = this + _RELATIVE_MONTHS[match.group("relative")]
    else:
        month = int(match.group("month"))
        if not 1 <= month <= 12:
            return ImpossibleDate(f"{month}月という月はありません。" + HINT_MONTH_AMOUNTS)
        if match.group("year"):
            index = int(match.group("year")) * 12 + month - 1
        elif match.group("era"):
            index = (_era_year("令和", match.group("era_year")) or 0) * 12 + month - 1
        else:  # no year: the latest such month up to this one
            index = this - (today.month - month) % 12
    if index > this:
        return Invalid(HINT_MONTH_FUTURE)
    if index <= this - 12:
        return Invalid(HINT_MONTH_OLD)
    return date(index // 12, index % 12 + 1, 1)


def parse_month_amounts(text: Text | str, today: date) -> MonthAmounts | Unknown | Invalid:
    """Read months with their amounts, for the cost log.

    Accepts 「4月 52,000円、5月 61,000円」, 「4月52000 5月6万1千円」, 「2026年4月：5万円」,
    「令和8年4月分は52000円」, 「先月 3万円」, 「5月 なし」 (0円); up to 12 months, each within the
    12 months that end with this month. A month without a year is the latest such month up
    to this one (in January, 「12月」 is last December). Anything else in the text than months,
    amounts and the words around them (「は」「総額」「円」) makes it not an answer, so a question
    that mentions a month and an amount is not taken for one.

    Args:
        text: the message.
        today: today in Japan.

    Returns:
        ``MonthAmounts`` (``paid`` when the text says 自己負担／払った／窓口 without 総額／10割),
        ``UNKNOWN`` or ``Invalid(hint)``.
    """
    if not isinstance(text, (str, Text)) or not as_text(text).spaced:
        return Invalid(HINT_MONTH_AMOUNTS)
    said = as_text(text)
    if len(said.raw) > MAX_ANSWER_CHARS * 4:
        return Invalid(HINT_TOO_LONG + HINT_MONTH_AMOUNTS)
    t = _kana_units(said.spaced)
    t = _THOUSANDS_COMMA.sub("", t)
    tokens = list(_MONTH_TOKEN.finditer(t))
    if not tokens:
        payment = _day_payment(t.strip(), today)
        if payment is not None:
            return payment
        return UNKNOWN if is_unknown_answer(t) else Invalid(HINT_MONTH_AMOUNTS)
    if _AMOUNT_FILLERS.sub("", t[: tokens[0].start()]):
        return Invalid(HINT_MONTH_AMOUNTS)
    if len(tokens) > 12:
        return Invalid("12か月分までにしてください。" + HINT_MONTH_AMOUNTS)
    amounts: list[tuple[date, int]] = []
    for index, token in enumerate(tokens):
        end = tokens[index + 1].start() if index + 1 < len(tokens) else len(t)
        rest = _AMOUNT_FILLERS.sub("", t[token.end():end])
        if is_unknown_answer(rest):
            return Invalid(HINT_MONTH_UNKNOWN)
        if not _AMOUNT_ONLY.fullmatch(rest):
            return Invalid(HINT_MONTH_AMOUNTS)
        amount = parse_yen(rest)
        if isinstance(amount, Invalid):
            return Invalid(amount.hint if amount.hint != HINT_YEN else HINT_MONTH_AMOUNTS)
        if not isinstance(amount, int):
            return Invalid(HINT_MONTH_AMOUNTS)
        month = _month_of(token, today)
        if isinstance(month, Invalid):
            return month
        if any(month == m for m, _ in amounts):
            return Invalid(HINT_MONTH_TWICE)
        amounts.append((month, amount))
    paid = bool(_PAID_WORDS.search(t)) and not _TOTAL_WORDS.search(t)
    return MonthAmounts(tuple(amounts), paid)


__all__ += ["MonthAmounts", "parse_month_amounts"]


# --------------------------------------------------------------------------- counts said as a span

# 「去年の夏から毎月」「4月からずっと」: a count of months said as "since then, every month".
_SINCE: Final[re.Pattern[str]] = re.compile(
    r"^(?P<year>去年|昨年|きょねん|今年|ことし)?の?(?:(?P<month>[0-9]{1,2})月|(?P<season>春|夏|秋|冬))(?:ごろ|頃|くらい|ぐらい)?"
    r"から(?:は|も)?(?:ほぼ|ほとんど)?(?:毎月|ずっと|まいつき)")
# The months a season may start in (the earliest and the latest): which one is meant is not said.
_SEASONS: Final[dict[str, tuple[int, int]]] = {"春": (3, 5), "夏": (6, 8), "秋": (9, 11), "冬": (12, 2)}
_ROUGH: Final[re.Pattern[str]] = re.compile(r"くらい|ぐらい|位|ほど|程度|ごろ|頃|だいたい|大体|およそ|約|ほぼ|ほとんど|たぶん|多分")
# 高額かつ長期 is decided by 6 months out of 12 (FACTS §3): a rough count near it is asked back.
HIGH_COST_LINE: Final = 6
HINT_ROUGH_COUNT: Final = ("6か月あるかどうかで上限額が変わるため、はっきりさせてください。"
                           "総額（10割分）が5万円を超えた月は、6か月以上ありましたか？それとも5か月以下でしたか？")


def _months_since(match: re.Match[str], today: date) -> tuple[int, int] | Invalid:
    """The fewest and most months from the month named to this month (counting both), at most 12."""
    year = today.year - (1 if match.group("year") in ("去年", "昨年", "きょねん") else 0)
    if match.group("month"):
        firsts = [int(match.group("month"))] * 2
        if not 1 <= firsts[0] <= 12:
            return OtherKind(HINT_COUNT)
    else:
        firsts = list(_SEASONS[match.group("season")])
    counts = []
    for i, first in enumerate(firsts):
        y = year + (1 if first < firsts[0] else 0)  # 冬 from December runs into the next year
        if match.group("year") is None and (y, first) > (today.year, today.month):
            y -= 1  # 「4月から」 said in February is last April
        counts.append(min(12, (today.year - y) * 12 + today.month - first + 1))
    if min(counts) < 1:
        return Invalid(HINT_COUNT)
    return min(counts), max(counts)


def read_months_count(text: Text | str, today: date) -> int | Noted | Unknown | Invalid:
    """A count of months at the 高額かつ長期 question, said as people say it.

    Beyond ``parse_count``: 「4月から毎月」「去年の夏から毎月」 count the months from then to this month
    (``today``, the injectable clock; at most 12, said back); 「毎月」 is said back as 12; a rough count
    at the line of 6 (「半年くらい」「6か月ぐらい」) is asked back with the two answers that decide it;
    a date (「3か月前」) or an amount (「5万円」) is answered with what the question counts.
    """
    t = as_text(text).compact
    since = _SINCE.match(t)
    if since is not None:
        span = _months_since(since, today)
        if isinstance(span, Invalid):
            return span
        low, high = span
        if low != high and (low < HIGH_COST_LINE) != (high < HIGH_COST_LINE):
            return OtherKind("いつの月からか、もう少しくわしく教えてください（例：『去年の7月から毎月』）。" + HINT_ROUGH_COUNT,
                           options=(("6か月以上", "6"), ("5か月以下", "5")))
        return Noted(low, f"今月までの{low}か月（この12か月のうち）と数えます。違っていたら「戻る」で直せます。")
    if re.search(r"[0-9一二三四五六七八九十]+(?:か月|ヶ月|カ月|ヵ月|週間|日|年)(?:ほど|くらい|ぐらい)?(?:前|まえ|後|あと|先)", t) or \
            re.search(r"(?:月|がつ)[0-9一二三四五六七八九十]+日", t):
        return OtherKind("日付ではなく、5万円を超えた月が何か月あったか（0〜12）を教えてください。" + HINT_COUNT)
    if re.search(r"[0-9一二三四五六七八九十]+(?:円|万)", t):
        return OtherKind("金額ではなく、総額（10割分）が5万円を超えた月が何か月あったか（0〜12）を教えてください。"
                       "月ごとの金額なら、医療費の記録に送ると数えられます。" + HINT_COUNT)
    value = parse_count(text)
    if not isinstance(value, int):
        return value
    if _ROUGH.search(t) and value in (HIGH_COST_LINE - 1, HIGH_COST_LINE, HIGH_COST_LINE + 1):
        return OtherKind(HINT_ROUGH_COUNT, options=(("6か月以上", "6"), ("5か月以下", "5")))
    if value == 12 and not re.search(r"12|十二|じゅうに", t):
        return Noted(12, "この12か月すべて（12か月）と数えます。違っていたら「戻る」で直せます。")
    return value


# --------------------------------------------------------------------------- a figure of another kind

_DATE_WORDS: Final[re.Pattern[str]] = re.compile(r"年|月|日|/|今日|昨日|明日|前|後")


def date_of_kind(text: Text | str, today: date, *, prefer: Prefer = "future") -> date | Unknown | Invalid:
    """``parse_date``, where an amount (「12万円」「70000」) or a bare day (「5」) is answered with a short
    question of its kind, never read as a date and never passed on as a question to the FAQ."""
    value = parse_date(text, today, prefer=prefer)
    if not isinstance(value, Invalid) or isinstance(value, ImpossibleDate):
        return value
    t = as_text(text).compact
    if "の何日でしょうか" in value.hint:  # 「来月」: the month is read, its day asked
        return OtherKind(value.hint)
    if _DATE_WORDS.search(t):
        return value
    amount = parse_yen(t)
    if isinstance(amount, int):
        if re.fullmatch(r"[0-9]{1,2}", t) and 1 <= amount <= 31:
            return OtherKind(f"「{amount}」は日にちでしょうか。何年何月{amount}日か、年・月・日で教えてください。" + HINT_DATE)
        return OtherKind(f"「{amount:,}円」は金額のようです。ここでは日付をうかがっています。" + HINT_DATE)
    return value


def amount_is_date(text: Text | str, today: date) -> OtherKind | None:
    """At an amount question, a date (「4月1日」「来月」「3か月前」) is answered with what the question asks."""
    t = as_text(text).compact
    if not _DATE_WORDS.search(t) or re.search(r"[0-9一二三四五六七八九十]+(?:円|万)", t):
        return None
    read = parse_date(t, today, prefer="nearest")
    if isinstance(read, date) or (isinstance(read, Invalid) and "何日" in read.hint):
        return OtherKind("日付のようです。ここでは金額をうかがっています。" + HINT_YEN)
    return None

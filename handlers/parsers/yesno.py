"""Yes/no answers: はい, いいえ, a verb of the question (受けてます, 受けていません), a hedged answer.

What this is not: a reader of sentences. Anything that is not, as a whole, a yes or a no is
``Invalid``, and the dialog treats it as a new message before asking again.
"""

from __future__ import annotations

import re
from typing import Final

from handlers.parsers.common import begin, kana_units
from handlers.parsers.results import Invalid, Unknown
from nlp.normalize import compact
from nlp.text import Text, as_text

HINT_YES_NO: Final[str] = "「はい」か「いいえ」で教えてください。わからなければ「わからない」と送ってください。"


# A yes or no is a short answer, never a sentence that merely ends like one: 「顔が真っ青で唇が紫
# になってる」 ends like 「なってる」 and is no 「はい」 (it is an emergency). So an answer is read only
# when it is, as a whole, one of the forms below: an interjection (はい、…), a bare reply
# (あります, ないです), or a verb of the question (受けてます, 受けていません) after the words the
# question is about (生活保護を, 人工呼吸器). Anything else is Invalid, and the dialog treats it
# as a new message (safety first, then a question) before asking again.
_NO_START: Final[re.Pattern[str]] = re.compile(
    r"^(?:いいえ|いえ|いいや|いや|ううん|no|nope|のー|違う|ちがう|違います|ちがいます)(?:[、。,.!ー~]|です|$)"
)
_YES_START: Final[re.Pattern[str]] = re.compile(
    r"^(?:はい|うん|ええ|yes|yeah|ok|okay|おk|おっけー)(?:[、。,.!ー~]|です|だよ|$)"
)
_YES_BARE: Final[re.Pattern[str]] = re.compile(
    r"^(?:はい|はいはい|うん|ええ|そう|そうです|そうだ|そうだよ|そのとおり|その通り|そうなんです|そうなります|y|yes|yeah|ok|okay|"
    r"おk|おっけー|いえす|true|o|○|◯|👍|あります|ある|あるよ|あり|います|いる|いるよ|該当|該当します|該当する|該当です|"
    r"当てはまる|当てはまります|あてはまる|あてはまります|もちろん|大丈夫|だいじょうぶ|大丈夫です|だいじょうぶです|"
    r"いいです|いいよ|よい|よろしい|よろしいです|正しい|正しいです|ただしい|合ってる|あってる|合ってます|あってます|"
    r"お願いします|おねがいします|お願い|おねがい|お願いね|おねがいね|よろしく|よろしくお願いします|頼みます|たのみます|"
    r"です|だ|だよ)$"
)
_NO_BARE: Final[re.Pattern[str]] = re.compile(
    r"^(?:いいえ|いえ|いや|ううん|no|n|nope|x|×|✕|false|ない|無い|ないです|ないよ|なし|無し|なしです|ありません|いません|いない|"
    r"いないです|ではない|ではないです|ではありません|じゃない|じゃないです|じゃありません|違う|ちがう|違います|ちがいます|"
    r"非該当|該当しない|該当しません|該当なし|当てはまらない|当てはまりません|あてはまらない|あてはまりません|そうじゃない|"
    r"そうではない|そうではありません|だめ|やめて|やめる|やめます|しない|しません|"
    # a refusal of an offer (「記録を始めますか？」「お知らせを送りましょうか？」) answers that offer only
    r"いらない|いらないです|いりません|要らない|要りません|いらん|不要|不要です|結構です|けっこうです|遠慮します|えんりょします)$"
)
# A verb of the question, then a yes or a no ending: 受け|てます, 入っ|てない, 認定され|ています.
_STEMS: Final[str] = (
    r"(?:受け|うけ|もらっ|貰っ|入っ|はいっ|加入し|かにゅうし|該当し|がいとうし|持っ|もっ|使っ|つかっ|つけ|付け|着け|装着し|"
    r"そうちゃくし|利用し|受給し|認定され|にんていされ|払っ|はらっ|納め|おさめ|かかっ|され|さ|し|なっ|合っ|あっ|おり|い|あり)"
)
_YES_VERB: Final[re.Pattern[str]] = re.compile(
    _STEMS + r"(?:ています|ている|ております|てます|てる|てた|ていました|ます|る|ました|た|てください|て|てくれ|"
    r"てほしい)$"
)
_NO_VERB: Final[re.Pattern[str]] = re.compile(
    _STEMS + r"(?:ていません|てません|ていない|てない|ないです|ない|ません|ていないです|てないです|なかった|てなかった|"
    r"ていなかった)$"
)
_ANSWER_TAIL: Final[re.Pattern[str]] = re.compile(r"(?:[。.!?、,~ー]|よね|よ|ね|w)+$")
_OBJECT_PARTICLE: Final[str] = r"(?:は|を|が|も|に|で|の)?"
# Who the answer is about, said first: 「私は受けています」「うちは非課税です」「家族は全員非課税」.
_TOPIC: Final[re.Pattern[str]] = re.compile(
    r"^(?:私|わたし|僕|ぼく|自分|本人|うち|我が家|わが家|家族|家)(?:は|も|では)"
)
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
    t = begin(text, HINT_YES_NO)
    if not isinstance(t, str):
        return t
    spaced = re.sub(r"\s+", "、", kana_units(as_text(text).spaced))
    for start, polarity in ((_NO_START, False), (_YES_START, True)):
        m = start.search(spaced)
        if m is None:
            continue
        # 「はい、受けています」 is a yes; 「ちがう、最初から」 is no answer at all (a new message).
        rest = _ANSWER_TAIL.sub("", compact(spaced[m.end() :]).lstrip("、。,.!ー~"))
        if not rest:
            return polarity
        agrees = parse_yes_no(rest, about, opposite)
        return polarity if agrees is polarity else Invalid(HINT_YES_NO)
    t = _HEDGE_END.sub("", _HEDGE_START.sub("", _ANSWER_TAIL.sub("", t)))
    topic = _TOPIC.match(t)
    if topic and t[topic.end() :]:
        t = t[topic.end() :]
    value = _read_yes_no(t, about, opposite)
    if value is not None:
        return value
    # 「はい受けてます」「いいえ受けてません」: the interjection and an answer that agrees with it.
    for word, meant in ((_NO_WORD, False), (_YES_WORD, True)):
        found = word.match(t)
        if found and t[found.end() :] and _read_yes_no(t[found.end() :], about, opposite) is meant:
            return meant
    return Invalid(HINT_YES_NO)


# An answer given with doubt is still the answer (「たぶん課税されてると思う」 is a no to 「非課税ですか？」);
# the dialog's result states what it was computed from, and 「わからない」 stays its own answer.
_HEDGE_START: Final[re.Pattern[str]] = re.compile(
    r"^(?:たぶん|多分|おそらく|恐らく|きっと|確か|たしか|一応|いちおう)[、,]?"
)
_HEDGE_END: Final[re.Pattern[str]] = re.compile(
    r"(?:と思う|と思います|とおもう|とおもいます|と思うけど|と思うんだけど|と思うんですけど|と思いますけど|はず|はずです|"
    r"かも|かもしれない|かもしれません|気がする|気がします|みたい|みたいです|らしい|らしいです)$"
)


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
            rest = t[len(w) :]
            particle = re.match(_OBJECT_PARTICLE, rest)
            for remainder in (rest, rest[particle.end() :] if particle else rest):
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

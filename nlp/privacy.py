"""What users typed, seen through privacy: the My Number check and redaction for statistics.

``looks_like_my_number`` is the guard's test (``bot.core``): it sees a 12-digit number in
any form people (or their keyboards) produce — full width, other Unicode digit scripts,
kanji numerals, separators, zero-width characters. ``redact`` removes digits (in those same
forms), e-mail addresses and personal names before an unanswered question is kept for the
operator's statistics; nothing else of a user's text is ever stored or logged. ``hash_user``
is the id a user has in logs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import unicodedata

from nlp.text import tokenizer

MAX_KEPT = 100
_EMAIL = re.compile(r"\S+@\S+")
_SPACE = re.compile(r"\s+")

# Kanji digits as people write a number digit by digit (一二三四…, 〇 and its look-alike ○), and
# the 大字 of forms and contracts (壱弐参肆伍陸漆捌玖, old forms 壹貳參, 拾 for ten).
_KANJI_DIGITS = {
    "〇": "0",
    "○": "0",
    "零": "0",
    "一": "1",
    "二": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
    "壱": "1",
    "壹": "1",
    "弐": "2",
    "貳": "2",
    "弍": "2",
    "参": "3",
    "參": "3",
    "肆": "4",
    "伍": "5",
    "陸": "6",
    "漆": "7",
    "柒": "7",
    "捌": "8",
    "玖": "9",
}
# What may sit between the digits of one number: spaces, hyphens and dashes of every width,
# the long-vowel mark typed for a hyphen, underscore, dot, slash, comma, Japanese punctuation,
# wave dashes and tildes, plus, asterisk, hash, bullets and brackets (「(4289)1573-6042」).
_SEP = r"[\s\-‐‑‒–—―−ー_./,・、。:〜～~+*#•･()\[\]（）「」]"
_RUN = re.compile(rf"[0-9](?:{_SEP}*[0-9])*")
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+")  # 5,000: an amount written with thousands commas
# Kanji numbers of two characters or more (二〇二七, 三十一), or of one before a date or age
# counter (三月, 五日, 七歳); a lone 一 of 一部 or 一緒 stays.
_KANJI_NUMERALS = "〇○零一二三四五六七八九十百千万億壱壹弐貳弍参參肆伍陸漆柒捌玖拾"
_KANJI_NUMBER = re.compile(rf"[{_KANJI_NUMERALS}]{{2,}}|[{_KANJI_NUMERALS}](?=[年月日時歳才])")
# A romanised name (「Hanako Yamada」, 「YAMADA Hanako」): two or three capitalised Latin words in a
# row. The tokenizer knows Japanese names only, and left 「＊ Yamada」 behind.
_LATIN_NAME = re.compile(r"\b[A-Z][A-Za-z'’-]+(?:\s+[A-Z][A-Za-z'’-]+){1,2}\b")


def fold_digits(text: str, *, kanji: bool = True) -> str:
    """``text`` with every digit as ASCII 0-9 and invisible format characters removed.

    NFKC first (full width, circled and superscript digits), then any Unicode decimal digit
    (Arabic-Indic, Devanagari, Thai …), then — with ``kanji`` — the kanji digits (大字 too).
    Format characters (zero-width space, joiners, soft hyphen, BOM), variation selectors and
    combining marks (the keycap U+20E3 of 4️⃣, a stray accent between digits) are dropped, since
    they hide nothing but the digits' adjacency.
    """
    out = []
    for ch in unicodedata.normalize("NFKC", text):
        if ch.isascii():
            out.append(ch)
        elif unicodedata.category(ch) in ("Cf", "Mn", "Me") or "\ufe00" <= ch <= "\ufe0f":
            continue
        elif (d := unicodedata.decimal(ch, None)) is not None:
            out.append(str(d))
        elif kanji and ch in _KANJI_DIGITS:
            out.append(_KANJI_DIGITS[ch])
        else:
            out.append(ch)
    return "".join(out)


def looks_like_my_number(text: str) -> bool:
    """True when ``text`` holds a 12-digit number (a My Number, 個人番号) in any form.

    A number is a run of digits joined by separators; 12 digits in one run, or in one
    space-separated part of a longer run, count. A list of amounts with thousands commas
    (「5,000 5,000 2,500」) is several numbers, not one.
    """
    folded = fold_digits(text)
    for run in _RUN.finditer(folded):
        digits = sum(ch.isdigit() for ch in run.group())
        if digits < 12:
            continue
        parts = [p for p in re.split(r"[\s、。]+", run.group()) if p]
        if digits == 12 and not (len(parts) > 1 and all(_GROUPED.fullmatch(p) for p in parts)):
            return True
        if any(sum(ch.isdigit() for ch in p) == 12 for p in parts):
            return True
    return False


def without_numbers(text: str) -> str:
    """``text`` with every number (any digit form, kanji digits included) and e-mail address
    replaced by ``#``/``＊``: what is left of a message refused for a My Number, so that the turn
    still sees its words (an emergency in the same message) and never the number."""
    return _EMAIL.sub("＊", re.sub(r"[0-9]+", "#", fold_digits(text)))


def redact(text: str, limit: int = MAX_KEPT) -> str:
    """The text without digits (any script, keycaps, kanji and 大字 numbers), e-mail addresses or
    personal names (Japanese, or romanised), at most ``limit`` characters."""
    text = fold_digits(text, kanji=False)
    text = _EMAIL.sub("＊", text)
    text = _LATIN_NAME.sub("＊", text)
    tok = tokenizer()
    if tok is not None:
        parts = []
        for m in tok.tokenize(text[:2000]):
            pos = m.part_of_speech()
            parts.append("＊" if pos[1] == "固有名詞" and pos[2] == "人名" else m.surface())
        text = "".join(parts)
    text = re.sub(r"[0-9]+", "#", text)
    text = _KANJI_NUMBER.sub("#", text)
    return _SPACE.sub(" ", text).strip()[:limit]


# --- user ids in logs ------------------------------------------------------------------------

# The secret of ``hash_user``: LOG_HASH_KEY, or a random key made once per process tree.
_LOG_HASH_KEY: bytes | None = None
_LOG_HASH_LOCK = threading.Lock()


def ensure_log_hash_key() -> None:
    """Make the key now (``serve``, before it starts any process): every turn process it starts
    or restarts, and every worker, then inherits the same one."""
    _log_hash_key()


def _log_hash_key() -> bytes:
    """LOG_HASH_KEY from the environment; when unset, a random key, made on first use and put
    into this process's environment so that the worker processes ``serve`` starts use it too (the
    log lines of one user then carry the same id in every worker)."""
    global _LOG_HASH_KEY
    with _LOG_HASH_LOCK:
        if _LOG_HASH_KEY is None:
            value = os.environ.get("LOG_HASH_KEY") or ""
            if not value:
                value = secrets.token_hex(32)
                os.environ["LOG_HASH_KEY"] = value
            _LOG_HASH_KEY = value.encode("utf-8")
        return _LOG_HASH_KEY


def hash_user(user_key: str) -> str:
    """A short id of a user for logs (HMAC-SHA256 with LOG_HASH_KEY), never the channel's user id.

    A plain hash of ``slack:U…`` could be reversed by hashing every known Slack or LINE id; the
    keyed hash cannot without the key. With LOG_HASH_KEY set the id is stable across restarts
    and instances (logs of one user can be followed); without it, only within one run.
    """
    return hmac.new(_log_hash_key(), user_key.encode("utf-8"), hashlib.sha256).hexdigest()[:12]

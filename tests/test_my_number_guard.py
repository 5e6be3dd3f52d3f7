"""A 12-digit My Number is never stored, logged or echoed."""

import logging
import os

import pytest

from bot.core import looks_like_my_number

FORMS = [
    "123456789012",
    "1234 5678 9012",
    "1234-5678-9012",
    "１２３４５６７８９０１２",
    "番号は１２３４－５６７８－９０１２です",
]


@pytest.mark.parametrize("text", FORMS)
def test_my_number_forms_are_recognised(text):
    assert looks_like_my_number(text)


@pytest.mark.parametrize("text", ["0279-75-3303", "2027/3/31", "71,000円", "12345678901", "1234567890123"])
def test_other_numbers_are_not_my_numbers(text):
    assert not looks_like_my_number(text)


@pytest.mark.parametrize("text", FORMS)
def test_bot_warns_and_never_echoes_or_stores_it(chat, settings, caplog, text):
    caplog.set_level(logging.DEBUG)
    replies = chat.say(text)
    out = chat.text(replies)
    assert "送らないで" in out
    digits = "".join(ch for ch in text if ch.isdigit())
    assert "123456789012" not in out.replace("-", "").replace(" ", "")
    db_file = settings.database_url.removeprefix("sqlite:///")
    raw = b""
    for suffix in ("", "-wal"):
        try:
            raw += open(db_file + suffix, "rb").read()
        except FileNotFoundError:
            pass
    assert b"123456789012" not in raw and "１２３４".encode() not in raw
    assert "1234" not in caplog.text
    assert digits  # the case really carried digits


def test_my_number_in_a_dialog_keeps_the_pending_question(chat):
    chat.say("人と話したい")
    replies = chat.say("1234 5678 9012")
    assert replies[-1].expecting == "municipality"


# Forms the issue-24 probe got past the guard: wave dashes, tildes, plus, asterisk, hash and bullet
# separators, brackets, 大字, keycap emoji digits, combining marks between digits.
PROBE_FORMS = [
    "1234〜5678〜9012",
    "1234～5678～9012",
    "1234~5678~9012",
    "1234+5678+9012",
    "1234*5678*9012",
    "1234#5678#9012",
    "1234•5678•9012",
    "(4289)1573-6042",
    "（４２８９）１５７３－６０４２",
    "壱弐参肆伍陸漆捌玖零壱弐",
    "番号は零壱弐参 肆伍陸漆 捌玖壱弐です",
    "".join(d + "\ufe0f\u20e3" for d in "428915736042"),
    "4\u03012\u03018\u03019\u0301157360\u030142",
]


@pytest.mark.parametrize("text", PROBE_FORMS)
def test_probe_forms_are_recognised(text):
    assert looks_like_my_number(text)


@pytest.mark.parametrize(
    "text",
    ["5,000円+3,000円", "2027/3/31(水)", "(0279)75-3303", "参加したい", "陸上競技", "肆月", "9月〜12月", "10:00~17:00"],
)
def test_probe_separators_do_not_make_amounts_dates_or_words_a_my_number(text):
    assert not looks_like_my_number(text)


@pytest.mark.parametrize("text", PROBE_FORMS)
def test_probe_forms_are_refused_in_chat_and_never_stored(chat, settings, text):
    out = chat.text(chat.say(text))
    assert "送らないで" in out
    db_file = settings.database_url.removeprefix("sqlite:///")
    raw = b"".join(open(db_file + s, "rb").read() for s in ("", "-wal") if os.path.exists(db_file + s))
    for piece in ("4289", "1234", "壱弐", "伍陸"):
        assert piece.encode() not in raw

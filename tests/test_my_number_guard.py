"""A 12-digit My Number is never stored, logged or echoed."""

import logging

import pytest

from bot.core import looks_like_my_number

FORMS = ["123456789012", "1234 5678 9012", "1234-5678-9012", "１２３４５６７８９０１２", "番号は１２３４－５６７８－９０１２です"]


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

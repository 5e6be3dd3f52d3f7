"""Dates and answers said the way people say them, through the chat (issue 25): 「来月末」 at the expiry question
is read from today; 「来月」 alone is asked back with the month named, never taken as a guess."""

from __future__ import annotations


def test_the_expiry_said_as_next_months_end_is_read_and_repeated_back(chat) -> None:
    chat.say("更新のお知らせを登録したい")
    asked_back = chat.text(chat.say("来月"))
    assert "2026年12月の何日でしょうか" in asked_back
    confirm = chat.text(chat.say("来月末"))
    assert "2026年12月31日" in confirm


def test_a_diagnosis_three_months_ago_is_read_from_today(chat) -> None:
    chat.click("start:start-date")
    assert "申請書を窓口に出した日" in chat.text(chat.say("3か月前"))  # taken: the next question
    chat.say("今日")
    result = chat.text(chat.say("特になし"))
    # diagnosed 2026-08-23, more than a month before the application: back to one month before it
    assert "2026年10月23日" in result, result


def test_a_tax_answer_given_with_doubt_moves_the_copay_dialog_on(chat) -> None:
    chat.click("start:copay")
    chat.say("いいえ")  # 生活保護
    chat.say("いいえ")  # 人工呼吸器
    replies = chat.say("たぶん課税されてると思う")
    assert replies[0].topic != "mynumber"
    assert replies[-1].expecting not in (None, "tax_exempt"), "the next question, not the same one again"

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


def _copay_until_rate(chat) -> None:
    chat.click("start:copay")
    for answer in ("いいえ", "いいえ", "いいえ", "12万", "0", "なし", "10万"):
        chat.say(answer)


def test_a_correction_in_a_sentence_after_the_result_changes_that_answer_and_computes_again(chat) -> None:
    _copay_until_rate(chat)
    assert "20,000円" in chat.text(chat.say("3割"))  # 一般所得2, pays the cap
    redone = chat.text(chat.say("ちがう、3割じゃなくて1割だった"))
    assert "「負担割合」を「1割」に直して" in redone
    assert "今月お支払いになる額の目安：10,000円" in redone  # 1割 of 100,000円, under the cap
    redone = chat.text(chat.say("さっきの12万じゃなくて5万でした"))
    assert "一般所得1" in redone and "10,000円" in redone


def test_a_correction_in_the_middle_of_the_dialog_changes_the_named_answer_and_goes_on(chat) -> None:
    chat.click("start:copay")
    for answer in ("いいえ", "いいえ", "いいえ", "12万"):
        chat.say(answer)
    replies = chat.say("ちがう、12万じゃなくて5万です")
    assert "「所得割」を「50,000円」に直しました" in chat.text(replies)
    assert replies[-1].expecting == "high_cost_months", "back to the question that was open"
    for answer in ("0", "なし", "10万"):
        chat.say(answer)
    assert "一般所得1" in chat.text(chat.say("3割"))


def test_a_sentence_that_corrects_nothing_is_read_as_any_other_message(chat) -> None:
    chat.click("start:copay")
    replies = chat.say("受給者証じゃなくて登録者証のことを知りたい")
    assert replies[-1].expecting == "welfare", "the open question stays"


def test_no_thanks_at_the_cost_log_offer_declines_that_offer_and_keeps_the_reminders(chat) -> None:
    chat.say("更新のお知らせを登録したい")
    chat.say("2027年3月31日")
    chat.say("はい")
    chat.say("前橋市")
    listed = chat.text(chat.say("お知らせの一覧"))
    assert "2027年3月31日" in listed, listed
    chat.click("start:costlog")
    declined = chat.say("いらない")
    assert declined[0].kind == "costlog-declined", chat.text(declined)
    assert chat.text(chat.say("お知らせの一覧")) == listed, "the renewal reminders are still there"


def test_a_payment_sentence_naming_the_pharmacy_is_added_to_that_months_payments(chat) -> None:
    chat.click("start:costlog")
    chat.say("はい")
    chat.say("いいえ")
    first = chat.text(chat.say("今日さくら薬局で1,230円払いました"))
    assert "1,230円" in first
    second = chat.text(chat.say("きのう病院で2,400円かかった"))
    assert "11月はこれで合計 3,630円" in second
    assert "自己負担 3,630円" in chat.text(chat.say("医療費の記録を見せて"))

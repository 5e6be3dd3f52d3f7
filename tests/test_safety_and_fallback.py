"""The bot does not guess, gives no medical advice, and puts emergencies first."""

import pytest

from handlers.faq import consult


@pytest.mark.parametrize("text", ["息ができない", "父の意識がないです", "母が倒れて動かない。どうしよう"])
def test_emergency_words_get_119_first(chat, text):
    replies = chat.say(text)
    assert "119" in replies[0].text
    assert replies[0].topic is None


def test_thoughts_of_suicide_get_119_and_a_crisis_line(chat):
    replies = chat.say("もう死にたい")
    text = replies[0].text
    assert "119" in text and "0570-064-556" in text


def test_emergency_interrupts_a_dialog_and_keeps_it(chat):
    chat.say("人と話したい")
    replies = chat.say("息ができない")
    assert "119" in replies[0].text
    assert replies[-1].expecting == "municipality"


@pytest.mark.parametrize(
    "text",
    [
        "ステロイドを勝手にやめても平気？",
        "この薬の副作用が心配です",
        "熱があるけど病院に行くべき？",
        "薬を飲み忘れたらどうしたらいい",
    ],
)
def test_medical_judgement_is_declined_and_sent_to_the_doctor(kb, matcher, text):
    c = consult(kb, matcher, text)
    assert c.topic is None
    assert "主治医" in c.text


@pytest.mark.parametrize(
    "text",
    ["週末の高崎の天気を教えて", "おすすめの温泉旅館は？", "がん保険のおすすめは？", "要介護認定の申請はどこでする？"],
)
def test_out_of_scope_questions_get_an_honest_answer(kb, matcher, text):
    c = consult(kb, matcher, text)
    assert c.topic is None
    assert c.text


def test_unknown_question_says_so_offers_topics_and_names_where_to_ask(chat):
    replies = chat.say("受給者証の色って何色ですか")
    reply = replies[-1]
    assert reply.topic is None
    assert "見つかりませんでした" in reply.text
    assert "保健福祉事務所" in reply.text


def test_fallback_names_the_users_own_office_when_known(chat):
    chat.say("人と話したい")
    chat.say("桐生市")
    replies = chat.say("受給者証の色って何色ですか")
    assert "桐生保健福祉事務所" in replies[-1].text


def test_every_answer_names_its_source(kb, matcher):
    for tid in kb.topics:
        c = consult(kb, matcher, kb.topics[tid].title)
        if c.topic:
            assert "出典：" in c.text, tid

"""Safety that is precise as well as complete: concepts are matched on words, not letters.

A crisis word read aloud inside another word (申請書を → しんせいしょを ⊃ いしょを) is no crisis; the
ways people really write (dialect, katakana, emoji) still reach 119; ordinary texts by the thousand
(the knowledge base's documents in everyday sentences, the municipal FAQ of localgovFAQ) raise no
alarm.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.evaluation import (
    evaluate_false_alarms,
    evaluate_safety,
    generated_ordinary,
    knowledge_examples,
    localgovfaq_texts,
)
from handlers.messages import IncomingMessage
from handlers.safety import detect
from nlp.text import Text
from tests.conftest import SHARED, needs_shared, run_cli

LOCALGOVFAQ = SHARED / "peer-data" / "localgovfaq"

# Ordinary patient sentences that a crisis list matched as letters took for a crisis, with the topic
# that answers each (first, or first among the offered buttons).
ORDINARY = {
    "申請書を郵送したい": "mail-application",
    "同意書をだすのはいつ？": "consent-form",
    "手が震えて申請書を書けない": "new-application-documents",
    "首を長くして受給者証を待ってます": "processing-time",
}
MORE_ORDINARY = [
    "証明書を出せばいいの？",
    "どういしょを だすのは いつ",
    "しんせいしょを ゆうそうしたい",
    "印鑑証明書を発行してほしい",
    "郵送で税の証明書を取得したい",
    "ねこが道端で倒れてる",
    "気が遠くなるような書類の量",
    "ボタン電池を捨てたいのですが",
]

# Wordings nobody had written into the concepts, and the local way of speaking.
URGENT = {
    "さっき睡眠薬を一箱まるごと飲んじゃった": "overdose",
    "脈がすごく速くて意識が遠のいていく": "fainting",
    "潰瘍性大腸炎 下血ひどくてふらふらで立てない": "bleeding",
    "お腹がパンパンに張って激痛 何回も吐いてる": "severe-pain",
    "いきが でぎない": "breathing",
    "いぎができない": "breathing",
    "息ができねえ": "breathing",
    "むねがいだい": "chest",
    "息子が40度の熱": "child-fever",
    "🆘": "help",
    "🚑": "help",
    "ｲｷｶﾞ ﾃﾞｷﾅｲ": "breathing",
    "むねが いだくて たまんねえ": "chest",
}


@pytest.mark.parametrize("text,topic", ORDINARY.items())
def test_ordinary_sentences_about_forms_get_their_answer_not_the_crisis_reply(chat, text, topic):
    replies = chat.say(text)
    assert all(r.kind not in ("emergency", "crisis") for r in replies), text
    offered = [replies[0].topic] + [c.value.removeprefix("topic:") for c in replies[0].choices]
    assert topic in offered, (text, offered)


@pytest.mark.parametrize("text", MORE_ORDINARY)
def test_a_word_read_aloud_inside_another_word_is_no_alarm(kb, text):
    assert detect(kb, text) is None, (text, detect(kb, text))


@pytest.mark.parametrize("text,concept", URGENT.items())
def test_new_wordings_dialect_katakana_and_emoji_get_119_first(chat, text, concept):
    assert concept in detect(kb_of(chat), text).concepts
    replies = chat.say(text)
    assert replies[0].kind == "emergency"
    assert replies[0].text.startswith("命に関わるおそれがあります。すぐに119番")


def kb_of(chat):
    return chat.bot.kb


def test_the_quoted_wordings_get_119_at_every_dialog_step_and_the_ordinary_ones_no_alarm(bot, tmp_path: Path):
    rows = [{"text": t, "kind": "emergency"} for t in URGENT] + [
        {"text": t, "kind": None} for t in [*ORDINARY, *MORE_ORDINARY]
    ]
    path = tmp_path / "quoted.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    result = evaluate_safety(bot, path)
    assert result.steps >= 16
    assert result.misses == ()
    assert result.caught == len(URGENT) and result.caught_mid == len(URGENT) * result.steps
    assert result.false_alarms == 0 and result.false_alarms_mid == 0


def test_a_childs_high_fever_names_the_childrens_line_and_its_source(chat):
    text = chat.text(chat.say("3歳の娘が40度の熱でぐったりしてる"))
    assert text.index("119") < text.index("#8000")
    assert "厚生労働省" in text


def test_a_fever_in_a_question_about_the_subsidy_is_a_question(kb):
    assert detect(kb, "娘が40度の熱を出した時の医療費も助成の対象ですか") is None


def test_a_hit_must_begin_at_a_word_and_a_short_what_must_be_a_whole_word(kb):
    # 息 is no word of 「息子」; 「むすこがいきをしてない」 read aloud holds 「いき」 as a word.
    assert detect(kb, "息子ができない") is None
    assert detect(kb, "むすこが いきを してない") is not None
    # The message's own reading, word by word: 同意書 is one word (どういしょ), not どうい + いしょ.
    assert [w.reading for w in Text("同意書を出す").words][0] == "どういしよ"


def test_no_false_alarm_on_the_generated_patient_sentences(kb):
    texts = generated_ordinary(kb)
    assert len(texts) >= 2000
    assert any("しんせいしょを" in t for t in texts)  # the hiragana half is there
    alarms = [t for t in texts if detect(kb, t) is not None]
    assert alarms == []


def test_no_false_alarm_on_the_knowledge_bases_own_examples(kb):
    alarms = [t for t in knowledge_examples(kb) if detect(kb, t) is not None]
    assert alarms == []


@needs_shared("peer-data/localgovfaq")
def test_at_most_two_false_alarms_in_the_municipal_faq(kb):
    texts = localgovfaq_texts(LOCALGOVFAQ)
    assert len(texts) == 2535
    alarms = [t for t in texts if detect(kb, t) is not None]
    assert len(alarms) <= 2, alarms


# Municipal FAQ wordings that once got the bot's own menu, whose last line names 119: a question
# about how to use something else, or a request for a fact in words the bot does not know.
NOT_THE_MENU = [
    "【障害者バス特別乗車証】使い方を教えてください。",
    "【高齢者バス特別乗車証】乗車払カードの使い方を教えてください。",
    "【肝炎ウイルス検診個別勧奨通知】の使い方を教えて。",
    "地番から住居表示を教えてほしい",
]


@pytest.mark.parametrize("text", NOT_THE_MENU)
def test_how_to_use_something_else_is_not_the_bots_menu_and_names_no_119(chat, text):
    first = chat.say(text)[0]
    assert first.kind != "menu", text
    assert "119" not in first.text, text


@pytest.mark.parametrize(
    "text", ["このボットの使い方を教えて", "使い方を教えて", "何ができるか教えて", "チャットの使い方がわからない"]
)
def test_how_to_use_this_chat_is_still_the_menu(chat, text):
    assert chat.say(text)[0].kind == "menu", text


def test_a_side_effect_in_a_question_of_compensation_is_no_medical_judgement(chat):
    first = chat.say("副作用がでた場合、どのように補償してもらえますか")[0]
    assert first.kind != "medical"
    assert "119" not in first.text
    assert chat.say("副作用がつらいので薬をやめてもいいですか")[0].kind == "medical"


@needs_shared("peer-data/localgovfaq")
def test_at_most_two_municipal_faq_texts_get_a_first_reply_that_names_119(bot):
    texts = localgovfaq_texts(LOCALGOVFAQ)
    named = []
    for n, text in enumerate(texts):
        replies = bot.handle(IncomingMessage(channel="eval", user=f"lg-{n}", text=text))
        if replies and "119" in replies[0].text:
            named.append(text)
    assert len(named) <= 2, named


def test_false_alarms_are_counted_through_whole_turns(bot):
    result = evaluate_false_alarms(
        bot, {"ordinary": ["申請書を郵送したい", "首を長くして待ってます"], "not ordinary": ["しにたい"]}
    )
    assert result.counts == (("ordinary", 2, 0), ("not ordinary", 1, 1))
    assert "false alarms on ordinary: 0 of 2" in result.report()


def test_eval_safety_without_a_file_reports_each_ordinary_corpus(tmp_path: Path):
    faq = tmp_path / "faq"
    faq.mkdir()
    (faq / "queries.json").write_text(
        json.dumps({"q1": "郵送で税の証明書を取得したい"}, ensure_ascii=False), encoding="utf-8"
    )
    (faq / "corpus.json").write_text(
        json.dumps({"d1": "Question: 印鑑証明書を発行\nAnswer: 窓口で"}, ensure_ascii=False), encoding="utf-8"
    )
    out = run_cli(["eval", "--safety", "--localgovfaq", str(faq)], timeout=300)
    assert out.returncode == 0, out.stderr
    assert "false alarms on generated patient sentences: 0 of" in out.stdout
    assert "false alarms on knowledge-base examples: 0 of" in out.stdout
    assert "false alarms on localgovFAQ questions and titles: 0 of 2" in out.stdout


@pytest.mark.parametrize(
    "text",
    ["医療費の記録をつけるのはもうおわりにしたい", "お知らせはもう終わりにしたいです", "入力するの終わらせたい"],
)
def test_ending_the_bots_own_things_is_no_crisis(chat, text):
    replies = chat.say(text)
    assert replies[0].kind != "crisis", replies[0].text[:60]
    assert "つらいお気持ち" not in replies[0].text


@pytest.mark.parametrize("text", ["もう何もかも終わりにしたい", "自分を終わりにしたい", "ぜんぶおわらせたい"])
def test_ending_it_all_is_still_a_crisis(chat, text):
    assert chat.say(text)[0].kind == "crisis"

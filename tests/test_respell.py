"""Whole-word typos read through the reading (issue 26): a wrong kanji pick or a word typed in kana
that lost a long vowel is spelled as the knowledge base's word before matching; real words are left
alone, and a reading shared by two words of the knowledge base goes to the one it usually means."""

from __future__ import annotations

import pytest

from nlp.text import Text


@pytest.mark.parametrize(
    "typed,meant",
    [
        ("受給者証の交新てどうやるの", "更新"),  # 交新: the wrong pick for こうしん
        ("じゅきゅしゃしょう なくした", "受給者証"),  # a long vowel lost in kana
        ("こうがくかつちょうき の じょうけん", "高額かつ長期"),
    ],
)
def test_a_whole_word_typo_is_spelled_as_the_knowledge_bases_word(matcher, typed, meant):
    assert meant in matcher._respeller.respell(Text(typed)).raw


@pytest.mark.parametrize(
    "typed",
    [
        "門脈圧亢進症の重症度",  # 亢進 is a word of its own, though 更新 sounds the same
        "医療機関を変えたい",  # a dictionary word typed on purpose
        "保険証のコピーはいりますか",
        "申請書を郵送したい",
    ],
)
def test_right_words_are_left_as_typed(matcher, typed):
    assert matcher._respeller.respell(Text(typed)).raw == typed


@pytest.mark.parametrize(
    "typed,topic",
    [
        ("受給者症の交新てどうやるの", "renewal"),
        ("こうがくかつちょうき の じょうけん", "high-cost-long-term"),
    ],
)
def test_the_typo_gets_the_topic_it_meant(chat, typed, topic):
    assert chat.say(typed)[0].topic == topic

"""Matching that understands people: everyday phrasings, kana, typos, abbreviations."""

import pytest

from handlers.faq import ANSWER_THRESHOLD, consult


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("受給者証なくした", "reissue"),
        ("じゅきゅうしゃしょう なくした", "reissue"),  # all hiragana
        ("ジュキュウシャショウ失くしました", "reissue"),  # katakana
        ("受給者賞を紛失", "reissue"),  # a common misspelling
        ("マイナ保険証しかないけど何出せばいい？", "mynumber-insurance-card"),
        ("ﾏｲﾅ保険証だけです。書類は？", "mynumber-insurance-card"),  # half-width
        ("クローンの重症度って？", "severity-096"),
        ("UCの重症度", "severity-097"),  # abbreviation
        ("PBCの認定基準", "severity-093"),
        ("かかりつけの先生が指定医かどうか知りたい", "designated-doctor"),
        ("生保の人は保険証のコピーいる？", "insurance-copy-welfare"),
        ("国保だけど保険証の写しは誰の分？", "insurance-copy-kokuho"),
        ("窓口って何時まで？", "office-hours"),
        ("入院中のご飯代は自己負担？", "copay-meal"),
        ("指定難病はいま何種類ありますか", "designated-disease-count"),
        ("更新の手続きを忘れて期限が切れたらどうなる", "renewal"),
    ],
)
def test_everyday_phrasings_find_their_topic(kb, matcher, text, topic):
    c = consult(kb, matcher, text)
    assert c.topic == topic, (text, c.topic, [m.id for m in c.candidates[:3]])
    assert c.score >= ANSWER_THRESHOLD


def test_ranking_offers_alternatives(kb, matcher):
    c = consult(kb, matcher, "受給者証をなくしました")
    assert c.topic == "reissue"
    assert len(c.alternatives) >= 1 and "reissue" not in c.alternatives


def test_confidence_is_between_0_and_100(kb, matcher):
    for text in ["受給者証", "あ", "😀", "a" * 500, "指定難病の医療費助成の申請に必要な書類を全部教えてください"]:
        for m in matcher.rank(text):
            assert 0 <= m.confidence <= 100


@pytest.mark.parametrize("text", ["", "   ", "😀😀", "！？！？", "a" * 10_000])
def test_odd_input_never_crashes_and_does_not_guess(kb, matcher, text):
    c = consult(kb, matcher, text)
    assert c.text
    if not text.strip() or text.startswith("😀") or text.startswith("！"):
        assert c.topic is None


def test_matching_from_many_threads_at_once(kb, matcher):
    """Chat servers run turns in thread pools: the tokenizer must not be shared between threads."""
    from concurrent.futures import ThreadPoolExecutor

    texts = ["受給者証なくした", "マイナ保険証しかないけど何出せばいい？", "クローンの重症度って？"] * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        topics = list(pool.map(lambda t: consult(kb, matcher, t).topic, texts))
    assert topics == [consult(kb, matcher, t).topic for t in texts]

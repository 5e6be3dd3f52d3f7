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


# Classes of wording read for what they ask (none of these sentences is in an eval file).
@pytest.mark.parametrize(
    ("text", "topic"),
    [
        # 「AのB」: the head B is asked about, not the form A it sits in
        ("臨床調査個人票の診断年月日は初めて受診した日？", "diagnosis-date-definition"),
        # what a question compares with is not its subject
        ("更新で出す書類は新規のときと一緒？", "renewal"),
        ("更新の書類は新規申請と違いますか", "renewal"),
        # everyday words for the scheme's own: 病院代 is 医療費
        ("受給者証を使うと病院代は何割になる？", "copay-overview"),
        # the topic's own label as people say it
        ("助成の対象になる人はどういう人ですか", "eligibility"),
        ("クローン病以外に消化器系の難病はありますか", "gi-disease-list"),
        # changing the hospital one goes to is this subsidy's procedure
        ("かかる病院を変えたい。手続きはありますか", "change-medical-institution"),
        # words typed in kana that the knowledge base writes in kanji (定義, 何個)
        ("なんびょうのていぎをおしえて", "nanbyo-definition"),
        ("指定難病ってぜんぶでなんこ？", "designated-disease-count"),
        # an alternative question asks for a fact; the amount in it is a term, not one's own
        ("高額かつ長期の5万円っていうのは総額？それとも自己負担分？", "high-cost-long-term"),
    ],
)
def test_a_class_of_wording_finds_the_topic_it_asks_about(kb, matcher, text, topic):
    c = consult(kb, matcher, text)
    assert (c.kind, c.topic) == ("answer", topic), (text, c.kind, c.topic, [m.id for m in c.candidates[:3]])


def test_choosing_another_doctor_is_still_the_service_next_door(kb, matcher):
    c = consult(kb, matcher, "担当の先生と相性が悪いので転院したい")
    assert (c.kind, c.topic) == ("redirect", None)

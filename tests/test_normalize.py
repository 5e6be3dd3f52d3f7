"""Normalisation: two spellings of the same thing look the same to the matcher."""

import pytest

from nlp.normalize import Synonyms, fold, strip_fillers


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ﾏｲﾅ保険証", "マイナ保険証"),  # half-width katakana
        ("ＡＢＣ１２３", "abc123"),  # full-width letters and digits
        ("マイナほけんしょう", "まいなほけんしょう"),  # katakana and hiragana
        ("クローン", "クロン"),  # long-vowel mark
        ("ちょうしょ", "ちようしよ"),  # small kana
        ("受給者証、なくした！", "受給者証なくした"),  # punctuation
        ("受給者証 なくした", "受給者証なくした"),  # spaces
        ("①", "1"),
    ],
)
def test_spellings_fold_to_the_same_form(a, b):
    assert fold(a) == fold(b)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("えーと、上限額を教えてください", "上限額を"),
        ("受給者証の再交付はできますか", "受給者証の再交付はでき"),
        ("マイナ保険証しかないけど", "まいな保険証しかない"),  # しかない is not a filler
    ],
)
def test_fillers_and_polite_endings_are_removed(text, expected):
    assert strip_fillers(fold(text)) == expected


def test_synonyms_rewrite_variants_to_the_canonical_form():
    syn = Synonyms(
        [("受給者証", ["受給者賞", "じゅきゅうしゃしょう"]), ("潰瘍性大腸炎", ["かいようせいだいちょうえん"])]
    )
    assert syn.rewrite(fold("ジュキュウシャショウをなくした")) == fold("受給者証をなくした")
    assert syn.rewrite(fold("受給者賞")) == fold("受給者証")
    assert syn.concepts(syn.rewrite(fold("かいようせいだいちょうえんです"))) == [fold("潰瘍性大腸炎")]


def test_longest_variant_wins():
    syn = Synonyms([("臨床調査個人票", ["臨個票", "臨床調査個人表"]), ("個人", ["こじん"])])
    assert syn.rewrite(fold("臨床調査個人表")) == fold("臨床調査個人票")


def test_a_variant_that_prefixes_its_canonical_form_does_not_damage_it():
    syn = Synonyms([("胆道閉鎖症", ["胆道閉鎖"])])
    assert syn.rewrite(fold("胆道閉鎖症です")) == fold("胆道閉鎖症です")
    assert syn.rewrite(fold("胆道閉鎖です")) == fold("胆道閉鎖症です")

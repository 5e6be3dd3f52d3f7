"""Every municipality of Gunma resolves to its office, however people write it."""

import pytest
import yaml

from handlers.office import index_for
from tests.conftest import shared_path


def test_all_35_municipalities_are_in_the_data(kb):
    assert len(kb.prefecture.municipalities) == 35


def test_each_municipality_has_the_office_of_the_domain_list(kb):
    shared = yaml.safe_load(shared_path("domain/gunma-municipalities.yaml").read_text(encoding="utf-8"))
    expected = {m["name"]: m["office"] for m in shared["municipalities"]}
    assert {m.name: m.office for m in kb.prefecture.municipalities} == expected


@pytest.mark.parametrize("form", ["name", "reading", "sentence"])
def test_each_municipality_resolves_to_its_office(kb, form):
    idx = index_for(kb.prefecture)
    for m in kb.prefecture.municipalities:
        text = {"name": m.name, "reading": m.reading, "sentence": f"{m.name}に住んでいます。どこに出せばいい？"}[form]
        found = idx.find(text)
        assert found is not None and found.municipality == m.name, (form, m.name)
        assert found.office == m.office


@pytest.mark.parametrize(
    ("text", "municipality"),
    [
        ("前橋に住んでます", "前橋市"),
        ("たかさき住み", "高崎市"),
        ("草津に住んでる", "草津町"),
        ("新田町の者です", "太田市"),  # merged into 太田市 in 2005
        ("六合村に住んでいます", "中之条町"),
        ("伊香保です", "渋川市"),
        ("ﾐﾄﾞﾘ市", "みどり市"),
    ],
)
def test_short_names_readings_and_former_names(kb, text, municipality):
    found = index_for(kb.prefecture).find(text)
    assert found is not None and found.municipality == municipality


def test_cities_with_their_own_health_centre(kb):
    idx = index_for(kb.prefecture)
    assert kb.prefecture.offices[idx.find("前橋市").office].name.startswith("前橋市保健所")
    assert kb.prefecture.offices[idx.find("高崎市").office].name.startswith("高崎市保健所")


def test_ambiguous_former_name_is_not_guessed(kb):
    found = index_for(kb.prefecture).find("東村")
    assert found is not None and found.municipality is None
    assert len(found.ambiguous) == 3


def test_words_that_only_look_like_places_are_not_places(kb):
    idx = index_for(kb.prefecture)
    assert idx.find("昭和生まれです") is None
    assert idx.find("上野駅の近く") is None


def test_kusatsu_question_names_agatsuma_office_and_phone(chat):
    replies = chat.say("草津町に住んでます。どこに出せば？")
    text = chat.text(replies)
    assert "吾妻保健福祉事務所" in text
    assert "0279-75-3303" in text


def test_asking_for_a_person_asks_the_municipality_then_names_the_office(chat):
    first = chat.say("人と話したい")
    assert first[-1].expecting == "municipality"
    second = chat.say("太田市")
    text = chat.text(second)
    assert "太田保健福祉事務所" in text and "0276-31-8243" in text
    assert second[-1].expecting is None


def test_a_known_municipality_is_not_asked_again(chat):
    chat.say("人と話したい")
    chat.say("館林")
    replies = chat.say("人と話したい")
    assert "館林保健福祉事務所" in chat.text(replies)
    assert all(r.expecting is None for r in replies)


def test_unknown_place_gets_a_kind_reask(chat):
    chat.say("人と話したい")
    replies = chat.say("東京都")
    assert replies[-1].expecting == "municipality"
    assert "群馬県内の市町村名" in chat.text(replies)


def test_an_ambiguous_former_name_offers_each_municipality_as_a_button(chat, kb):
    chat.say("窓口を探したい")
    replies = chat.say("東村")
    assert replies[-1].expecting == "municipality"
    offered = [c.value for c in replies[-1].choices]
    assert set(index_for(kb.prefecture).find("東村").ambiguous) <= set(offered)
    assert "次のどれでしょうか" in chat.text(replies)

    answer = chat.click("みどり市")  # a tap on one of them answers the question
    assert "桐生保健福祉事務所" in chat.text(answer)
    assert answer[-1].expecting is None

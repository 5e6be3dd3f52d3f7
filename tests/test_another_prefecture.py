"""Another prefecture is a change of data, not of code.

A fictional prefecture (tests/data/prefectures/fictional/: its prefecture.yaml, its own
sources.yaml, services.yaml and a topics file with three topics) is put beside Gunma in a copy of
knowledge/. A bot built on it names its offices, its examples and its sources, and never Gunma.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from bot.bootstrap import build_matcher, dialog_forms
from bot.config import Settings
from bot.core import Bot
from bot.storage.db import make_engine
from bot.storage.repositories import Store
from handlers.reminders import reminder_text
from knowledge import KnowledgeBase, KnowledgeError, load_knowledge
from knowledge.loader import ROOT
from tests.conftest import FIXED_NOW, Chat

FICTIONAL = Path(__file__).resolve().parent / "data" / "prefectures" / "fictional"


@pytest.fixture(scope="module")
def gunma_names() -> list[str]:
    """Every Gunma name a reply could leak: the prefecture, its municipalities and offices."""
    gunma = load_knowledge("gunma").prefecture
    names = ["群馬", gunma.name, *(m.name for m in gunma.municipalities), *(o.name for o in gunma.offices.values())]
    return names + [n.removesuffix("市") for n in names if n.endswith("市")]


@pytest.fixture(scope="module")
def fictional_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kb") / "knowledge"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(FICTIONAL, root / "prefectures" / "fictional")
    return root


@pytest.fixture(scope="module")
def fictional_kb(fictional_root: Path) -> KnowledgeBase:
    settings = Settings(prefecture="fictional")  # NANBYO_PREFECTURE=fictional
    return load_knowledge(settings.prefecture, root=fictional_root)


@pytest.fixture()
def chat(fictional_kb: KnowledgeBase, tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'nanbyo.db'}")
    yield Chat(Bot(fictional_kb, build_matcher(fictional_kb), Store(engine), dialog_forms(), clock=lambda: FIXED_NOW))
    engine.dispose()


def _no_gunma(text: str, names: list[str]) -> None:
    leaked = [n for n in names if n in text]
    assert not leaked, f"Gunma named in a fictional prefecture's reply: {leaked}\n{text}"


def test_the_fictional_prefecture_loads_with_its_own_data(fictional_kb):
    pref = fictional_kb.prefecture
    assert pref.name == "架空県"
    assert pref.municipality_examples == ["星見町", "霧ヶ丘"]
    assert "FICTIONAL-GUIDE" in fictional_kb.sources
    assert fictional_kb.citation("copay").startswith("出典：架空県")
    # The start date is national law: the prefecture keeps the national line.
    assert fictional_kb.citation("start-date") == load_knowledge("gunma").citation("start-date")


def test_the_office_dialog_names_the_fictional_office(chat, gunma_names):
    asked = Chat.text(chat.click("office"))
    assert "（例：星見町、霧ヶ丘）" in asked
    answer = Chat.text(chat.say("流星村"))  # merged into 星見町
    assert "星見保健所" in answer and "099-300-0004" in answer
    assert "出典：架空県「難病の医療費助成のご案内」（2026年10月1日更新）" in answer
    _no_gunma(asked + answer, gunma_names)


def test_an_unknown_place_is_asked_again_with_the_fictional_examples(chat, gunma_names):
    chat.click("office")
    again = Chat.text(chat.say("前橋市"))
    assert "架空県内の市町村名で教えてください（例：星見町、霧ヶ丘）" in again
    _no_gunma(again, gunma_names)


def test_an_ambiguous_short_name_of_the_fictional_prefecture_needs_its_suffix(chat):
    chat.click("office")
    assert "架空県内の市町村名" in Chat.text(chat.say("月影"))
    assert "星見保健所" in Chat.text(chat.say("月影村"))


def test_an_unanswered_question_gets_the_fictional_office_hint(chat, gunma_names):
    reply = Chat.text(chat.say("ぴよぴよ ほげほげ"))
    assert "お住まいの地域の保健所（霧ヶ丘市にお住まいの方は霧ヶ丘市保健センター）" in reply
    _no_gunma(reply, gunma_names)


def test_the_fictional_topics_answer_with_their_source(chat, gunma_names):
    answer = Chat.text(chat.click("topic:new-application-documents"))
    assert "架空県のホームページ" in answer
    assert "出典：架空県「難病の医療費助成のご案内」" in answer
    _no_gunma(answer, gunma_names)


def test_the_calculators_cite_the_fictional_sources(chat, gunma_names):
    texts = []
    chat.click("start:copay")
    for answer in ("いいえ", "いいえ", "はい", "700000", "いない", "わからない", "わからない"):
        texts.append(Chat.text(chat.say(answer)))
    copay = "\n".join(texts)
    assert "出典：架空県" in copay, copay
    mild = Chat.text(chat.click("start:mild-high-cost")) + Chat.text(chat.say("わからない"))
    assert "出典：架空県「難病の医療費助成のご案内」（軽症高額）" in mild
    _no_gunma(copay + mild, gunma_names)


def test_the_reminder_asks_with_the_fictional_examples_and_names_its_office(chat, gunma_names):
    texts = [Chat.text(chat.click("start:reminder")), Chat.text(chat.say("2027年9月30日")), Chat.text(chat.say("はい"))]
    assert "（例：星見町、霧ヶ丘）" in texts[-1]
    texts.append(Chat.text(chat.say("霧ヶ丘市")))
    # The reminder itself, as the scheduler sends it 60 days before.
    texts.append(
        reminder_text(
            chat.bot.kb, expiry=date(2027, 9, 30), offset_days=60, municipality="霧ヶ丘市", today=date(2027, 8, 1)
        )
    )
    assert "霧ヶ丘市保健センター" in texts[-1]
    assert "（架空県の更新の時期や書類は窓口でご確認ください）" in texts[-1]
    _no_gunma("\n".join(texts), gunma_names)


def test_gunma_provides_every_topic_the_national_data_links_to(kb):
    # A national link to a missing topic is dropped for a smaller prefecture; for Gunma there is
    # none, so a misspelt id in national data still fails here.
    assert kb.unlinked == []


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture()
def broken_root(tmp_path: Path) -> Path:
    root = tmp_path / "knowledge"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(FICTIONAL, root / "prefectures" / "fictional")
    return root


def test_an_example_that_is_not_a_municipality_is_refused_naming_the_file(broken_root):
    pref = broken_root / "prefectures" / "fictional" / "prefecture.yaml"
    _edit(pref, "municipality_examples: [星見町, 霧ヶ丘]", "municipality_examples: [星見町, 前橋]")
    with pytest.raises(KnowledgeError, match="prefecture.yaml.*前橋"):
        load_knowledge("fictional", root=broken_root)


def test_an_ambiguous_example_is_refused(broken_root):
    pref = broken_root / "prefectures" / "fictional" / "prefecture.yaml"
    _edit(pref, "municipality_examples: [星見町, 霧ヶ丘]", "municipality_examples: [月影]")
    with pytest.raises(KnowledgeError, match="月影"):
        load_knowledge("fictional", root=broken_root)


def test_a_calculator_without_a_source_line_is_refused(broken_root):
    pref = broken_root / "prefectures" / "fictional" / "prefecture.yaml"
    _edit(pref, "  copay-short:\n", "  copay-shorter:\n")
    with pytest.raises(KnowledgeError, match="prefecture.yaml"):
        load_knowledge("fictional", root=broken_root)
    _edit(pref, "  copay-shorter:\n", "  copay-short:\n")
    _edit(pref, "sources: [FICTIONAL-GUIDE, MHLW-T]\n    text: 架空県・", "sources: [NOWHERE]\n    text: 架空県・")
    with pytest.raises(KnowledgeError, match="citations.copay-short.*NOWHERE"):
        load_knowledge("fictional", root=broken_root)

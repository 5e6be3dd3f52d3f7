"""The knowledge base: every required topic with its facts; a broken file is named with its entry."""

import shutil

import pytest
import yaml

from knowledge import KnowledgeError, load_knowledge
from knowledge.loader import ROOT
from tests.conftest import run_cli, shared_path


def _spec():
    return yaml.safe_load(shared_path("spec/topics.yaml").read_text(encoding="utf-8"))


def test_every_required_topic_exists_with_all_its_facts(kb):
    for item in _spec():
        topic = kb.topics.get(item["id"])
        assert topic is not None, item["id"]
        for fact in item.get("must", []):
            assert str(fact) in topic.answer, (item["id"], fact)


def test_every_topic_names_a_source_and_a_check_date(kb):
    for topic in kb.topics.values():
        assert topic.sources and topic.checked
        assert kb.cite(topic).startswith("出典：")


def test_national_and_prefecture_data_are_apart(kb):
    national = [p for p in kb.topic_files.values() if "/national/" in p]
    gunma = [p for p in kb.topic_files.values() if "/prefectures/gunma/" in p]
    assert national and gunma
    assert kb.topic_files["where-to-apply"].endswith(tuple(gunma))


def test_outdated_figures_are_not_stated(kb):
    assert "33,300円" not in "".join(t.answer for t in kb.topics.values())
    assert "348" in kb.topics["designated-disease-count"].answer


@pytest.fixture()
def kb_copy(tmp_path):
    dst = tmp_path / "knowledge"
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst


def _break(path, old, new, count=1):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def test_a_missing_fact_names_the_file_and_the_entry(kb_copy):
    path = kb_copy / "national" / "gi-severity.yaml"
    _break(path, "must: [IOIBD, 2点]", "must: [IOIBD, 2点, 存在しない事実]")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(root=kb_copy)
    assert "gi-severity.yaml" in str(err.value) and "severity-096" in str(err.value)


def test_a_misspelt_field_names_the_file_and_the_entry(kb_copy):
    path = kb_copy / "national" / "gi-severity.yaml"
    _break(path, "  - id: severity-097\n", "  - id: severity-097\n    answr: x\n")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(root=kb_copy)
    assert "gi-severity.yaml" in str(err.value) and "severity-097" in str(err.value)


def test_broken_yaml_is_reported_with_the_file(kb_copy):
    (kb_copy / "synonyms" / "zz-broken.yaml").write_text("groups: [\n", encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(root=kb_copy)
    assert "zz-broken.yaml" in str(err.value)


def test_kb_check_exits_non_zero_naming_the_file(kb_copy):
    _break(kb_copy / "national" / "gi-severity.yaml", "must: [IOIBD, 2点]", "must: [IOIBD, 2点, 存在しない事実]")
    out = run_cli(["kb", "check", "--root", str(kb_copy)])
    assert out.returncode != 0
    assert "gi-severity.yaml" in out.stderr and "severity-096" in out.stderr


def test_another_prefecture_is_a_new_folder(kb_copy):
    src = kb_copy / "prefectures" / "gunma"
    dst = kb_copy / "prefectures" / "testpref"
    shutil.copytree(src, dst)
    _break(dst / "prefecture.yaml", "id: gunma", "id: testpref")
    _break(dst / "prefecture.yaml", "name: 群馬県", "name: テスト県")
    kb = load_knowledge("testpref", root=kb_copy)
    assert kb.prefecture.name == "テスト県"
    with pytest.raises(KnowledgeError):
        load_knowledge("nowhere", root=kb_copy)

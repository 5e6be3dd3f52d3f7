"""The public-benchmark script (bench/localgovfaq.py) on a small slice of localgovFAQ.

The data is not in the repository (no licence to redistribute it): the test
reads it from ../shared/peer-data/localgovfaq and is skipped without it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import REPO, SHARED, needs_shared

DATA = SHARED / "peer-data" / "localgovfaq"
SCRIPT = REPO / "bench" / "localgovfaq.py"
LIMIT = 40

needs_data = needs_shared(*(f"peer-data/localgovfaq/{f}" for f in ("corpus.json", "queries.json", "qrels.json")))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=REPO)


@needs_data
def test_a_slice_prints_the_metrics_and_writes_a_well_formed_ranking(tmp_path):
    out_file = tmp_path / "run.json"
    out = _run("--data", str(DATA), "--limit", str(LIMIT), "--out", str(out_file))
    assert out.returncode == 0, out.stderr
    m = re.search(r"SR@1 (\d\.\d+)\s+SR@5 (\d\.\d+)\s+MRR@10 (\d\.\d+)", out.stdout)
    assert m, out.stdout
    sr1, sr5, mrr = (float(x) for x in m.groups())
    assert 0.0 <= sr1 <= sr5 <= 1.0 and sr1 <= mrr <= 1.0
    assert sr5 > 0.3, out.stdout  # far below what the matcher reaches; catches a broken pipeline
    assert re.search(r"p50 [\d.]+ ms, p99 [\d.]+ ms", out.stdout), out.stdout
    assert "index build" in out.stdout

    run = json.loads(out_file.read_text(encoding="utf-8"))
    queries = json.loads((DATA / "queries.json").read_text(encoding="utf-8"))
    corpus = json.loads((DATA / "corpus.json").read_text(encoding="utf-8"))
    assert len(run) == LIMIT
    assert set(run) <= set(queries)
    for ranking in run.values():
        assert isinstance(ranking, list) and 1 <= len(ranking) <= 10
        assert len(set(ranking)) == len(ranking)
        assert all(isinstance(d, str) and d in corpus for d in ranking)


def test_without_the_data_it_says_so_and_exits_0(tmp_path):
    out = _run("--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run.json"))
    assert out.returncode == 0, out.stderr
    assert "not found" in out.stdout
    assert not (tmp_path / "run.json").exists()

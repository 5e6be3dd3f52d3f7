"""Measures the consultation on a question file (``nanbyo-bot eval FILE``).

Each JSONL line is ``{"q": "...", "topic": "<id>" | null}``; null means the
bot should not answer (out of scope). Prints top-1 / top-3 accuracy,
out-of-scope accuracy, the share of correct answers that state all their
``must`` facts, p50/p99 latency per question, and the misses.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.nlp.matcher import Matcher
from handlers.faq import consult
from knowledge import KnowledgeBase


@dataclass(frozen=True)
class EvalResult:
    in_scope: int
    top1: int
    top3: int
    out_scope: int
    held: int
    must_ok: int
    p50_ms: float
    p99_ms: float
    misses: tuple[str, ...]

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.in_scope if self.in_scope else 1.0

    @property
    def top3_rate(self) -> float:
        return self.top3 / self.in_scope if self.in_scope else 1.0

    @property
    def held_rate(self) -> float:
        return self.held / self.out_scope if self.out_scope else 1.0

    @property
    def must_rate(self) -> float:
        return self.must_ok / self.top1 if self.top1 else 1.0

    def report(self) -> str:
        lines = [f"miss: {m}" for m in self.misses]
        lines += [
            f"questions: {self.in_scope} in scope, {self.out_scope} out of scope",
            f"top-1: {self.top1_rate:.1%} ({self.top1}/{self.in_scope})   top-3: {self.top3_rate:.1%} ({self.top3}/{self.in_scope})",
            f"out-of-scope held: {self.held_rate:.1%} ({self.held}/{self.out_scope})   must facts complete: {self.must_rate:.1%} ({self.must_ok}/{self.top1})",
            f"latency per question: p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms",
        ]
        return "\n".join(lines)


def load_spec_must(spec: Path | None) -> dict[str, list[str]]:
    if spec is None or not spec.exists():
        return {}
    data = yaml.safe_load(spec.read_text(encoding="utf-8")) or []
    return {str(item["id"]): [str(m) for m in item.get("must", [])] for item in data}


def evaluate(kb: KnowledgeBase, matcher: Matcher, path: Path, spec: Path | None = None) -> EvalResult:
    must = load_spec_must(spec)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    times: list[float] = []
    top1 = top3 = held = must_ok = in_scope = out_scope = 0
    misses: list[str] = []
    for row in rows:
        question, expected = row["q"], row.get("topic")
        t0 = time.perf_counter()
        c = consult(kb, matcher, question)
        times.append((time.perf_counter() - t0) * 1000)
        ranked = [m.id for m in c.candidates]
        if expected is None:
            out_scope += 1
            if c.topic is None:
                held += 1
            else:
                misses.append(f"[out-of-scope answered as {c.topic} {c.score:.0f}] {question}")
            continue
        in_scope += 1
        if c.topic == expected:
            top1 += 1
            facts = must.get(expected) or kb.topics[expected].must
            if all(f in c.text for f in facts):
                must_ok += 1
            else:
                misses.append(f"[missing facts {expected}] {question}")
        else:
            misses.append(f"[{expected} -> {c.topic} {c.score:.0f}; ranked {','.join(ranked[:3])}] {question}")
        if expected in ([c.topic] if c.topic else []) + ranked[:3]:
            top3 += 1
    times.sort()
    p99_index = min(len(times) - 1, max(0, round(0.99 * len(times)) - 1))
    return EvalResult(
        in_scope, top1, top3, out_scope, held, must_ok,
        statistics.median(times) if times else 0.0, times[p99_index] if times else 0.0, tuple(misses),
    )

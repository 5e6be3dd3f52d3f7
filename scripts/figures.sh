#!/usr/bin/env bash
# Every eval figure docs/benchmarks.md reports, one block per file, for comparing two trees:
#   bash scripts/figures.sh > /tmp/before.txt   (on main)
#   bash scripts/figures.sh > /tmp/after.txt    (on a branch)   then diff the two.
# Needs ../shared beside the checkout for the public set and the safety corpora.
set -uo pipefail
cd "$(dirname "$0")/.."
E=.venv/bin/nanbyo-bot
run() { echo "== $*"; "$E" eval "$@" 2>&1 | grep -vE '(ms|seconds|took|p99|p50)' | tail -25; }
[ -f ../shared/eval/questions.jsonl ] && run ../shared/eval/questions.jsonl --spec ../shared/spec/topics.yaml
run bench/heldout-questions.jsonl
run bench/fresh-questions.jsonl
run --actions bench/actions.jsonl
run --actions bench/actions-blind.jsonl
run --actions bench/fresh-requests.jsonl
run --conversations bench/fresh-conversations.jsonl
run --safety bench/safety-questions.jsonl
run --safety bench/safety-fresh-2.jsonl

"""`nanbyo-bot copay`: JSON facts in, JSON result out, exit 2 on bad facts (CONTRACT.md)."""

import json

import pytest

from tests.conftest import SHARED, needs_shared, run_cli

COPAY_FILE = SHARED / "eval" / "copay.jsonl"


def _scenarios():
    if not COPAY_FILE.exists():
        return []
    return [json.loads(line) for line in COPAY_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


@needs_shared("eval/copay.jsonl")
def test_every_scenario_gives_the_listed_tier_cap_and_payment():
    for scenario in _scenarios():
        out = run_cli(["copay"], stdin=json.dumps(scenario["facts"]))
        assert out.returncode == 0, (scenario, out.stderr)
        result = json.loads(out.stdout)
        for key, value in scenario["expect"].items():
            assert result[key] == value, (scenario, result)
        assert result["explanation"]
        if scenario["facts"].get("medical_cost") is None:
            assert "payment" not in result


def test_uneven_split_is_marked_as_an_estimate():
    facts = {
        "welfare": False,
        "ventilator": False,
        "tax_exempt": False,
        "income_tax": 50000,
        "high_cost_months": 0,
        "household_caps": [5000],
    }
    result = json.loads(run_cli(["copay"], stdin=json.dumps(facts)).stdout)
    assert result["cap"] == 6666 and result["estimate"] is True


@pytest.mark.parametrize(
    "facts",
    [
        {"welfare": False, "ventilator": False, "tax_exempt": True, "income_tax": 80000, "income": 500000},
        {"welfare": False, "ventilator": False, "tax_exempt": False, "income_tax": -1},
        {"welfare": False, "ventilator": False, "tax_exempt": False, "income_tax": 1000, "high_cost_months": 13},
        {"welfare": False, "ventilator": False, "tax_exempt": False, "income_tax": 1000, "insurance_rate": 0.5},
        {"welfare": "maybe"},
    ],
)
def test_contradictory_or_out_of_range_facts_exit_2_with_a_message(facts):
    out = run_cli(["copay"], stdin=json.dumps(facts))
    assert out.returncode == 2
    assert out.stderr.strip() and out.stdout == ""


def test_not_json_exits_2():
    out = run_cli(["copay"], stdin="自己負担いくら")
    assert out.returncode == 2 and "JSON" in out.stderr

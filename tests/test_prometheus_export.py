"""Prometheus export: promtool accepts it, and its firing timeline equals our interval clock.

The second property includes hysteresis, exported through the ALERTS-series
pattern: it holds only if Prometheus' reading of its own previous state matches the
state our engine carries from one evaluation to the next.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from promtool_oracle import need_promtool
from test_promtool import PROM_AGG, compare, series_values

import perfalert_lab as pal
from perfalert_lab.rules.prometheus import prometheus_metric_name, promql_expr, to_prometheus

pytestmark = pytest.mark.promtool
ROOT = Path(__file__).resolve().parent.parent


def check_rules(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "exported.yml"
    f.write_text(text)
    return subprocess.run([need_promtool(), "check", "rules", str(f)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "rules_file", [ROOT / "tests" / "data" / "spec_example.yaml", ROOT / "data" / "rules" / "nab-demo.yaml"]
)
def test_promtool_check_rules_accepts_exports(tmp_path: Path, rules_file: Path) -> None:
    notes: list[str] = []
    text = to_prometheus(pal.load_rules(rules_file), report=notes.append)
    proc = check_rules(tmp_path, text)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    assert notes and all(f"# {n}" in text for n in notes)  # what does not map is said, in the file too


def test_unmapped_settings_are_reported_not_dropped() -> None:
    rules = pal.load_rules(ROOT / "tests" / "data" / "spec_example.yaml")
    with pytest.warns(UserWarning) as caught:
        to_prometheus(rules)
    messages = [str(w.message) for w in caught]
    assert "rule 'cpu-high': not mapped: cooldown 15m (Alertmanager's repeat_interval is the nearest)" in messages
    assert any("escalation" in m for m in messages) and any("silence" in m for m in messages)


def test_no_secret_reaches_the_export() -> None:
    rule = pal.Rule(id="a", metric="m", threshold=1, notify=({"channel": "slack", "url": "https://h.example/T0K3N"},))
    assert "T0K3N" not in to_prometheus(rule, report=lambda m: None)


def test_metric_names_and_matchers_are_made_valid(tmp_path: Path) -> None:
    rule = pal.Rule(id="x", metric="cpu.util-%", threshold=1, match={"source": "web-[12]*", "data-center": "eu?"})
    expr = promql_expr(rule)
    assert expr.startswith('cpu_util__{source=~"web\\\\-[12].*", data_center=~"eu."}')
    assert prometheus_metric_name("0abc") == "_0abc"
    assert check_rules(tmp_path, to_prometheus(rule, report=lambda m: None)).returncode == 0


@settings(max_examples=int(os.environ.get("PERFALERT_PROMTOOL_EXAMPLES", 300)))
@given(
    values=st.dictionaries(st.sampled_from(["s1", "s2"]), series_values, min_size=1, max_size=2),
    op=st.sampled_from([">", ">=", "<", "<="]),
    threshold=st.integers(0, 10),
    clear_gap=st.one_of(st.none(), st.integers(0, 4)),
    for_m=st.integers(0, 3),
    keep_m=st.integers(0, 3),
    window=st.one_of(st.none(), st.tuples(st.sampled_from(sorted(PROM_AGG)), st.integers(1, 3))),
)
def test_exported_rule_fires_as_our_interval_clock(values: dict, op: str, threshold: int, clear_gap: int | None,
                                                   for_m: int, keep_m: int, window: tuple[str, int] | None) -> None:
    need_promtool()
    kw: dict = {"id": "A", "metric": "m", "op": op, "threshold": threshold, "for_": f"{for_m}m",
                "keep_firing_for": f"{keep_m}m"}
    if clear_gap is not None:
        kw["clear"] = threshold - clear_gap if op in (">", ">=") else threshold + clear_gap
    if window:
        agg, w = window
        kw.update(window=f"{w}m1s", aggregate=agg)  # [Wm1s] selects the same whole-minute samples in both
    rule = pal.Rule(**kw)
    compare(values, rule, rules_text=to_prometheus(rule, report=lambda m: None))

"""Run Prometheus' own rule evaluation (``promtool test rules``) and read its timeline.

As SPEC section 10 describes: one ``promql_expr_test`` per evaluation time queries
``ALERTS`` and ``ALERTS_FOR_STATE`` with ``exp_samples: []``; each step with an
active alert fails, and the failure text lists the alert's labels, ``alertstate``
and ``activeAt``. promtool's clock starts at 0 and evaluates every
``evaluation_interval``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from perfalert_lab._time import parse_duration

PROMTOOL = shutil.which("promtool")
_EXPR = re.compile(r'^\s*expr: "(?P<expr>[A-Z_]+)", time: (?P<time>\S+?),?$')
_SAMPLE = re.compile(r"\{(?P<labels>[^}]*)\} (?P<value>\S+?)(?:,|$)")


def need_promtool() -> str:
    """promtool's path; skip (or fail in CI, where it must exist) when it is absent."""
    if PROMTOOL is None:
        if os.environ.get("PERFALERT_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is required here (apt-get install prometheus)")
        pytest.skip("promtool not installed (Debian package 'prometheus')")
    return PROMTOOL


def _labels(text: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text))


def promtool_states(tmp: Path, rule_file_text: str, series: dict[str, str], ticks: int,
                    interval_s: int = 60) -> dict[tuple[int, str], tuple[str, int]]:
    """``{(tick_seconds, source): (alertstate, activeAt_seconds)}`` for ticks 0..ticks-1.

    ``series`` maps a series selector (``m{source="s1"}``) to its values in expanding
    notation, one per ``interval_s``.
    """
    promtool = need_promtool()
    (tmp / "rules.yml").write_text(rule_file_text)
    tests = []
    for i in range(ticks):
        for expr in ("ALERTS", "ALERTS_FOR_STATE"):
            tests.append({"expr": expr, "eval_time": f"{i * interval_s}s", "exp_samples": []})
    doc = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": f"{interval_s}s",
        "tests": [{
            "interval": f"{interval_s}s",
            "input_series": [{"series": k, "values": v} for k, v in series.items()],
            "promql_expr_test": tests,
        }],
    }
    (tmp / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp, capture_output=True, text=True,
                          timeout=120)
    out = proc.stdout + proc.stderr
    if proc.returncode not in (0, 1) or ("FAILED" not in out and "SUCCESS" not in out):
        raise AssertionError(f"promtool did not run the test:\n{out}")
    if "FAILED" in out and "got:" not in out:
        raise AssertionError(f"promtool rejected the input:\n{out}")
    state: dict[tuple[int, str], str] = {}
    active_at: dict[tuple[int, str], int] = {}
    current: tuple[str, int] | None = None
    for line in out.splitlines():
        m = _EXPR.match(line)
        if m:
            current = (m["expr"], int(parse_duration(m["time"]).total_seconds()))
            continue
        if current and line.strip().startswith("got:"):
            for s in _SAMPLE.finditer(line.strip()[4:]):
                labels = _labels(s["labels"])
                key = (current[1], labels.get("source", ""))
                if current[0] == "ALERTS":
                    state[key] = labels["alertstate"]
                else:
                    active_at[key] = int(float(s["value"]))
    return {k: (v, active_at[k]) for k, v in state.items()}

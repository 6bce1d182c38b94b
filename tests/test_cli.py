"""The ``perfalert`` command: outputs, exit codes, one-line errors without traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import NAB, ROOT

from perfalert_lab.cli import main

SPEC_EXAMPLE = ROOT / "tests" / "data" / "spec_example.yaml"
RULES = """\
version: 1
rules:
  - id: lat-high
    metric: ec2_request_latency_system_failure
    op: ">"
    threshold: 55
    notify: [log, {channel: webhook, url: "https://hooks.example.com/T0K3N-SECRET"}]
    escalation: {delay: 30m, max: 2}
responders: {ack_after: 45m}
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "perfalert_lab.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_validate_spec_example_exits_0() -> None:
    proc = run("validate", str(SPEC_EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    assert "ok, 1 rule(s): cpu-high" in proc.stdout


def test_validate_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: a\n    metric: m\n    threshold: x\n    op: '~'\n    colour: red\n")
    proc = run("validate", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith(f"perfalert: error: {bad}:") for line in lines)
    assert "Traceback" not in proc.stderr


def test_backtest_writes_the_four_outputs(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    out = tmp_path / "out"
    metrics = NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv"
    incidents = NAB / "labels" / "combined_windows.json"
    assert (
        main(["backtest", str(metrics), "--rules", str(rules), "--incidents", str(incidents), "--out", str(out)]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["alerts.csv", "notifications.csv", "report.html", "stats.csv"]
    alerts = pd.read_csv(out / "alerts.csv")
    assert len(alerts) > 0 and alerts["fired_at"].str.endswith("Z").all()
    stats = pd.read_csv(out / "stats.csv")
    assert stats["rule_id"].tolist() == ["lat-high", "TOTAL"] and "recall" in stats.columns
    # the planted token appears in no output
    for p in out.iterdir():
        assert "T0K3N-SECRET" not in p.read_text(), p.name


def test_backtest_interval_clock(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    metrics = NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv"
    proc = run("backtest", str(metrics), "--rules", str(rules), "--clock", "interval:5m:10m")
    assert proc.returncode == 0, proc.stderr
    assert "lat-high" in proc.stdout


@pytest.mark.parametrize("args", [
    ["backtest", "missing.csv", "--rules", "RULES"],
    ["backtest", "METRICS", "--rules", "missing.yaml"],
    ["backtest", "METRICS", "--rules", "RULES", "--clock", "hourly"],
    ["backtest", "BADCSV", "--rules", "RULES"],
    ["backtest", "METRICS"],
    ["frobnicate"],
    ["export", "RULES", "--format", "json"],
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, args: list[str]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("timestamp,value\n2026-01-01,abc\n")
    metrics = NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv"
    subst = {"RULES": str(rules), "METRICS": str(metrics), "BADCSV": str(bad_csv),
             "missing.csv": str(tmp_path / "missing.csv"), "missing.yaml": str(tmp_path / "missing.yaml")}
    out = tmp_path / "out"
    proc = run(*[subst.get(a, a) for a in args], "--out", str(out)) if args[0] == "backtest" else \
        run(*[subst.get(a, a) for a in args])
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("perfalert")
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_failed_run_keeps_previous_outputs(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    out = tmp_path / "out"
    metrics = NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv"
    assert main(["backtest", str(metrics), "--rules", str(rules), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2026-01-01,abc\n")
    assert main(["backtest", str(bad), "--rules", str(rules), "--out", str(out)]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_export_yaml_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "x.yaml"
    assert main(["export", str(SPEC_EXAMPLE), "--format", "yaml", "-o", str(out)]) == 0
    assert main(["validate", str(out)]) == 0
    import perfalert_lab as pal

    assert pal.load_rules(out) == pal.load_rules(SPEC_EXAMPLE)


def test_demo_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run("demo", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    stats = pd.read_csv(out / "stats.csv")
    assert stats["alerts"].iloc[-1] > 0 and 0 < stats["recall"].iloc[-1] <= 1


def test_version_and_help() -> None:
    assert main(["--version"]) == 0
    assert main(["backtest", "--help"]) == 0


TYPO_RULES = """\
version: 1
rules:
  - id: lat-high
    metric: ec2_request_latency_system_failur
    op: ">"
    threshold: 55
"""


def test_a_rule_matching_no_series_is_said_on_stderr_and_strict_makes_it_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(TYPO_RULES)
    data = str(NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv")
    proc = run("backtest", data, "--rules", str(rules), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if "warning" in x]
    assert lines == ["perfalert: warning: rule 'lat-high': metric 'ec2_request_latency_system_failur' matches no "
                     "series; did you mean 'ec2_request_latency_system_failure'? (metrics in the input: "
                     "ec2_request_latency_system_failure)"]
    assert "warnings.warn" not in proc.stderr and ".py:" not in proc.stderr  # no source lines of ours
    strict = run("backtest", data, "--rules", str(rules), "--out", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == 2
    assert strict.stderr.splitlines()[-1].startswith("perfalert: error: rule 'lat-high': metric")
    assert "Traceback" not in strict.stderr and not (tmp_path / "strict").exists()


def _pool_after(code: str, env: dict[str, str]) -> str:
    import os

    out = subprocess.run([sys.executable, "-c", code + "; import pyarrow as pa; print(pa.default_memory_pool()"
                          ".backend_name)"], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_the_command_gives_arrow_memory_back_through_malloc_unless_the_user_chose_a_pool():
    as_command = "import sys; from perfalert_lab import cli; sys.argv = ['perfalert', '--version']; cli.run()"
    assert _pool_after(as_command, {}) == "system"
    assert _pool_after(as_command, {"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}) == "mimalloc"
    # main() called in a Python session leaves the process's allocators as they were
    in_session = "from perfalert_lab import cli; cli.main(['--version'])"
    default = _pool_after("import pyarrow", {})
    assert _pool_after(in_session, {}) == default
    if default == "system":  # a pyarrow built without mimalloc and jemalloc: nothing to tell apart
        pytest.skip("pyarrow's default pool is already the system allocator")

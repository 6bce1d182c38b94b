"""Both kinds of rule in one house (issue 20): one series model, every command for both kinds.

Each test here failed before its fix: series that differ only by a label were merged; the
report crashed on alerts without a source or a top-level number; ``sweep``, ``diff`` and
``export`` refused a Prometheus rule file; ``--workers`` dropped the Prometheus options.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SHARED_RULES, need_shared

import perfalert_lab as pal
from perfalert_lab.cli import main
from perfalert_lab.frames import SeriesSet
from perfalert_lab.plot import TimelineDisplay, report_figures

T = pd.date_range("2026-01-01", periods=60, freq="1min", tz="UTC")


def _codes_frame() -> pd.DataFrame:
    """web-1's requests, once per status code: two series that differ only by the label ``code``."""
    parts = [pd.DataFrame({"timestamp": T, "source": "web-1", "metric": "requests", "code": code,
                           "value": base + np.arange(60) % 7}) for code, base in (("200", 10.0), ("500", 90.0))]
    return pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)


OURS = """version: 1
rules:
  - {id: r200, metric: requests, match: {code: "200"}, threshold: 12, notify: [log]}
  - {id: r500, metric: requests, match: {code: "500"}, threshold: 92, notify: [log]}
"""

PROM = """groups:
  - name: g
    rules:
      - alert: Agg
        expr: sum by (code) (requests) > 50
        labels: {severity: page}
      - alert: Both
        expr: requests > 0 and requests < 95
      - alert: Absent
        expr: absent(nothing_here)
      - alert: Bare
        expr: requests
"""


@pytest.mark.parametrize("order", ["time", "series"])
def test_series_that_differ_only_by_a_label_stay_two(order: str) -> None:
    frame = _codes_frame()
    if order == "series":
        frame = frame.sort_values(["code", "timestamp"], kind="stable").reset_index(drop=True)
    series = SeriesSet.from_frame(frame)
    assert series.n_series == 2
    assert series.keys["code"].tolist() == ["200", "500"]
    assert np.diff(series.offsets).tolist() == [60, 60]
    assert len(set(series.hashes.tolist())) == 2
    assert pal.read_metrics  # the normaliser agrees: no duplicates between the two series
    normal = pal.frames.normalize_frame(frame)
    assert normal.attrs["perfalert"]["duplicates_dropped"] == 0


def test_a_rule_matching_a_label_sees_its_series_and_the_alerts_carry_the_label() -> None:
    result = pal.backtest(_codes_frame(), pal.rules.parse_rules(OURS))
    stats = result.stats.set_index("rule_id")
    assert stats.loc["r200", "evaluations"] == stats.loc["r500", "evaluations"] == 60
    assert stats.loc["r200", "alerts"] > 0 and stats.loc["r500", "alerts"] > 0
    assert list(result.alerts.columns[:15]) == pal.engine.lifecycle.ALERT_COLUMNS
    assert result.alerts.columns[-1] == "code"
    assert set(result.alerts.loc[result.alerts["rule_id"] == "r200", "code"]) == {"200"}
    # a duplicate is the same label set at the same time, nothing else
    twice = pd.concat([_codes_frame(), _codes_frame().iloc[:3]], ignore_index=True)
    assert pal.frames.normalize_frame(twice).attrs["perfalert"]["duplicates_dropped"] == 3


def test_a_timeline_draws_the_series_of_its_label_set() -> None:
    result = pal.backtest(_codes_frame(), pal.rules.parse_rules(OURS))
    d = TimelineDisplay.from_result(result, source="web-1", metric="requests", labels={"code": "500"})
    assert d.values.min() >= 90 and d.name == "web-1 / requests code=500"
    assert set(d.alerts["rule_id"]) == {"r500"}
    assert set(d.notifications["alert_id"]) <= set(d.alerts["alert_id"])
    names = [name for name, _ in report_figures(result)]
    assert "web-1 / requests code=200" in names and "web-1 / requests code=500" in names


def test_alerts_without_a_source_or_a_number_are_drawn(tmp_path: Path) -> None:
    rules_path = tmp_path / "alerts.yml"
    rules_path.write_text(PROM)
    result = pal.backtest(_codes_frame(), pal.load_prometheus_rules(rules_path))
    fired = set(result.alerts["rule_id"])
    assert fired == {"Agg", "Both", "Absent", "Bare"}
    assert (result.alerts.loc[result.alerts["rule_id"].isin(["Agg", "Absent"]), "source"] == "").all()
    for rule_id in sorted(fired):
        d = TimelineDisplay.from_result(result, metric=rule_id).plot()
        assert len(d.alerts) >= 1 and len(d.times) >= 1
        lines = [a.get_label() for a in d.artists["lines"]]
        assert lines == (["Agg > 50"] if rule_id == "Agg" else []), lines  # no threshold line without a number
    d = TimelineDisplay.from_result(result, metric="Agg", labels={"labels": '{alertname="Agg", code="500", '
                                                                           'severity="page"}'})
    assert d.values.min() == 90 and d.values.max() == 96  # the compared value: sum by (code) of the 500 series
    assert len(report_figures(result)) >= 4


def test_every_command_takes_a_prometheus_rule_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = tmp_path / "codes.csv"
    _codes_frame().to_csv(metrics, index=False)
    rules_path = tmp_path / "alerts.yml"
    rules_path.write_text(PROM)
    out = tmp_path / "bt"
    assert main(["backtest", str(metrics), "--rules", str(rules_path), "--out", str(out)]) == 0
    assert (out / "report.html").stat().st_size > 10_000

    # sweep, with a recommendation written back into the user's file (only what changed)
    sw = tmp_path / "sw"
    assert main(["sweep", str(metrics), "--rules", str(rules_path), "--rule", "Agg", "--param",
                 "threshold=40:100:10", "--param", "for=0m,5m", "--max-alerts-per-week", "100000",
                 "--out", str(sw)]) == 0
    table = pd.read_csv(sw / "sweep.csv")
    assert len(table) == 14 and {"threshold", "for", "pages_per_week"} <= set(table.columns)
    tuned = (sw / "tuned-rules.yml").read_text()
    before, after = PROM.splitlines(), tuned.splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [("        expr: sum by (code) (requests) > 50", "        expr: sum by (code) (requests) > 90")]
    pal.load_prometheus_rules(sw / "tuned-rules.yml")
    # a page is SPEC 5's: Agg's alerts (severity page) page once each when they fire
    row = table[(table["threshold"] == 50) & (table["for"] == "0s")].iloc[0]
    assert row["pages"] == row["alerts"] > 0
    assert main(["sweep", str(metrics), "--rules", str(rules_path), "--rule", "Agg", "--param", "cooldown=0m"]) == 2
    assert "has no 'cooldown'" in capsys.readouterr().err

    # diff: a tighter threshold loses the alert
    tighter = tmp_path / "tighter.yml"
    tighter.write_text(PROM.replace("> 50", "> 195"))
    assert main(["diff", str(rules_path), str(rules_path), str(metrics)]) == 0
    assert main(["diff", str(rules_path), str(tighter), str(metrics), "--out", str(tmp_path / "d")]) == 3
    lost = pd.read_csv(tmp_path / "d" / "lost.csv")
    assert lost["rule_id"].tolist() == ["Agg"]

    # export: the file as it is, or a clear refusal to turn PromQL into our format
    assert main(["export", str(rules_path), "--format", "prometheus", "-o", str(tmp_path / "x.yml")]) == 0
    assert (tmp_path / "x.yml").read_text() == PROM
    capsys.readouterr()
    assert main(["export", str(rules_path), "--format", "yaml"]) == 2
    err = capsys.readouterr().err
    assert "cannot hold PromQL" in err and err.count("\n") == 1


def test_pages_mean_one_thing_for_every_kind_of_rule(tmp_path: Path) -> None:
    """A page (SPEC 5): an alert of a paging severity pages once when it fires, whichever kind of rule."""
    frame = _codes_frame()
    ours = pal.rules.parse_rules(OURS.replace("notify: [log]}", "notify: [log, email], severity: critical}"))
    oncall = pal.backtest(frame, ours).oncall().set_index("rule_id")
    fired = pal.backtest(frame, ours).stats.set_index("rule_id")["alerts"]
    assert oncall.loc["TOTAL", "pages"] == fired["TOTAL"] > 0
    table = pal.sweep(frame, ours["r500"], threshold=[92], rules=ours)
    assert table["pages"].iloc[0] == oncall.loc["r500", "pages"]
    rules_path = tmp_path / "alerts.yml"
    rules_path.write_text(PROM)
    prom = pal.load_prometheus_rules(rules_path)
    result = pal.backtest(frame, prom)
    load = result.oncall().set_index("rule_id")
    assert load.loc["Agg", "pages"] == (result.alerts["rule_id"] == "Agg").sum() > 0
    assert load.loc["TOTAL", "pages"] == load.loc["Agg", "pages"]  # no other rule has a paging severity
    assert pal.sweep(frame, prom.rule("Agg"), threshold=[50], rules=prom)["pages"].iloc[0] == load.loc["Agg", "pages"]
    # alerts per week mean one thing too: the sweep's is the statistics' alerts_per_day x 7, for both kinds
    off_grid = frame.assign(timestamp=frame["timestamp"] + pd.Timedelta("30s"))  # samples between the rule's ticks
    for rules, rule in ((prom, prom.rule("Agg")), (ours, ours["r500"])):
        row = pal.sweep(off_grid, rule, threshold=[50 if rules is prom else 92], rules=rules).iloc[0]
        assert row["alerts"] > 0
        assert row["alerts_per_week"] == pytest.approx(row["alerts_per_day"] * 7, rel=1e-12)


@pytest.mark.slow
def test_workers_keep_the_prometheus_options(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    metrics = tmp_path / "codes.csv"
    frame = _codes_frame()
    frame["value"] = frame["value"] + np.where(np.arange(len(frame)) % 2, 0.0, 0.3)
    frame.to_csv(metrics, index=False)
    rules_path = tmp_path / "alerts.yml"
    rules_path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "R", "expr": "avg_over_time(requests[2m]) > 93"}]}]}))
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    outs = {}
    for name, extra in (("plain", []), ("dask", ["--workers", "1"])):
        out = tmp_path / name
        assert main(["backtest", str(metrics), "--rules", str(rules_path), "--prometheus-compat", "2",
                     "--group-offset", "30s", "--out", str(out), *extra]) == 0
        outs[name] = pd.read_csv(out / "alerts.csv")
    pd.testing.assert_frame_equal(outs["plain"], outs["dask"])
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(p.cmdline())]  # multiprocessing's, one per interpreter
    # the local cluster's worker processes ended with the command
    assert not left, [" ".join(p.cmdline())[:160] for p in left]


# --------------------------------------------------------------------------- every file promtool accepts (issue 21)

# files whose verdict still differs from promtool's, and why (a strict xfail: mending one fails the test
# until it is taken off this list)
KNOWN_GAPS: dict[str, str] = {}


def _real_rule_files() -> list[object]:
    if not SHARED_RULES.is_dir():
        return [pytest.param(None, id="no-corpus")]  # the test says why: a failure under CI, else a skip
    return [pytest.param(p, id=p.name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[p.name])
                         if p.name in KNOWN_GAPS else ()) for p in sorted(SHARED_RULES.glob("*.yml"))]


@pytest.mark.parametrize("path", _real_rule_files())
def test_validate_gives_promtools_verdict_on_every_real_rule_file(path: Path, capsys: pytest.CaptureFixture[str]
                                                                  ) -> None:
    import subprocess
    import warnings

    from promtool_oracle import need_promtool

    if path is None:
        need_shared(SHARED_RULES)
    theirs = subprocess.run([need_promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # multi-document files warn; what they warn is tested below
        ours = main(["validate", str(path)])
        err = capsys.readouterr().err
        assert (ours == 0) == (theirs.returncode == 0), (err, theirs.stdout[-500:], theirs.stderr[-500:])
        if ours:  # every problem named with its file and line
            assert all(line.startswith(f"perfalert: error: {path}") for line in err.splitlines() if line), err
        elif "SUCCESS" in theirs.stdout:  # the same rules as promtool counts (its lint complaints print none)
            counted = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", theirs.stdout))
            assert len(pal.load_prometheus_rules(path)) == counted, theirs.stdout


def test_empty_multi_document_and_manifest_files(tmp_path: Path) -> None:
    for text in ("", "null\n", "{}\n", "# nothing yet\n"):
        (tmp_path / "e.yml").write_text(text)
        assert len(pal.load_prometheus_rules(tmp_path / "e.yml")) == 0
        assert main(["validate", str(tmp_path / "e.yml")]) == 0  # never read as our format for lack of rules
    multi = Path(__file__).parent / "corpus" / "prom_rules" / "ok_multidoc.yml"
    with pytest.warns(pal.PerfAlertWarning, match=r"1 more YAML document\(s\) after the first ignored.*1 rule"):
        assert pal.load_prometheus_rules(multi).ids == ["Read"]
    manifest = tmp_path / "rules.yaml"
    manifest.write_text("""apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: a}
spec:
  groups:
    - name: g1
      rules:
        - {alert: Hot, expr: requests > 95}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: b}
spec:
  groups:
    - name: g2
      rules:
        - alert: Cold
          expr: requests < 12
          for: bogus
""")
    with pytest.raises(pal.errors.RulesError) as info:
        pal.load_prometheus_rules(manifest)
    assert info.value.problems == [f"{manifest}:19: group 'g2': rule 'Cold': for: expected a duration such as "
                                   "'90s', '5m' or '1h30m', got 'bogus'"]
    manifest.write_text(manifest.read_text().replace("for: bogus", "for: 1m"))
    rules = pal.load_prometheus_rules(manifest)
    assert [g.name for g in rules.groups] == ["g1", "g2"] and rules.ids == ["Hot", "Cold"]
    result = pal.backtest(_codes_frame(), rules)
    assert set(result.alerts["rule_id"]) == {"Hot", "Cold"}


def test_one_tuner_class_gives_both_kinds_the_same_statistics() -> None:
    """One Tuner over the rule source's tuning model (no class factory, no subclass picked in
    ``__new__``): the same rule written both ways, moved to the same values, shows the same
    statistics (notifications aside: a Prometheus alert also notifies when it resolves)."""
    pytest.importorskip("ipywidgets")
    from perfalert_lab.rules.promfile import parse_prometheus_rules
    from perfalert_lab.widgets import Tuner

    t = pd.date_range("2026-01-01", periods=600, freq="1min", tz="UTC")
    rng = np.random.default_rng(3)
    frame = pd.concat([pd.DataFrame({"timestamp": t, "source": s, "metric": "cpu",
                                     "value": 60 + 30 * np.sin(np.arange(600) / (20 + 7 * i)) + rng.normal(0, 3, 600)})
                       for i, s in enumerate(["web-1", "web-2"])], ignore_index=True)
    ours = pal.rules.parse_rules("version: 1\nrules:\n"
                                 "  - {id: Hot, metric: cpu, threshold: 80, for: 2m, notify: [log]}\n")
    prom = parse_prometheus_rules("groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: Hot\n    expr: cpu > 80\n"
                                  "    for: 2m\n", name="hot.yml")
    first = pal.backtest(frame, ours, clock=pal.IntervalClock("1m")).alerts.iloc[0]
    incidents = pd.DataFrame({"start": [first["fired_at"] - pd.Timedelta("5min")],
                              "end": [first["fired_at"] + pd.Timedelta("20min")], "source": [first["source"]]})
    a = pal.tune(frame, ours["Hot"], rules=ours, incidents=incidents, clock=pal.IntervalClock("1m"))
    b = pal.tune(frame, prom.rule("Hot"), rules=prom, incidents=incidents)
    assert type(a) is Tuner and type(b) is Tuner and "__new__" not in Tuner.__dict__
    assert set(a.controls) - {"clear", "clear_enabled", "cooldown"} == set(b.controls) - {"keep_firing_for"}
    recalls = []
    for threshold, for_ in ((80.0, "2m"), (85.0, "5m"), (70.0, "0s")):
        for tuner in (a, b):
            tuner.controls["threshold"].value = threshold
            tuner.controls["for"].value = for_
            tuner.controls["series"].value = "web-1"
        mine, theirs = (t.series_stats().drop(columns="notifications") for t in (a, b))
        assert mine["alerts"].iloc[0] > 0
        recalls.append(mine["recall"].iloc[0])
        pd.testing.assert_frame_equal(mine, theirs)
        assert a.curve is not None and b.curve is not None  # the trade-off curve: same alerts at every threshold
        assert a.curve["alerts"].tolist() == b.curve["alerts"].tolist()
    assert max(recalls) > 0  # the scores are compared too, not only NaNs


def test_the_series_model_goes_into_promql_and_a_rule_file_replay(tmp_path: Path) -> None:
    """One container: a SeriesSet (what our engine, the tuner and Dask take) goes into ``pal.promql``
    and a Prometheus rule file's backtest as the frame it was made from does."""
    frame = _codes_frame().assign(timestamp=lambda f: f["timestamp"] + pd.Timedelta("250ms"))
    series = SeriesSet.from_frame(frame)
    expr = 'sum by (code) (rate(requests{code=~"5.."}[5m])) > 0'
    pd.testing.assert_frame_equal(pal.promql(series, expr), pal.promql(frame, expr))
    path = tmp_path / "alerts.yml"
    path.write_text(PROM)
    rules = pal.load_prometheus_rules(path)
    a, b = pal.backtest(series, rules), pal.backtest(frame, rules)
    assert len(a.alerts) > 0
    pd.testing.assert_frame_equal(a.alerts, b.alerts)
    pd.testing.assert_frame_equal(a.stats, b.stats)


def test_our_rules_take_the_series_model_and_read_series_feeds_both_kinds(tmp_path: Path) -> None:
    """Our own rules replay a SeriesSet as the frame it was made from (before, ``pal.backtest(series,
    our rules)`` crashed in the engine's first stage), and what ``pal.read_series`` reads (what the CLI
    now replays: no string per row) gives both kinds of rule the alerts the read frame gives."""
    frame = _codes_frame()
    ours = pal.rules.parse_rules(OURS)
    a, b = pal.backtest(SeriesSet.from_frame(frame), ours), pal.backtest(frame, ours)
    assert len(a.alerts) > 0
    pd.testing.assert_frame_equal(a.alerts, b.alerts)
    pd.testing.assert_frame_equal(a.notifications, b.notifications)
    pd.testing.assert_frame_equal(a.stats, b.stats)
    data = tmp_path / "m.csv"
    frame.to_csv(data, index=False)
    path = tmp_path / "alerts.yml"
    path.write_text(PROM)
    for rules in (ours, pal.load_prometheus_rules(path)):
        a, b = pal.backtest(pal.read_series(data), rules), pal.backtest(pal.read_metrics(data), rules)
        assert len(a.alerts) > 0
        pd.testing.assert_frame_equal(a.alerts, b.alerts)
        pd.testing.assert_frame_equal(a.stats, b.stats)


def test_a_handed_over_input_is_freed_before_the_tables_are_built(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """What the command reads is handed to the backtest (:class:`Handoff`): a rule file's backtest lets it go
    once its store is made, so it is gone while the tables are built (the run's memory peak); the tables
    are those of the series passed plainly, for both kinds of rule, and a handoff is taken once."""
    import weakref

    import perfalert_lab.prometheus.backtest as pb
    from perfalert_lab.frames import Handoff

    path = tmp_path / "alerts.yml"
    path.write_text(PROM)
    rules = pal.load_prometheus_rules(path)
    plain = pal.backtest(SeriesSet.from_frame(_codes_frame()), rules)
    series = SeriesSet.from_frame(_codes_frame())
    alive = weakref.ref(series)
    seen: list[bool] = []
    rows = pb._AlertRows.tables

    def tables(self: pb._AlertRows, *args: object) -> object:
        seen.append(alive() is not None)
        return rows(self, *args)

    monkeypatch.setattr(pb._AlertRows, "tables", tables)
    handed = Handoff(series)
    del series
    got = pal.backtest(handed, rules)
    assert seen == [False]
    pd.testing.assert_frame_equal(got.alerts, plain.alerts)
    pd.testing.assert_frame_equal(got.notifications, plain.notifications)
    with pytest.raises(RuntimeError, match="already taken"):
        handed.take()
    ours = pal.rules.parse_rules(OURS)
    got, plain = pal.backtest(Handoff(SeriesSet.from_frame(_codes_frame())), ours), pal.backtest(_codes_frame(), ours)
    assert len(got.alerts) > 0
    pd.testing.assert_frame_equal(got.alerts, plain.alerts)

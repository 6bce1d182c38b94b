"""SLOs (SPEC 13): burn-rate alerts generated as sloth generates them, replayed, and judged."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_RULES, need_shared

import perfalert_lab as pal
from perfalert_lab.cli import main
from perfalert_lab.errors import RulesError

DATA = Path(__file__).parent / "data" / "slo"
DAY3 = pd.Timestamp("2026-01-04", tz="UTC")


def _hand_made() -> pd.DataFrame:
    """Four days at one sample a minute from 2026-01-01: ``requests`` counts 100 a minute, ``failed`` 0,
    but 100 (everything fails) in the 30 samples 2026-01-04 10:00 to 10:29."""
    t = pd.date_range("2026-01-01", periods=4 * 1440, freq="1min", tz="UTC")
    failed = np.where((t >= DAY3 + pd.Timedelta("10h")) & (t < DAY3 + pd.Timedelta("10h30min")), 100.0, 0.0)
    return pd.concat([pd.DataFrame({"timestamp": t, "metric": "requests", "value": 100.0}),
                      pd.DataFrame({"timestamp": t, "metric": "failed", "value": failed})], ignore_index=True)


HAND_SLO = pal.SLO("checkout", 99, "30d", {"errors": "sum(sum_over_time(failed[{{.window}}]))",
                                          "total": "sum(sum_over_time(requests[{{.window}}]))"},
                   service="shop", alert_name="CheckoutBurn")


def test_budget_burn_rates_and_detection_on_a_hand_made_history() -> None:
    """The workbook's numbers, worked out by hand (budget = 1 - 99 % = 0.01; the SLI counts samples in
    the window ``(t - w, t]``, so the ratio over w at t is the failing samples in the last w / w):

    * page quick (14.4 x 0.01 = 0.144 over 1h and 5m): the 1h ratio needs 9 failing minutes
      (9/60 = 0.15; 8/60 = 0.133): it fires at 10:08, 480 s after the incident starts.
    * page slow (6 x 0.01 over 6h and 30m): true from 10:21 (22/360 > 0.06) until the 30m window
      holds fewer than 2 failing samples, at 10:58 (window (10:28, 10:58] holds only 10:29). The
      quick one ends at 10:34. The page alert (their ``or``) is one alert, 10:08 to 10:58: reset
      time 10:58 - 10:30 (the incident's end) = 1680 s.
    * ticket (1 x 0.01 over 3d and 6h): 30 failing minutes of 4320 in 3 days is 0.0069 < 0.01: no
      ticket (a 30-minute outage spends 3000 / 43200 = 6.9 % of a 30-day budget, under the 10 %
      a ticket waits for).
    * budget spent before detection: the 8 failing minutes 10:01..10:08 (the window (10:00, 10:08])
      = 800 failed of a budget of 0.01 x 30 d x 100/min = 43200: 800 / 43200 = 0.018519.
    * the 5m burn rate at 10:02 is 3 failing samples / 5 / 0.01 = 60; the 1h one at 10:30 is 30/60/0.01 = 50.
    * budget remaining (sloth's, over the history there is): the mean 5m ratio over the 5760 ticks is
      30 samples x 5 ticks x 1/5 / 5760 = 0.005208; 1 - 0.005208 / 0.01 = 0.479167 at the end.
    * without incidents, the events are the stretches where the 1h burn rate exceeds 1: from 10:00
      until 10:29 leaves the hour, 11:29; the page resets 10:58 - 11:29 = -1860 s (before the burn ends).
    """
    incidents = pd.DataFrame({"start": [DAY3 + pd.Timedelta("10h")], "end": [DAY3 + pd.Timedelta("10h30min")]})
    out = pal.backtest_slo(_hand_made(), HAND_SLO, incidents=incidents)
    stats = out.stats.set_index("tier")
    page, ticket = stats.loc["page"], stats.loc["ticket"]
    assert page["alerts"] == 1 and ticket["alerts"] == 0
    alert = out.alerts.iloc[0]
    assert alert["tier"] == "page" and alert["slo"] == "shop-checkout"
    assert alert["fired_at"] == DAY3 + pd.Timedelta("10h8min")
    assert alert["resolved_at"] == DAY3 + pd.Timedelta("10h58min")
    assert page["recall"] == 1 and page["precision"] == 1 and page["mean_detection_s"] == 480
    assert page["mean_reset_s"] == 1680
    assert page["budget_spent_before_detection"] == pytest.approx(800 / 43200, rel=1e-9)
    assert ticket["recall"] == 0 and np.isnan(ticket["precision"])
    assert page["pages_per_week"] == pytest.approx(1 / (4 * 1440 - 1) * 7 * 1440, rel=1e-9)
    burn = out.burn.set_index(["window", "timestamp"])["burn_rate"]
    assert burn.loc[("5m", DAY3 + pd.Timedelta("10h2min"))] == pytest.approx(60)
    assert burn.loc[("1h", DAY3 + pd.Timedelta("10h30min"))] == pytest.approx(50)
    assert out.budget["budget_remaining"].iloc[-1] == pytest.approx(1 - 30 / 5760 / 0.01, rel=1e-9)
    # scored on the burn itself
    burning = pal.backtest_slo(_hand_made(), HAND_SLO)
    assert burning.events[["start", "end"]].values.tolist() == [[DAY3 + pd.Timedelta("10h"),
                                                                 DAY3 + pd.Timedelta("11h29min")]]
    assert burning.stats.set_index("tier").loc["page", "mean_reset_s"] == -1860


def _sloth_history(seed: int) -> pd.DataFrame:
    """Five days of HTTP request counters for sloth's getting-started SLO, with a short outage, a
    longer partial one, and background errors: both of its alert kinds fire."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2026-01-01", periods=5 * 1440, freq="1min", tz="UTC")
    n = len(t)
    rate = np.full(n, rng.uniform(0.05, 0.3))
    a, b = rng.integers(800, 1500), rng.integers(2500, 4000)
    rate[a:a + rng.integers(10, 40)] = rng.uniform(20, 200)
    rate[b:b + rng.integers(200, 500)] = rng.uniform(1.5, 4)
    codes = {"200": np.cumsum(rng.poisson(600, n)), "500": np.cumsum(rng.poisson(rate)),
             "429": np.cumsum(rng.poisson(0.05, n))}
    return pd.concat([pd.DataFrame({"timestamp": t, "metric": "http_request_duration_seconds_count",
                                    "job": "myservice", "code": c, "value": v.astype(float)})
                      for c, v in codes.items()], ignore_index=True)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_sloth_spec_alerts_as_the_file_sloth_generates(seed: int) -> None:
    """sloth's getting-started spec, generated here, gives the same alerts (labels, times,
    annotations) as the rule file sloth itself generated from it, on the same history."""
    need_shared(SHARED_RULES)
    slos = pal.load_slos(DATA / "sloth-getting-started.yml")
    assert [(w.severity, round(slos[0].factor(w), 9)) for w in slos[0].windows] == [
        ("page", 14.4), ("page", 6), ("ticket", 3), ("ticket", 1)]
    frame = _sloth_history(seed)
    ours = pal.backtest_slo(frame, slos)
    theirs = pal.backtest(frame, pal.load_prometheus_rules(SHARED_RULES / "sloth__getting-started.yml"))
    cols = ["rule_id", "fired_at", "resolved_at", "labels", "annotations"]
    a = ours.result.alerts[cols].sort_values(cols).reset_index(drop=True)
    b = theirs.alerts[cols].sort_values(cols).reset_index(drop=True)
    assert set(ours.alerts["tier"]) == {"page", "ticket"}
    pd.testing.assert_frame_equal(a, b)
    # the generated file names every rule sloth's does
    sloth = pal.load_prometheus_rules(SHARED_RULES / "sloth__getting-started.yml")
    assert [r.name for g in ours.rules.groups for r in g.rules] == [r.name for g in sloth.groups for r in g.rules]


def test_openslo_reads_as_sloth_reads_it(tmp_path: Path) -> None:
    """An OpenSLO v1alpha spec (good and total queries) records the same error ratios as the file sloth
    generated from it; an OpenSLO v1 spec with a bad query reads too."""
    need_shared(SHARED_RULES)
    slos = pal.load_slos(DATA / "openslo-getting-started.yml")
    assert [(s.id, s.objective, s.window) for s in slos] == [("my-service-sloth-slo-my-service-0", 99.9, "30d")]
    frame = _sloth_history(3)
    mine = pal.slo.slo_rules(slos)
    theirs = pal.load_prometheus_rules(SHARED_RULES / "sloth__openslo-getting-started.yml")
    from perfalert_lab.prometheus.backtest import backtest_prometheus

    def recorded(rules: pal.slo.PromRuleFile) -> dict[str, np.ndarray]:  # type: ignore[name-defined]
        store = backtest_prometheus(frame, rules, keep_recorded=True).recorded
        out = {}
        for i, lb in enumerate(store.labels):
            name = dict(lb)["__name__"]
            if name.startswith("slo:"):
                out[name] = store.vals[store.offsets[i]:store.offsets[i + 1]]
        return out

    a, b = recorded(mine), recorded(theirs)
    assert set(a) == set(b) and len(a) >= 8
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, err_msg=name)
    v1 = tmp_path / "v1.yml"
    v1.write_text("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: api}\nspec:\n  service: web\n"
                  "  timeWindow: [{duration: 28d, isRolling: true}]\n"
                  "  indicator:\n    spec:\n      ratioMetric:\n        bad: {metricSource: {type: Prometheus, spec: "
                  "{query: 'sum(rate(e[{{.window}}]))'}}}\n"
                  "        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(t[{{.window}}]))'}}}\n"
                  "  objectives: [{target: 0.995}]\n")
    (slo,) = pal.load_slos(v1)
    assert (slo.id, slo.window, slo.objective, slo.errors) == ("web-api-0", "28d", 99.5, "sum(rate(e[{{.window}}]))")


@pytest.mark.parametrize(("text", "message"), [
    ("version: prometheus/v1\nservice: s\nslos:\n- name: a\n  objective: 120\n  sli: {raw: {error_ratio_query: x}}\n"
     "  alerting: {name: A}\n", r"slo.yml:4: .*objective 120 must be a percentage"),
    ("version: prometheus/v1\nservice: s\nslos:\n- name: a\n  objective: 99\n  alerting: {name: A}\n",
     r"slo.yml:4: the SLO needs 'sli:'"),
    ("version: prometheus/v1\nservice: s\nslos:\n- name: a\n  objective: 99\n  sli:\n    plugin: {id: x/y}\n"
     "  alerting: {name: A}\n", r"slo.yml:7: SLI plugin 'x/y' is not supported"),
    ("version: prometheus/v1\nservice: s\nslos:\n- name: a\n  objective: 99\n  sli: {raw: {error_ratio_query: x}}\n"
     "  alerting: {name: A}\n  windoww: 3d\n", r"slo.yml:8: unknown key 'windoww'"),
    ("kind: Deployment\n", r"slo.yml:1: not an SLO spec"),
    ("version: prometheus/v1\nservice: s\nslos:\n- name: a\n  objective: 99\n  sli: {events: {error_query: x}}\n"
     "  alerting: {name: A}\n", r"slo.yml:6: 'total_query' must be a PromQL query"),
])
def test_a_bad_spec_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                   message: str) -> None:
    path = tmp_path / "slo.yml"
    path.write_text(text)
    with pytest.raises(RulesError, match=message):
        pal.load_slos(path)
    out = tmp_path / "out"
    assert main(["slo", str(path), str(tmp_path / "none.csv"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "slo.yml:" in err and not out.exists()


def test_perfalert_slo_writes_every_output_and_promtool_accepts_the_rules(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    frame = _sloth_history(4)
    metrics = tmp_path / "m.csv"
    frame.to_csv(metrics, index=False)
    out = tmp_path / "out"
    assert main(["slo", str(DATA / "sloth-getting-started.yml"), str(metrics), "--out", str(out),
                 "--sweep", "page_quick=1,2,4", "--sweep", "ticket_slow=5:20:5", "--max-pages-per-week", "3"]) == 0
    printed = capsys.readouterr().out
    assert "page 14.4x over 1h/5m" in printed and "myservice-requests-availability" in printed
    assert "six strategies" in printed and "Chose page_quick=" in printed
    names = sorted(p.name for p in out.iterdir())
    assert names == ["alert-windows.yml", "alerts.csv", "budget.csv", "burn_rates.csv", "events.csv",
                     "notifications.csv", "report.html", "slo.rules.yml", "slo_stats.csv", "strategies.csv",
                     "sweep.csv", "tuned.rules.yml"]
    assert len(pd.read_csv(out / "sweep.csv")) == 12 and len(pd.read_csv(out / "strategies.csv")) == 6
    notes = pd.read_csv(out / "notifications.csv")
    assert set(notes["tier"]) <= {"page", "ticket"} and len(notes) and (notes["slo"] != "").all()
    windows = __import__("yaml").safe_load((out / "alert-windows.yml").read_text())
    assert windows["kind"] == "AlertWindows" and set(windows["spec"]) == {"sloPeriod", "page", "ticket"}
    assert pal.load_prometheus_rules(out / "tuned.rules.yml").alert_rules
    stats = pd.read_csv(out / "slo_stats.csv")
    assert list(stats.columns) == pal.slo.SLO_STATS_COLUMNS and list(stats["tier"]) == ["page", "ticket", "all"]
    alerts = pd.read_csv(out / "alerts.csv")
    assert {"tier", "slo"} <= set(alerts.columns) and len(alerts) == stats["alerts"].iloc[-1]
    assert "<img" in (out / "report.html").read_text()
    promtool = shutil.which("promtool")
    if promtool:
        for name in ("slo.rules.yml", "tuned.rules.yml"):
            check = subprocess.run([promtool, "check", "rules", str(out / name)], capture_output=True, text=True)
            assert check.returncode == 0, check.stdout + check.stderr


def test_a_latency_sli_counts_samples_over_the_threshold() -> None:
    """``sli={"metric", "threshold"}``: the errors are our metric's samples above the threshold, so a
    latency SLO reads the frame it is given (one sample a minute; 1h of 600 ms in a day of 100 ms)."""
    t = pd.date_range("2026-01-01", periods=2 * 1440, freq="1min", tz="UTC")
    value = np.where((t >= pd.Timestamp("2026-01-02 06:00", tz="UTC")) & (t < pd.Timestamp("2026-01-02 07:00",
                                                                                             tz="UTC")), 600.0, 100.0)
    frame = pd.DataFrame({"timestamp": t, "source": "web-1", "metric": "latency_ms", "value": value})
    slo = pal.SLO("fast", 99, "30d", {"metric": "latency_ms", "threshold": 300, "match": {"source": "web-1"}},
                  alert_name="SlowCheckout")
    out = pal.backtest_slo(frame, slo)
    burn = out.burn.set_index(["window", "timestamp"])["error_ratio"]
    assert burn.loc[("1h", pd.Timestamp("2026-01-02 06:59", tz="UTC"))] == pytest.approx(1.0)  # (05:59, 06:59]
    assert burn.loc[("5m", pd.Timestamp("2026-01-02 05:00", tz="UTC"))] == 0
    assert out.stats.set_index("tier").loc["page", "alerts"] == 1


def test_the_six_strategies_on_the_hand_made_history() -> None:
    """The workbook's strategies on the history of the first test (30 failing minutes from 10:00 on
    day 3; budget 0.01; the incident 10:00 to 10:30), worked out by hand:

    1. target error rate, 10m ratio > 0.01: fires on the first failing sample (1/10), 10:00:
       detection 0 s; ends when 10:29 leaves the 10m window, 10:39: reset 540 s.
    2. increased window, 36h ratio > 0.01: needs 22 failing samples of 2160, 10:21: detection 1260 s;
       still firing when the history ends (23:59): reset 13h29m = 48540 s.
    3. increased duration, 10m ratio > 0.01 for 1h: the ratio is above only 10:00 to 10:38: it never fires.
    4. burn rate, 1h ratio > 36 x 0.01 (5 % of 30 days in an hour): 22 of 60, 10:21: detection 1260 s;
       ends at 11:08 when fewer than 22 remain in the hour: reset 2280 s.
    5. multiple burn rates (page 1h > 0.144 or 6h > 0.06, ticket 3d > 0.01): pages at 10:08 (9 of 60),
       detection 480 s; the 6h condition holds until 16:08 (22 of 360): reset 5h38m = 20280 s.
    6. multiwindow multi-burn-rate: as the first test, 480 s and 1680 s.
    """
    incidents = pd.DataFrame({"start": [DAY3 + pd.Timedelta("10h")], "end": [DAY3 + pd.Timedelta("10h30min")]})
    table = pal.slo.compare_strategies(_hand_made(), HAND_SLO, incidents=incidents).set_index("strategy")
    assert list(table["name"]) == ["target error rate", "increased window", "increased duration", "burn rate",
                                   "multiple burn rates", "multiwindow, multi-burn-rate"]
    assert table["alerts"].tolist() == [1, 1, 0, 1, 1, 1]
    detection = table["mean_detection_s"].tolist()
    assert detection[:2] == [0, 1260] and np.isnan(detection[2]) and detection[3:] == [1260, 480, 480]
    reset = table["mean_reset_s"].tolist()
    assert reset[:2] == [540, 48540] and np.isnan(reset[2]) and reset[3:] == [2280, 20280, 1680]
    assert table.loc[[1, 2, 4, 5, 6], "recall"].tolist() == [1, 1, 1, 1, 1] and table.loc[3, "recall"] == 0
    assert table.loc[6, "budget_spent_before_detection"] == pytest.approx(800 / 43200, rel=1e-9)


def test_the_slo_sweep_equals_the_replay_and_recommends_within_a_page_budget() -> None:
    """Each sweep row compares the recorded ratios with its thresholds (no replay): the SLO's own
    percentages give what backtest_slo gives; a tuned percentage gives what the tuned SLO's replay
    gives; recommend() picks within the page budget and hands back the tuned SLO."""
    frame = _sloth_history(1)
    (slo,) = pal.load_slos(DATA / "sloth-getting-started.yml")
    table = pal.slo.sweep_slo(frame, slo, page_quick=[1, 2, 4], ticket_slow=[5, 10])
    assert len(table) == 6 and table.attrs["perfalert_sweep"]["params"] == ["page_quick", "ticket_slow"]
    for quick, slow in ((2, 10), (1, 5), (4, 5)):
        row = table[(table["page_quick"] == quick) & (table["ticket_slow"] == slow)].iloc[0]
        replay = pal.backtest_slo(frame, slo.replace(page_quick=quick, ticket_slow=slow)).stats.set_index("tier")
        whole = replay.loc["all"]
        assert (row["alerts"], row["pages_per_week"]) == (whole["alerts"], whole["pages_per_week"])
        for ours, theirs in (("recall", "recall"), ("precision", "precision"),
                             ("mean_detection_delay_s", "mean_detection_s"), ("mean_reset_s", "mean_reset_s")):
            assert row[ours] == pytest.approx(whole[theirs], nan_ok=True), ours
    choice = pal.recommend(table, max_pages_per_week=2)
    assert choice.row["pages_per_week"] <= 2
    tuned = choice.rule
    assert isinstance(tuned, pal.SLO) and {w.speed + w.severity: w.percent for w in tuned.windows}[
        "quickpage"] == choice.row["page_quick"]
    with pytest.raises(pal.UsageError, match="page_fast not among"):
        pal.slo.sweep_slo(frame, slo, page_fast=[1])


def test_an_sli_of_several_series_replays_and_says_what_it_cannot_score(tmp_path: Path) -> None:
    """An SLI aggregated ``by`` a label has a series per value: the replay alerts per series (as
    Prometheus would), the burn rates carry the series, and what needs one series says so."""
    t = pd.date_range("2026-01-01", periods=1440, freq="1min", tz="UTC")
    frame = pd.concat([pd.DataFrame({"timestamp": t, "metric": m, "region": r, "value": v})
                       for r in ("eu", "us") for m, v in (("requests", 100.0), ("failed", 0.0 if r == "eu" else 5.0))],
                      ignore_index=True)
    slo = pal.SLO("x", 99, "30d", {"errors": "sum by (region) (sum_over_time(failed[{{.window}}]))",
                                   "total": "sum by (region) (sum_over_time(requests[{{.window}}]))"},
                  alert_name="X")
    incidents = pd.DataFrame({"start": [t[0]], "end": [t[-1]]})
    out = pal.backtest_slo(frame, slo, incidents=incidents)
    assert set(out.burn["series"]) == {'region="eu"', 'region="us"'}
    assert out.alerts["labels"].str.contains('region="us"').all() and len(out.alerts)
    from perfalert_lab.plot import BurnRateDisplay, SLOBudgetDisplay

    assert 'region="us"' in SLOBudgetDisplay.from_slo(out).plot().slo  # the series whose budget ran lowest
    assert set(BurnRateDisplay.from_slo(out).plot().burn["series"]) == {'region="us"'}
    with pytest.raises(pal.UsageError, match=r"2 SLI series .*aggregate"):
        pal.backtest_slo(frame, slo)
    with pytest.raises(pal.UsageError, match="sweep_slo: SLO 'x' has 2 SLI series"):
        pal.slo.sweep_slo(frame, slo, incidents=incidents, page_quick=[1, 2])

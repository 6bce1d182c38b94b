"""Statistics and scoring (SPEC section 5), computed by hand on a tiny labelled series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import NAB
from series import at, series_frame

import perfalert_lab as pal
from perfalert_lab.cli import main
from perfalert_lab.rules import ChannelLimits, Responders

RULES = pal.RuleSet(
    (pal.Rule(id="r", metric="m", threshold=80, notify=("log", "sms"), escalation={"delay": "1m", "max": 2}),),
    channels={"sms": ChannelLimits(max_per_hour=2)},
    responders=Responders(ack_after="2m"),
)
INCIDENTS = pd.DataFrame({"start": [at(0.5), at(4)], "end": [at(2), at(4.5)], "source": ["s1", "s1"],
                          "metric": ["m", "m"], "point": [at(1), at(4)]})


def test_hand_computed_tables_and_stats() -> None:
    frame = series_frame("0 90 90 0 0 90 0 0")  # minutes 0..7
    result = pal.backtest(frame, RULES, incidents=INCIDENTS)
    a = result.alerts
    # alert 1: fires at 1, resolves at 3; the ack due at 3 is not before the resolution: never acked.
    # escalation 1 at 2; escalation 2 would be at 3, when it resolved: does not happen.
    # alert 2: fires at 5, resolves at 6; ack due at 7 comes after the resolution; escalation due at 6 too late.
    assert a["fired_at"].tolist() == [at(1), at(5)]
    assert a["resolved_at"].tolist() == [at(3), at(6)]
    assert a["acknowledged_at"].isna().all()
    assert a["escalation_level"].tolist() == [1, 0]
    assert a["notifications"].tolist() == [4, 2]
    n = result.notifications
    assert list(zip(n["kind"], n["channel"], n["at"], n["delivered"], n["reason"], strict=True)) == [
        ("firing", "log", at(1), True, ""), ("firing", "sms", at(1), True, ""),
        ("escalation", "log", at(2), True, ""), ("escalation", "sms", at(2), True, ""),
        ("firing", "log", at(5), True, ""), ("firing", "sms", at(5), False, "rate_limited"),  # 3rd sms in an hour
    ]
    s = result.stats.set_index("rule_id").loc["r"]
    assert (s["evaluations"], s["alerts"], s["suppressed"], s["notifications"], s["undelivered"]) == (8, 2, 0, 6, 1)
    assert (s["escalations"], s["acknowledged"]) == (1, 0)
    assert s["alerts_per_day"] == pytest.approx(2 / (7 / 1440))
    assert s["firing_fraction"] == pytest.approx(3 / 7)
    assert (s["mean_duration_s"], s["median_duration_s"]) == (90.0, 90.0)
    # incident 1 [0:30, 2:00] is detected by alert 1 at its point (delay 0); incident 2 is missed;
    # alert 2 fires outside every window: precision 1/2
    assert (s["incidents"], s["detected"], s["recall"], s["precision"], s["mean_detection_delay_s"]) == (
        2,
        1,
        0.5,
        0.5,
        0.0,
    )
    total = result.stats.set_index("rule_id").loc["TOTAL"]
    assert total["alerts"] == 2 and total["recall"] == 0.5


def test_incident_without_source_matches_any_and_others_are_not_scored_for_a_rule() -> None:
    frame = pd.concat([series_frame("0 90 0", source="web"), series_frame("0 0 0", source="db")])
    inc = pd.DataFrame({"start": [at(0), at(0)], "end": [at(2), at(2)], "source": [None, "db"],
                        "metric": [None, None], "point": [at(0), at(0)]})
    rule = pal.Rule(id="web", metric="m", threshold=80, match={"source": "web"})
    s = pal.backtest(frame, rule, incidents=inc).stats.set_index("rule_id")
    assert (s.loc["web", "incidents"], s.loc["web", "detected"]) == (1, 1)  # the db incident is not the web rule's
    assert (s.loc["TOTAL", "incidents"], s.loc["TOTAL", "detected"]) == (2, 1)
    assert s.loc["web", "mean_detection_delay_s"] == 60.0


def test_suppressed_alerts_count_only_as_suppressed() -> None:
    frame = series_frame("0 90 0 90 90 0 0")
    rule = pal.Rule(id="r", metric="m", threshold=80, cooldown="10m", notify=("log",))
    result = pal.backtest(frame, rule)
    s = result.stats.iloc[0]
    assert (s["alerts"], s["suppressed"], s["notifications"]) == (1, 1, 1)
    assert result.alerts["suppressed_by"].tolist() == ["", "cooldown"]


def test_silenced_alert_is_suppressed_and_notifies_nobody() -> None:
    frame = series_frame("0 90 0 90 0")
    rs = pal.RuleSet((pal.Rule(id="r", metric="m", threshold=80),),
                     silences=(pal.rules.Silence({"source": "s*"}, start=at(3), end=at(4)),))
    result = pal.backtest(frame, rs)
    assert result.alerts["status"].tolist() == ["resolved", "suppressed"]
    assert result.alerts["suppressed_by"].tolist() == ["", "silence"]
    assert result.notifications["at"].tolist() == [at(1)]


def _recompute(alerts: pd.DataFrame, incidents: pd.DataFrame, span: tuple[pd.Timestamp, pd.Timestamp]) -> dict:
    """The score columns from alerts.csv and the incidents, independently of the library."""
    fired = alerts[alerts["status"] != "suppressed"]
    detected, delays, tp = 0, [], set()
    for inc in incidents.itertuples():
        hits = fired[
            (fired["fired_at"] >= inc.start) & (fired["fired_at"] <= inc.end) & (fired["source"] == inc.source)
        ]
        tp |= set(hits["alert_id"])
        if len(hits):
            detected += 1
            delays.append((hits["fired_at"].min() - inc.point).total_seconds())
    days = (span[1] - span[0]).total_seconds() / 86400
    return {"alerts": len(fired), "recall": detected / len(incidents), "precision": len(tp) / len(fired),
            "mean_detection_delay_s": float(np.mean(delays)), "alerts_per_day": len(fired) / days}


def test_scores_recompute_exactly_from_the_written_csv(tmp_path: Path) -> None:
    metrics = NAB / "realKnownCause" / "machine_temperature_system_failure.csv"
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - {id: low, metric: machine_temperature_system_failure, op: '<', "
                     "threshold: 60, for: 10m, cooldown: 1h}\n")
    incidents_file = NAB / "labels" / "combined_windows.json"
    assert main(["backtest", str(metrics), "--rules", str(rules), "--incidents", str(incidents_file),
                 "--out", str(tmp_path / "out")]) == 0
    alerts = pd.read_csv(tmp_path / "out" / "alerts.csv", parse_dates=["fired_at"])
    stats = pd.read_csv(tmp_path / "out" / "stats.csv").set_index("rule_id")
    incidents = pal.read_incidents(incidents_file)
    incidents = incidents[incidents["source"] == "machine_temperature_system_failure"]
    frame = pal.read_metrics(metrics)
    got = _recompute(alerts, incidents, (frame["timestamp"].min(), frame["timestamp"].max()))
    for key, value in got.items():
        assert stats.loc["low", key] == pytest.approx(value, rel=1e-12), key
    assert 0 < got["recall"] <= 1


def test_a_rules_rates_divide_by_the_span_it_watches_and_total_scores_only_loaded_sources() -> None:
    """SPEC 5: alerts_per_day of a rule over the span of the series it watches (first to last sample);
    TOTAL over the whole input, scoring the incidents of loaded sources and those naming none."""
    short = series_frame("0 90 0 90 0", source="web-1", metric="cpu")  # minutes 0..4
    long = series_frame("0 " * 1440, source="db-1", metric="disk")  # a whole day of quiet disk
    rules = pal.RuleSet((pal.Rule(id="cpu", metric="cpu", threshold=80), pal.Rule(id="disk", metric="disk",
                                                                               threshold=80)))
    incidents = pd.DataFrame({"start": [at(0), at(0), at(0)], "end": [at(2), at(2), at(2)],
                              "source": ["web-1", "gone-9", None], "metric": [None, None, None],
                              "point": [at(0), at(0), at(0)]})
    for frame in (pd.concat([short, long]),):
        stats = pal.backtest(frame, rules, incidents=incidents).stats.set_index("rule_id")
        assert stats.loc["cpu", "alerts"] == 2
        assert stats.loc["cpu", "alerts_per_day"] == pytest.approx(2 / (4 / 1440))  # 4 minutes watched
        assert stats.loc["TOTAL", "alerts_per_day"] == pytest.approx(2 / (1439 / 1440))  # the whole input
        assert stats.loc["cpu", "incidents"] == 2  # web-1's and the one naming no source
        assert stats.loc["TOTAL", "incidents"] == 2  # gone-9 is not in the input: not scored
        table = pal.sweep(frame, rules["cpu"], threshold=[80], incidents=incidents, rules=rules)
        assert table.iloc[0]["alerts_per_day"] == stats.loc["cpu", "alerts_per_day"]


@pytest.mark.parametrize("seed", range(5))
def test_pages_found_by_hashing_equal_pages_found_row_by_row(seed: int) -> None:
    """``notification_pages`` finds each notification's alert by one Arrow hash pass; it equals a plain
    per-row reading of SPEC 5 (the first delivered firing or escalation of each (alert, level) whose alert's
    severity pages or whose channel pages), also when the alerts table lacks some ids or is empty and when
    the columns are held in several Arrow chunks."""
    from perfalert_lab.stats import PAGING_CHANNELS, PAGING_SEVERITIES, notification_pages

    rng = np.random.default_rng(seed)
    ids = [f"r-{i}" for i in range(8)]
    severity = dict(zip(ids, rng.choice(["critical", "page", "low", ""], len(ids)).tolist(), strict=True))
    m = 60
    notes = pd.DataFrame({
        "alert_id": pd.array(rng.choice(ids + ["gone-1", "gone-2"], m), dtype="str"),
        "kind": rng.choice(["firing", "escalation", "repeat", "resolved"], m),
        "delivered": rng.random(m) < 0.8, "channel": rng.choice(["sms", "log", "email", "pagerduty"], m),
        "level": rng.integers(0, 3, m)})
    known = [i for i in ids if rng.random() < 0.8]
    alerts = pd.DataFrame({"alert_id": pd.array(known, dtype="str"),
                           "severity": pd.array([severity[i] for i in known], dtype="str")})

    def by_rows(n: pd.DataFrame, a: pd.DataFrame) -> list[bool]:
        sev = dict(zip(a["alert_id"], a["severity"], strict=True))
        seen, out = set(), []
        for r in n.itertuples():
            pages = r.kind in ("firing", "escalation") and r.delivered and (
                sev.get(r.alert_id) in PAGING_SEVERITIES or r.channel in PAGING_CHANNELS)
            out.append(pages and (r.alert_id, r.level) not in seen)
            if pages:
                seen.add((r.alert_id, r.level))
        return out

    for a in (alerts, alerts.iloc[:0], pd.concat([alerts.iloc[:3], alerts.iloc[3:]], ignore_index=True)):
        for n in (notes, pd.concat([notes.iloc[:20], notes.iloc[20:]], ignore_index=True)):
            assert notification_pages(n, a).tolist() == by_rows(n, a)


@pytest.mark.parametrize("seed", range(12))
def test_oncall_load_equals_a_row_by_row_reading(seed: int) -> None:
    """``oncall_load`` counts in arrays (bincounts, first occurrences); it equals a plain reading of what it
    promises: pages per rule, the UTC hour with most delivered notifications (a tie goes to the hour seen
    first, as ``value_counts`` orders them), and alerts that fire within an hour of the previous alert of
    their series (rule, source, metric) resolving, suppressed alerts left out; a rule with notifications
    but no alert counts in TOTAL only."""
    from perfalert_lab.stats import notification_pages, oncall_load

    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 40))
    base = pd.Timestamp("2026-01-05", tz="UTC")
    # on a 10-minute grid over a day, so alerts fire exactly when (or an hour after) another resolves
    fired = base + pd.to_timedelta(np.sort(rng.integers(0, 144, k)) * 600, unit="s")
    resolved = pd.Series(fired + pd.to_timedelta(rng.integers(1, 8, k) * 600, unit="s"))
    resolved[rng.random(k) < 0.2] = pd.NaT
    alerts = pd.DataFrame({
        "alert_id": pd.array([f"a{i}" for i in range(k)], dtype="str"),
        "rule_id": pd.array(rng.choice(["r1", "r2", "r3"], k), dtype="str"),
        "source": pd.array(rng.choice(["h1", "h2"], k), dtype="str"),
        "metric": pd.array(rng.choice(["cpu", "mem"], k), dtype="str"),
        "severity": pd.array(rng.choice(["critical", "low"], k), dtype="str"),
        "status": pd.array(rng.choice(["active", "resolved", "suppressed"], k, p=[0.2, 0.6, 0.2]), dtype="str"),
        "fired_at": fired, "resolved_at": resolved.to_numpy()})
    m = int(rng.integers(0, 60))
    notes = pd.DataFrame({
        "alert_id": pd.array(rng.choice([*alerts["alert_id"], "gone"], m), dtype="str"),
        "rule_id": pd.array(rng.choice(["r1", "r2", "r3", "r9"], m), dtype="str"),
        "at": base + pd.to_timedelta(np.sort(rng.integers(0, 3 * 86400, m)), unit="s"),
        "kind": rng.choice(["firing", "resolved", "escalation"], m), "delivered": rng.random(m) < 0.8,
        "channel": rng.choice(["sms", "log"], m), "level": rng.integers(0, 2, m)})
    span = (base.value, (base + pd.Timedelta(days=3)).value)
    got = oncall_load(alerts, notes, span).set_index("rule_id")

    rules = list(dict.fromkeys(alerts["rule_id"]))
    assert list(got.index) == [*rules, "TOTAL"]
    pages = notes[notification_pages(notes, alerts)]
    delivered = notes[notes["delivered"]]
    live = alerts[alerts["status"] != "suppressed"]
    for rid in [*rules, "TOTAL"]:
        mine = (lambda t: t) if rid == "TOTAL" else (lambda t, rid=rid: t[t["rule_id"] == rid])
        assert got.loc[rid, "pages"] == len(mine(pages)), rid
        hours = mine(delivered)["at"].dt.hour.tolist()
        busiest = -1
        if hours:
            counts = {h: hours.count(h) for h in dict.fromkeys(hours)}  # in order seen
            busiest = max(counts, key=lambda h: counts[h])  # the first of the most
        assert got.loc[rid, "busiest_hour_utc"] == busiest, (rid, hours)
        flaps = 0
        for _, g in mine(live).groupby(["rule_id", "source", "metric"]):
            g = g.sort_values("fired_at", kind="stable")
            prev = g["resolved_at"].shift()
            gap = g["fired_at"] - prev
            flaps += int(((gap >= pd.Timedelta(0)) & (gap <= pd.Timedelta(hours=1)) & prev.notna()).sum())
        assert got.loc[rid, "flapping"] == flaps, rid


def test_arrow_string_helpers_keep_missing_values_missing_and_refuse_an_index_out_of_range() -> None:
    """The one home of the tables' Arrow text: a missing value stays missing whatever the column's dtype
    (not the text 'nan'), columns in several chunks read whole, and a code past the values is an error
    rather than pandas' wrap-around to the last value."""
    import pyarrow as pa

    from perfalert_lab._arrow import arrow_strings, strings_at, taken

    for col in (pd.Series(["a", None, "c"], dtype="str"), pd.Series(["a", np.nan, "c"], dtype=object),
                pd.Series(pd.array(pa.chunked_array([["a"], [None, "c"]]), dtype="str"))):
        arr = arrow_strings(col)
        assert isinstance(arr, pa.Array) and arr.to_pylist() == ["a", None, "c"]
    assert list(strings_at(("x", "y"), np.array([1, 0, 1], dtype=np.int8))) == ["y", "x", "y"]
    with pytest.raises(IndexError):
        strings_at(("x", "y"), np.array([2]))
    got = taken([pa.array(["a", "b"]), pa.array(["c"])], np.array([2, 0]))
    assert list(got) == ["c", "a"] and str(got.dtype) == "str"
    assert len(taken([], np.zeros(0, dtype=np.int64))) == 0

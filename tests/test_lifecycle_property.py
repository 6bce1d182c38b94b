"""The lifecycle tables equal the reference engine's on random rules, responders and policies.

Random series and rules as in the engine property test, plus random acknowledgement
models (fixed, per severity, lognormal), escalation (delay, max, polling ticks,
levels), repeats, resolved notifications, silences and channel limits: every column
of the alerts and notifications tables must agree.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_engine_property import GRID_S, T0, clocks, frames
from test_engine_property import rules as base_rules

import perfalert_lab as pal
from perfalert_lab.engine.reference import reference_backtest
from perfalert_lab.rules import ChannelLimits, Responders, Silence

CHANNELS = ["log", "email", "sms", "slack"]


def dur(draw: st.DrawFn, lo: int, hi: int) -> str:
    return f"{draw(st.integers(lo, hi)) * GRID_S}s"


@st.composite
def rule_sets(draw: st.DrawFn) -> pal.RuleSet:
    rules = []
    for i in range(draw(st.integers(1, 2))):
        r = draw(base_rules()).replace(id=f"r{i}", severity=draw(st.sampled_from(["low", "high", "critical"])))
        notify = tuple(draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True)))
        kw: dict = {"notify": notify, "send_resolved": draw(st.booleans())}
        if draw(st.booleans()):
            kw["repeat_interval"] = dur(draw, 1, 10)
        if draw(st.booleans()):
            levels = [{"notify": draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=2, unique=True))}
                      for _ in range(draw(st.integers(0, 2)))]
            kw["escalation"] = {"delay": dur(draw, 1, 8), "max": draw(st.integers(1, 4)), "levels": levels,
                                "check_every": dur(draw, 1, 4) if draw(st.booleans()) else None}
        rules.append(r.replace(**kw))
    ack = draw(st.sampled_from(["none", "fixed", "severity", "lognormal"]))
    ack_after = {
        "none": None,
        "fixed": dur(draw, 1, 12),
        "severity": {"critical": dur(draw, 1, 6), "high": dur(draw, 1, 12)},
        "lognormal": {
            "distribution": "lognormal",
            "median": dur(draw, 1, 10),
            "sigma": 0.8,
            "seed": draw(st.integers(0, 3)),
        },
    }[ack]
    responders = Responders(ack_after=ack_after, resolve_after=dur(draw, 1, 20) if draw(st.booleans()) else None)
    silences = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, 60))
        matchers = draw(
            st.sampled_from([{}, {"source": "s0"}, {"rule_id": "r1"}, {"severity": "crit*"}, {"team": "x"}])
        )
        silences.append(Silence(matchers=matchers, start=T0 + pd.Timedelta(seconds=start * GRID_S),
                                end=T0 + pd.Timedelta(seconds=(start + draw(st.integers(1, 30))) * GRID_S)))
    channels = {c: ChannelLimits(max_per_hour=draw(st.integers(1, 4))) for c in CHANNELS if draw(st.booleans())}
    return pal.RuleSet(tuple(rules), channels=channels, silences=tuple(silences), responders=responders)


def ns(value: object) -> int | None:
    return None if pd.isna(value) else pd.Timestamp(value).value  # type: ignore[arg-type]


def fast_tables(result: pal.BacktestResult) -> tuple[list[dict], list[dict]]:
    alerts = []
    for a in result.alerts.to_dict("records"):
        for c in ("pending_since", "fired_at", "resolved_at", "acknowledged_at"):
            a[c] = ns(a[c])
        alerts.append(a)
    notes = []
    for n in result.notifications.to_dict("records"):
        n["at"] = ns(n["at"])
        n["delivered"] = bool(n["delivered"])
        notes.append(n)
    return alerts, notes


def canon(rows: list[dict], key: tuple[str, ...]) -> list[tuple]:
    out = []
    for r in rows:
        out.append(tuple("nan" if isinstance(r[k], float) and math.isnan(r[k]) else r[k] for k in key))
    return sorted(out, key=repr)


ALERT_KEY = ("alert_id", "rule_id", "source", "metric", "severity", "mode", "pending_since", "fired_at", "resolved_at",
             "acknowledged_at", "status", "suppressed_by", "escalation_level", "peak_value", "notifications")
NOTE_KEY = ("alert_id", "rule_id", "source", "channel", "kind", "level", "at", "delivered", "reason")


@pytest.mark.filterwarnings("ignore::perfalert_lab.errors.NoSeriesWarning")  # empty inputs are drawn on purpose
@given(frame=frames(), rules=rule_sets(), clock=clocks())
def test_lifecycle_tables_equal_reference(frame: pd.DataFrame, rules: pal.RuleSet, clock: pal.Clock) -> None:
    result = pal.backtest(frame, rules, clock=clock)
    alerts, notes = fast_tables(result)
    ref_alerts, ref_notes = reference_backtest(frame, rules, clock)
    assert canon(alerts, ALERT_KEY) == canon(ref_alerts, ALERT_KEY)
    assert canon(notes, NOTE_KEY) == canon(ref_notes, NOTE_KEY)
    # the notifications column counts each alert's notifications of every kind
    per_alert = result.notifications.groupby("alert_id").size()
    counted = result.alerts.set_index("alert_id")["notifications"]
    assert (counted[counted > 0] == per_alert.reindex(counted[counted > 0].index)).all()
    assert_documented_order(alerts, notes, rules)


KIND_ORDER = {"firing": 0, "escalation": 1, "repeat": 2, "resolved": 3}


def assert_documented_order(alerts: list[dict], notes: list[dict], rules: pal.RuleSet) -> None:
    """Row order is part of the tables (README, Outputs): alerts by firing time, then rule file order,
    then series (source, metric); notifications by time, then the same alert order by rule, series and
    pending instant, then kind (firing, escalation, repeat, resolved) and level. With the rows equal
    to the reference's as sets (above), sorted keys pin the order row by row."""
    rule_index = {r.id: i for i, r in enumerate(rules)}
    keys = [(a["fired_at"], rule_index[a["rule_id"]], a["source"], a["metric"]) for a in alerts]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    by_id = {a["alert_id"]: a for a in alerts}
    nkeys = [(n["at"], rule_index[n["rule_id"]], by_id[n["alert_id"]]["source"], by_id[n["alert_id"]]["metric"],
              by_id[n["alert_id"]]["pending_since"], KIND_ORDER[n["kind"]], n["level"]) for n in notes]
    assert nkeys == sorted(nkeys)

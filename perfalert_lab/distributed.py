"""Scale-out on Dask: ``pal.backtest(dask_frame, rules)`` gives the pandas tables.

The heavy part — grouping samples into series, the values per evaluation and the
state machine — runs where the data is, one task per partition, after the frame
is shuffled so that each series lives in one partition (a Parquet dataset
partitioned by ``source`` already is). Each task returns only the raw alerts of
its series; the client then runs the same lifecycle and statistics code as the
pandas path, so the tables are equal, not just close. The whole input's span (its
first and latest sample) is computed first and handed to every task, because the
interval clock's ticks and the simulation horizon depend on it.

Runs on the current Dask scheduler: create a ``distributed.Client`` (or pass
``--workers N`` / ``--scheduler ADDRESS`` to ``perfalert backtest``) to use a
cluster.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from .clock import Clock, SampleClock
from .engine.conditions import match_series
from .engine.lifecycle import AlertColumns
from .engine.pipeline import alert_columns, check_rules_match, lifecycle, run_rule, statistics
from .errors import DataError, require_module
from .frames import METRIC_COLUMNS, SeriesSet, as_incidents, normalize_frame
from .result import BacktestResult
from .rules.model import Rule, RuleSet

__all__ = ["backtest_dask", "local_client"]


def _engine_part(pdf: pd.DataFrame, rules: RuleSet, clock: Clock, span: tuple[int, int], duplicates: str
                 ) -> dict[str, Any]:
    """Run the engine on whole series of one partition; return raw alerts and counts."""
    out: dict[str, Any] = {"parts": {}, "evaluations": {}, "watched": {}, "n_series": {}, "spans": {},
                           "sources": set(), "metrics": set()}
    if pdf.empty:
        return out
    series = SeriesSet.from_frame(normalize_frame(pdf, duplicates=duplicates))  # type: ignore[arg-type]
    series = dataclasses.replace(series, start_ns=span[0], end_ns=span[1])
    out["sources"] = set(series.keys["source"].astype("str").tolist())
    out["metrics"] = set(series.keys["metric"].astype("str").tolist())
    for rule in rules:
        if not rule.enabled:
            continue
        sids = match_series(series.keys, rule)
        run = run_rule(series, rule, clock, sids=sids)
        part = alert_columns(series, run, rules, span[1])
        out["parts"][rule.id] = part
        out["evaluations"][rule.id] = run.evaluations.n
        out["watched"][rule.id] = set(series.keys["source"].iloc[sids].astype("str").tolist())
        out["n_series"][rule.id] = len(sids)
        if len(sids):
            out["spans"][rule.id] = series.span_of(sids)
    return out


def _merge_parts(parts: list[Any], rule: Rule) -> Any:
    """One rule's alerts from several partitions, in the pandas order: series, then time."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    merged = AlertColumns.concat(parts, rule)
    keys = merged.series_keys
    order = np.lexsort((merged.pending_since, keys["metric"].astype("str").to_numpy(dtype=object),
                        keys["source"].astype("str").to_numpy(dtype=object)))
    return merged.take(order)


def backtest_dask(frame: Any, rules: RuleSet | Rule | list[Rule], *, clock: Clock | None = None,
                  incidents: pd.DataFrame | None = None, duplicates: str = "last", strict: bool = False,
                  texts: bool | None = None) -> Any:
    """The dask path of :func:`perfalert_lab.backtest` (same tables as pandas)."""
    dask = require_module("dask", "dask", "Backtesting a dask DataFrame")

    rs = RuleSet.of(rules)
    clock = clock if clock is not None else SampleClock()
    missing = [c for c in ("timestamp", "metric", "value") if c not in frame.columns]
    if missing:
        raise DataError(f"dask frame: missing column(s) {', '.join(missing)}; expected {', '.join(METRIC_COLUMNS)}")
    if "source" not in frame.columns:
        frame = frame.assign(source=frame["metric"])
    incidents = as_incidents(incidents)
    ts = frame["timestamp"]
    lo, hi, n = dask.compute(ts.min(), ts.max(), ts.count())
    if not n:
        raise DataError("dask frame: no samples")
    span = (_ns(lo), _ns(hi))
    # every series in one partition: shuffle on the series key unless it is the index already
    shuffled = frame.shuffle(on=["source", "metric"]) if frame.npartitions > 1 else frame
    tasks = [dask.delayed(_engine_part)(part, rs, clock, span, duplicates) for part in shuffled.to_delayed()]
    results = dask.compute(*tasks)

    check_rules_match(rs, set().union(*(r["metrics"] for r in results)),
                      {rule.id: sum(r["n_series"].get(rule.id, 0) for r in results) for rule in rs}, strict=strict,
                      stacklevel=4)  # check_rules_match -> backtest_dask -> backtest -> the caller
    parts, evaluations, watched, n_series, spans = [], {}, {}, {}, {}
    for rule in rs:
        if not rule.enabled:
            evaluations[rule.id] = 0
            continue
        merged = _merge_parts([r["parts"][rule.id] for r in results if rule.id in r["parts"]], rule)
        if merged is None:
            merged = _empty_part(rule)
        parts.append(merged)
        evaluations[rule.id] = sum(r["evaluations"].get(rule.id, 0) for r in results)
        watched[rule.id] = set().union(*(r["watched"].get(rule.id, set()) for r in results))
        n_series[rule.id] = sum(r["n_series"].get(rule.id, 0) for r in results)
        mine = [r["spans"][rule.id] for r in results if rule.id in r["spans"]]
        spans[rule.id] = (min(a for a, _ in mine), max(b for _, b in mine)) if mine else span
    lc = lifecycle(parts, rs, span[1])  # the same stages as the pandas path, on the merged alerts
    loaded = set().union(*(r["sources"] for r in results)) if incidents is not None else None
    stats = statistics(rs, parts, lc, evaluations=evaluations, watched=watched, n_series=n_series, spans=spans,
                       span_ns=span, incidents=incidents, sources=loaded)
    alerts, notifications = lc.tables(texts)
    bounds = (pd.Timestamp(span[0], tz="UTC"), pd.Timestamp(span[1], tz="UTC"))
    series = _busiest_series(frame, alerts, span, duplicates)
    return BacktestResult(alerts, notifications, stats, rs, clock, bounds, incidents, series=series)


def _busiest_series(frame: Any, alerts: pd.DataFrame, span: tuple[int, int], duplicates: str,
                    limit: int = 12) -> SeriesSet | None:
    """The samples of the series with most alerts, gathered for plots (the rest stays remote)."""
    fired = alerts[alerts["status"] != "suppressed"]
    if fired.empty:
        return None
    top = fired.groupby(["source", "metric"]).size().sort_values(ascending=False).head(limit).index
    wanted = {f"{s}\x00{m}" for s, m in top}
    key = frame["source"].astype(str) + "\x00" + frame["metric"].astype(str)
    pdf = frame[key.isin(list(wanted))].compute()
    series = SeriesSet.from_frame(normalize_frame(pdf, duplicates=duplicates))  # type: ignore[arg-type]
    return dataclasses.replace(series, start_ns=span[0], end_ns=span[1])


def _empty_part(rule: Rule) -> Any:
    z = np.zeros(0, dtype=np.int64)
    keys = pd.DataFrame({"source": pd.array([], dtype="str"), "metric": pd.array([], dtype="str")})
    return AlertColumns(rule, keys, z.astype(np.uint64), z, z, z, z.astype(bool), z.astype(np.float64),
                        z.astype(np.float64))


def _ns(value: Any) -> int:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.tz_convert("UTC").as_unit("ns").value)


def local_client(workers: int) -> Any:
    """A ``distributed.Client`` on a local cluster of ``workers`` single-threaded processes."""
    distributed = require_module("distributed", "dask", "--workers")
    cluster = distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, dashboard_address=":0", scheduler_port=0, silence_logs=40
    )
    return distributed.Client(cluster)

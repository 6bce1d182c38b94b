"""The front door: :func:`backtest` and its :class:`BacktestResult` (SPEC 5 and 6).

Above the engine: it tells the inputs apart and hands them to the path that runs them —
our rules to the engine's stages (:mod:`perfalert_lab.engine.pipeline`), a Prometheus rule
file to its rule manager (:mod:`perfalert_lab.promql_engine`), a Dask frame to
:mod:`perfalert_lab.distributed` — and, with an Alertmanager configuration, sends the alerts
through :mod:`perfalert_lab.alertmanager`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .alertmanager.outputs import apply_alertmanager
from .clock import Clock, SampleClock
from .distributed import backtest_dask
from .engine.pipeline import prepare, run
from .errors import UsageError
from .frames import Handoff, SeriesSet, as_incidents
from .result import BacktestResult
from .rules.model import RuleSet
from .rules.promfile import PromRuleFile

__all__ = ["BacktestResult", "backtest", "backtest_series"]


def backtest(frame: Any, rules: Any, *, clock: Clock | None = None,
             incidents: pd.DataFrame | None = None, duplicates: str = "last", progress: bool = False,
             strict: bool = False, prometheus: dict[str, Any] | None = None,
             alertmanager: Any = None, texts: bool | None = None) -> BacktestResult:
    """Replay metrics against rules and return every alert, notification and statistic.

    Parameters
    ----------
    frame
        A long metric frame (``timestamp, source, metric, value[, labels]``), or a
        dask DataFrame of the same shape (run on the current dask scheduler).
    rules
        A :class:`RuleSet`, one :class:`Rule` or a list of rules; or a Prometheus rule
        file from :func:`load_prometheus_rules`, evaluated as Prometheus's rule manager
        does (SPEC 11; ``prometheus`` passes its options: ``prometheus_compat``,
        ``group_offset``, ``lookback``, ``start``, ``end``).
    clock
        When to evaluate: :class:`SampleClock` (default) or :class:`IntervalClock`.
    incidents
        Optional ground truth (``start, end[, source, metric, point]``) to score against.
    progress
        Show a progress bar over the rules (the CLI turns it on on a terminal).
    strict
        A rule that matches no series is an error (:class:`RulesError`) instead of a
        :class:`NoSeriesWarning`.
    alertmanager
        An Alertmanager configuration (:func:`load_alertmanager`): every alert goes
        through a simulated Alertmanager instead of the rules' own channels (SPEC 12),
        and ``notifications`` lists what each integration would have received.
    texts
        Show what each page says: the alerts add ``labels`` and ``annotations`` and the
        notifications a ``summary``, rendered from the rules' templates (the default summary is
        the seed's alert message). Default: when a rule sets labels or annotations; always for
        a Prometheus rule file.

    Examples
    --------
    >>> import pandas as pd, perfalert_lab as pal
    >>> frame = pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=6, freq="1min", tz="UTC"),
    ...                       "source": "web-1", "metric": "cpu", "value": [10, 90, 95, 20, 91, 10]})
    >>> rule = pal.Rule(id="cpu-high", metric="cpu", op=">", threshold=80)
    >>> result = pal.backtest(frame, rule)
    >>> result.alerts[["fired_at", "resolved_at", "peak_value"]]
                       fired_at               resolved_at  peak_value
    0 2026-01-01 00:01:00+00:00 2026-01-01 00:03:00+00:00        95.0
    1 2026-01-01 00:04:00+00:00 2026-01-01 00:05:00+00:00        91.0
    """
    result = _backtest(frame, rules, clock=clock, incidents=incidents, duplicates=duplicates, progress=progress,
                       strict=strict, prometheus=prometheus, texts=texts)
    if alertmanager is None:
        return result

    return apply_alertmanager(result, alertmanager)


def _backtest(frame: Any, rules: Any, *, clock: Clock | None, incidents: pd.DataFrame | None, duplicates: str,
              progress: bool, strict: bool, prometheus: dict[str, Any] | None, texts: bool | None = None
              ) -> BacktestResult:
    if isinstance(rules, PromRuleFile):  # a Prometheus rule file: its rule manager, not ours (SPEC 11)
        if clock is not None:
            raise UsageError("clock: a Prometheus rule file is evaluated on its groups' own intervals; "
                             "leave clock out")
        from .prometheus.backtest import backtest_prometheus

        if _is_dask(frame):
            frame = frame.compute()
        return backtest_prometheus(frame, rules, incidents=incidents, **(prometheus or {}))
    frame = Handoff.taken(frame)  # our rules' result keeps the series it drew (the report plots them)
    if _is_dask(frame):
        return backtest_dask(frame, rules, clock=clock, incidents=incidents, duplicates=duplicates, strict=strict,
                             texts=texts)
    clock = clock if clock is not None else SampleClock()
    if not hasattr(clock, "evaluation_times") or not hasattr(clock, "lookback_ns"):
        raise UsageError(f"clock: expected SampleClock(), IntervalClock(...) or a Clock, got {clock!r}")
    rs = RuleSet.of(rules)
    series = prepare(frame, duplicates=duplicates)
    return backtest_series(series, rs, clock, as_incidents(incidents), progress=progress, strict=strict,
                           texts=texts)


def backtest_series(series: SeriesSet, rules: RuleSet, clock: Clock, incidents: pd.DataFrame | None = None, *,
                    progress: bool = False, strict: bool | None = None, texts: bool | None = None
                    ) -> BacktestResult:
    """The backtest of prepared series (the tuner and the sweep's checks replay the same series
    many times): the engine's stages (:func:`perfalert_lab.engine.pipeline.run`) as a result."""
    out = run(series, rules, clock, incidents, progress=progress, strict=strict, texts=texts)
    span = (pd.Timestamp(series.start_ns, tz="UTC"), pd.Timestamp(series.end_ns, tz="UTC"))
    return BacktestResult(out.alerts, out.notifications, out.stats, rules, clock, span, incidents, series)


def _is_dask(frame: Any) -> bool:
    return type(frame).__module__.startswith("dask")



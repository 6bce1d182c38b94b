"""perfalert_lab: what would this alert rule have done on our real history?

Replay metric history (pandas DataFrames) against alert rules — thresholds, ``for``
durations, hysteresis, cooldowns, escalation, acknowledgements, notification
fan-out — and get every alert, notification and statistic, scored against labelled
incidents.

>>> import perfalert_lab as pal
>>> pal.load_rules                                  # doctest: +ELLIPSIS
<function load_rules at ...>

Heavy modules (the compiled engine, plots, widgets) load on first use, so
``import perfalert_lab`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .clock import Clock, IntervalClock, SampleClock, parse_clock
from .errors import (
    DataError,
    InputError,
    MissingDependency,
    NoSeriesWarning,
    PerfAlertError,
    PerfAlertWarning,
    RulesError,
    UsageError,
)
from .rules import Rule, RuleSet, load_rules, parse_rules, save_rules

__version__ = "0.1.0"

_LAZY = {
    "backtest": ".backtesting",
    "BacktestResult": ".backtesting",
    "explain": ".engine.reference",
    "read_metrics": ".reading",
    "read_series": ".reading",
    "read_incidents": ".reading",
    "normalize_frame": ".frames",
    "datasets": ".datasets",
    "sweep": ".tuning",
    "frontier": ".tuning",
    "recommend": ".tuning",
    "diff": ".tuning",
    "to_prometheus": ".rules.prometheus",
    "tune": ".widgets",
    "promql": ".promql_engine",
    "load_prometheus_rules": ".rules.promfile",
    "load_alertmanager": ".alertmanager",
    "UnsupportedPromQL": ".errors",
    "PromQLError": ".errors",
    "SLO": ".slo",
    "load_slos": ".slo",
    "backtest_slo": ".slo",
    "slo": ".slo",
}

__all__ = [
    "BacktestResult",
    "Clock",
    "DataError",
    "InputError",
    "IntervalClock",
    "MissingDependency",
    "NoSeriesWarning",
    "PerfAlertError",
    "PerfAlertWarning",
    "PromQLError",
    "Rule",
    "RuleSet",
    "RulesError",
    "SLO",
    "SampleClock",
    "UnsupportedPromQL",
    "UsageError",
    "backtest",
    "backtest_slo",
    "datasets",
    "diff",
    "explain",
    "frontier",
    "load_alertmanager",
    "load_prometheus_rules",
    "load_rules",
    "load_slos",
    "normalize_frame",
    "parse_clock",
    "parse_rules",
    "promql",
    "read_incidents",
    "read_metrics",
    "read_series",
    "recommend",
    "save_rules",
    "slo",
    "sweep",
    "to_prometheus",
    "tune",
]

if TYPE_CHECKING:  # pragma: no cover
    from . import datasets, slo
    from .alertmanager import load_alertmanager
    from .backtesting import BacktestResult, backtest
    from .engine.reference import explain
    from .errors import PromQLError, UnsupportedPromQL
    from .frames import normalize_frame
    from .promql_engine import promql
    from .reading import read_incidents, read_metrics, read_series
    from .rules.prometheus import to_prometheus
    from .rules.promfile import load_prometheus_rules
    from .slo import SLO, backtest_slo, load_slos
    from .tuning import diff, frontier, recommend, sweep
    from .widgets import tune


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perfalert_lab' has no attribute {name!r}")
    mod = importlib.import_module(module, __name__)
    value = getattr(mod, name) if hasattr(mod, name) else mod  # a module's own name gives the module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""The alert engine: conditions, the state machine kernels, the lifecycle, the reference.

* :mod:`.conditions` — values per evaluation (clock, lookback, windows) and operators;
* :mod:`.episodes` — the compiled state machine (episode and sample mode);
* :mod:`.lifecycle` — silences, acknowledgement, escalation, notification fan-out;
* :mod:`.reference` — the plain per-evaluation engine, the tests' oracle;
* :mod:`.run` — :func:`backtest`, which strings them together.
"""

from .run import BacktestResult, backtest

__all__ = ["BacktestResult", "backtest"]

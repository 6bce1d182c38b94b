"""The alert engine: conditions, the state machine kernels, the lifecycle, the reference.

* :mod:`.conditions` — values per evaluation (clock, lookback, windows) and operators;
* :mod:`.episodes` — the compiled state machine (episode and sample mode);
* :mod:`.lifecycle` — silences, acknowledgement, escalation, notification fan-out, delivery;
* :mod:`.texts` — what each page says (labels, annotations, summaries);
* :mod:`.pipeline` — the stages in order: prepare, replay, lifecycle, statistics, tables;
* :mod:`.reference` — the plain per-evaluation engine, the tests' oracle.

The front door, :func:`perfalert_lab.backtest`, lives above the engine
(:mod:`perfalert_lab.backtesting`).
"""

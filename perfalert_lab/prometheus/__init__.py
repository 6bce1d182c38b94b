"""Prometheus rule files replayed as Prometheus's rule manager runs them (SPEC 11).

:mod:`.alerting` is the rule manager: group ticks, recording rules written back with
staleness markers, the alert state machine of every instance at once, forward references
seen one evaluation late; :mod:`.backtest` turns its timelines into SPEC 5's tables;
:mod:`.tuning` sweeps a rule's threshold, ``for`` and ``keep_firing_for`` and serves the
tuner. Expressions are evaluated by :mod:`perfalert_lab.promql_engine`; the rule-file format is
:mod:`perfalert_lab.rules.promfile`.
"""

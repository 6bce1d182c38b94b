"""What a page says: each alert's labels and annotations, rendered from its rule's templates.

Our rules use the template language of Prometheus rule files (SPEC 2 and 11,
:mod:`perfalert_lab.templates`): ``$labels`` are the alert's series labels (``source``,
``metric`` and the frame's label columns; ``__name__`` is the metric too, as in
Prometheus), ``$value`` is the value of the evaluation at which the alert fired. An alert's
labels are its series labels plus ``alertname`` (the rule id), ``severity`` and the rule's
rendered labels (which win); they are what Alertmanager routes on. Without a ``summary``
annotation the summary is the seed's alert message::

    High CPU usage: cpu_utilization > 80% (current: 93.25%, severity: high)

with the unit read from the metric's name (Prometheus naming: ``_percent``, ``_seconds``,
``_bytes`` ...; ``utilization`` is a percentage).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..rules.model import Rule
from ..templates import format_labels, render, summary_template

__all__ = ["AlertTexts", "alert_texts"]


@dataclass(frozen=True)
class AlertTexts:
    """Per alert: ``labels`` and ``annotations`` as ``{k="v", ...}`` text (sorted by key), the
    ``summary``, and the rule's rendered labels by name (for silences that match on them)."""

    labels: np.ndarray
    annotations: np.ndarray
    summary: np.ndarray
    rule_labels: dict[str, np.ndarray]


def _series_labels(keys: pd.DataFrame) -> list[dict[str, str]]:
    """``$labels`` of each row of ``keys``: its non-empty key columns."""
    columns = {c: keys[c].astype(object).to_numpy() for c in keys.columns}
    out = []
    for i in range(len(keys)):
        d = {}
        for c, col in columns.items():
            v = col[i]
            if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) or v == "":
                continue
            d[str(c)] = str(v)
        if "metric" in d:  # as in Prometheus, where the metric is the series' name
            d["__name__"] = d["metric"]
        out.append(d)
    return out


def _alert_labels(series: dict[str, str], fixed: dict[str, str], rule: Mapping[str, str]
                  ) -> tuple[tuple[str, str], ...]:
    d = {**series, **fixed, **rule}
    d.pop("__name__", None)
    return tuple(sorted(d.items()))


def alert_texts(rule: Rule, keys: pd.DataFrame, series_hash: np.ndarray, values: np.ndarray | None) -> AlertTexts:
    """Render the labels, annotations and summary of one rule's alerts (rows of ``keys``)."""
    n = len(keys)
    values = np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64)
    labels_out = np.empty(n, dtype=object)
    ann_out = np.empty(n, dtype=object)
    summary_out = np.empty(n, dtype=object)
    rule_labels = {k: np.empty(n, dtype=object) for k in rule.labels}
    label_tpl = {k: v for k, v in rule.labels.items() if "{{" in v}
    ann_tpl = {k: v for k, v in rule.annotations.items() if "{{" in v}
    fixed_labels = {"alertname": rule.id, "severity": rule.severity}
    # per series: $labels, the labels text when no rule label is a template, the default summary's template
    per_series: dict[Any, tuple[dict[str, str], str | None, str]] = {}
    unique_hashes, first = np.unique(series_hash, return_index=True) if n else (np.zeros(0), np.zeros(0, int))
    rows_labels = _series_labels(keys.take(first)) if n else []
    for h, sl in zip(unique_hashes.tolist(), rows_labels, strict=True):
        text = None
        if not label_tpl:
            text = format_labels(_alert_labels(sl, fixed_labels, rule.labels))
        per_series[h] = (sl, text, summary_template(rule, sl.get("metric", rule.metric)))
    for i, (h, v) in enumerate(zip(series_hash.tolist(), values.tolist(), strict=True)):
        sl, text, summary = per_series[h]
        rendered = {k: render(t, sl, v) for k, t in label_tpl.items()}
        for k in rule.labels:
            rule_labels[k][i] = rendered.get(k, rule.labels[k])
        if text is None:
            text = format_labels(_alert_labels(sl, fixed_labels, {**rule.labels, **rendered}))
        labels_out[i] = text
        ann = {k: render(t, sl, v) if k in ann_tpl else t for k, t in rule.annotations.items()}
        if "summary" not in ann:
            ann["summary"] = render(summary, sl, v)
        summary_out[i] = ann["summary"]
        ann_out[i] = format_labels(tuple(sorted(ann.items())))
    return AlertTexts(labels_out, ann_out, summary_out, rule_labels)

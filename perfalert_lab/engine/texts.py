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
from ..templates import format_labels, format_labels_many, render_many, summary_template

__all__ = ["AlertTexts", "alert_texts"]


@dataclass(frozen=True)
class AlertTexts:
    """Per alert: ``labels`` and ``annotations`` as ``{k="v", ...}`` text (sorted by key), the
    ``summary`` (Arrow string arrays), and the rule's rendered labels by name (for silences that match on
    them)."""

    labels: Any
    annotations: Any
    summary: Any
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
    """Render the labels, annotations and summary of one rule's alerts (rows of ``keys``): each template
    once per distinct input it reads (:func:`~perfalert_lab.templates.render_many`), the texts put
    together in Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(keys)
    values = np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64)
    label_tpl = {k: v for k, v in rule.labels.items() if "{{" in v}
    fixed_labels = {"alertname": rule.id, "severity": rule.severity}
    if n:
        _, first, series = np.unique(series_hash, return_index=True, return_inverse=True)
        per_series = _series_labels(keys.take(first))
    else:
        series, per_series = np.zeros(0, dtype=np.int64), []
    series = np.asarray(series, dtype=np.int64).reshape(-1)

    def many(text: str) -> Any:
        return render_many(text, per_series, series, values)

    def objects(arr: Any) -> np.ndarray:
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object) if n else np.empty(0, dtype=object)

    rendered = {k: objects(many(t)) for k, t in label_tpl.items()}
    rule_labels = {k: rendered[k] if k in rendered else np.full(n, rule.labels[k], dtype=object) for k in rule.labels}
    if not label_tpl:  # one labels text a series
        texts = [format_labels(_alert_labels(sl, fixed_labels, rule.labels)) for sl in per_series]
        labels_out = pa.array(texts, type=pa.string()).take(pa.array(series))
    else:
        labels_out = pa.array([format_labels(_alert_labels(per_series[s], fixed_labels,
                                                           {**rule.labels, **{k: v[i] for k, v in rendered.items()}}))
                               for i, s in enumerate(series.tolist())], type=pa.string())
    ann = {k: many(t) for k, t in rule.annotations.items()}
    if "summary" not in ann:  # the default summary names the series' metric (its unit): a template per metric
        templates = [summary_template(rule, sl.get("metric", rule.metric)) for sl in per_series]
        distinct = list(dict.fromkeys(templates))
        which = np.array([distinct.index(t) for t in templates], dtype=np.int64)[series] if n else series
        summary = pa.array([""] * n, type=pa.string())
        for w, text in enumerate(distinct):
            rows = np.flatnonzero(which == w)
            said = render_many(text, per_series, series[rows], values[rows])
            summary = pc.replace_with_mask(summary, pa.array(which == w), said) if len(distinct) > 1 else said
        ann["summary"] = summary
    return AlertTexts(labels_out, format_labels_many(ann, n), ann["summary"], rule_labels)

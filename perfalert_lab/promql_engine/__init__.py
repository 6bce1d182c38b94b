"""PromQL over history held in a DataFrame (SPEC 11); ``pal.promql`` is :func:`promql`.

>>> import pandas as pd, perfalert_lab as pal
>>> frame = pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=11, freq="1min"),
...                       "metric": "http_requests_total", "job": "api", "value": range(0, 660, 60)})
>>> out = pal.promql(frame, "rate(http_requests_total[5m])", start="2026-01-01T00:10:00Z",
...                  end="2026-01-01T00:10:00Z")
>>> out[["labels", "value"]].to_string(index=False)
'     labels  value\\n{job="api"}    1.0'

The expression is parsed by the ``promql-parser`` package and evaluated at every
step at once (:mod:`.evaluate`); :mod:`.store` holds the series with their labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._time import parse_duration, parse_instant, to_ns
from ..errors import UsageError
from ..templates import format_labels
from .evaluate import Evaluator, PromQLError, Scalar, UnsupportedPromQL, Vector, parse
from .scaleout import evaluate_dask, span_of_dask
from .store import SeriesStore, store_from_frame

__all__ = ["PromQLError", "SeriesStore", "UnsupportedPromQL", "compat_version", "evaluate", "parse", "promql",
           "store_from_frame"]

_NS_PER_MS = 1_000_000


def evaluate(store: SeriesStore, expr: str | Any, times_ms: np.ndarray, *, lookback_ms: int = 300_000,
             prometheus_compat: str = "3", subquery_step_ms: int = 60_000, text: str | None = None) -> Vector | Scalar:
    """Evaluate ``expr`` (text, or a tree from :func:`parse` with its ``text``) over ``store`` at
    ``times_ms``: the array form under :func:`promql`."""
    compat = compat_version(prometheus_compat)
    node = parse(expr) if isinstance(expr, str) else expr
    expr = expr if isinstance(expr, str) else (text or str(expr))
    ev = Evaluator(store, np.asarray(times_ms, dtype=np.int64), lookback_ms=lookback_ms, compat=compat,
                   subquery_step_ms=subquery_step_ms, text=expr)
    return _result(ev.eval(node), expr)


def _result(out: Any, expr: str) -> Vector | Scalar:
    if not isinstance(out, Vector | Scalar):
        raise UnsupportedPromQL(f"{expr!r} evaluates to a {'range vector' if not isinstance(out, str) else 'string'}; "
                                "perfalert_lab evaluates instant vectors and scalars")
    return out


def promql(frame: pd.DataFrame | SeriesStore, expr: str, *, start: Any = None, end: Any = None, step: Any = "1m",
           lookback: Any = "5m", prometheus_compat: str = "3") -> pd.DataFrame:
    """Evaluate the PromQL expression ``expr`` over a long frame at every ``step`` from ``start`` to ``end``.

    ``frame`` is a long frame (``timestamp``, ``value``, ``metric`` = ``__name__``,
    and every other column a label, ``source`` included). ``start`` defaults to the
    first sample's time rounded up to the step, ``end`` to the last sample's time.
    Returns a long frame with ``timestamp``, ``value``, ``labels`` (``{k="v", ...}``)
    and a column per label name (``metric`` for ``__name__``), ordered by series
    then time. A scalar result is one series with no labels.
    """
    dask_frame = _is_dask(frame)
    compat = compat_version(prometheus_compat)
    node = parse(expr)  # a syntax error before any data work
    store = None if dask_frame else (frame if isinstance(frame, SeriesStore) else store_from_frame(frame))
    try:
        step_ms = to_ns(parse_duration(step)) // _NS_PER_MS
        lookback_ms = to_ns(parse_duration(lookback)) // _NS_PER_MS
    except ValueError as exc:
        raise UsageError(f"promql: {exc}") from None
    if step_ms <= 0:
        raise UsageError(f"promql: step must be positive, got {step!r}")
    first_ms = last_ms = 0
    if start is None or end is None:
        if dask_frame:
            first_ms, last_ms = span_of_dask(frame)
        else:
            assert store is not None
            first_ms, last_ms = store.first_ms or 0, store.last_ms or 0
    try:
        start_ms = parse_instant(start) // _NS_PER_MS if start is not None else -(-first_ms // step_ms) * step_ms
        end_ms = parse_instant(end) // _NS_PER_MS if end is not None else last_ms
    except ValueError as exc:
        raise UsageError(f"promql: {exc}") from None
    if end_ms < start_ms:
        raise UsageError("promql: end is before start; give end >= start")
    times = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
    if dask_frame:
        options = {"lookback_ms": lookback_ms, "compat": compat, "subquery_step_ms": step_ms}
        out = _result(evaluate_dask(frame, expr, times, options), expr)
    else:
        assert store is not None
        out = evaluate(store, node, times, lookback_ms=lookback_ms, prometheus_compat=compat,
                       subquery_step_ms=step_ms, text=expr)
    return to_frame(out, times)


def to_frame(out: Vector | Scalar, times_ms: np.ndarray) -> pd.DataFrame:
    """The long output frame of a result (SPEC 11)."""
    if isinstance(out, Scalar):
        out = Vector([()], out.values[None, :], np.ones((1, len(times_ms)), dtype=bool))
    if len(out.labels) > 1:  # series in label order, as Prometheus returns them
        order = sorted(range(len(out.labels)), key=out.labels.__getitem__)
        if order != list(range(len(order))):
            out = Vector([out.labels[i] for i in order], out.values[order], out.present[order])
    rows, cols = np.nonzero(out.present)
    ts = pd.DatetimeIndex((times_ms[cols] * _NS_PER_MS).view("datetime64[ns]")).tz_localize("UTC")
    texts = [format_labels(lb) for lb in out.labels]
    data: dict[str, Any] = {
        "timestamp": ts,
        "value": out.values[rows, cols],
        "labels": pd.Categorical.from_codes(rows, categories=pd.Index(texts, dtype=object)) if texts
        else pd.Categorical([]),
    }
    names = sorted({k for lb in out.labels for k, _ in lb})
    for name in (["__name__"] if "__name__" in names else []) + [n for n in names if n != "__name__"]:
        col = "metric" if name == "__name__" else name
        per_row = [dict(lb).get(name, "") for lb in out.labels]
        cats = pd.Index(sorted(set(per_row)), dtype=object)
        codes = cats.get_indexer(pd.Index(per_row, dtype=object))
        data[col] = pd.Categorical.from_codes(codes[rows], categories=cats)
    return pd.DataFrame(data)


def compat_version(value: str) -> str:
    text = str(value)
    if text not in ("2", "3"):
        raise UsageError(f"prometheus_compat must be '2' or '3', got {value!r}")
    return text


def _is_dask(frame: Any) -> bool:
    return type(frame).__module__.startswith("dask")

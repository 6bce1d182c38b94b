"""Series with labels, as contiguous arrays: what the PromQL evaluator reads.

SPEC 11: in the long frame ``metric`` is ``__name__``, ``source`` is the label
``source`` (absent when empty) and every extra string column is a label. One series
is one distinct label set; its samples are ``ts[offsets[i]:offsets[i+1]]``
(int64 milliseconds, strictly increasing) and the same slice of ``vals``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import DataError
from ..frames import SeriesSet, by_series, frame_timestamps, frame_values, value_runs
from .kernels import STALE_NAN_BITS

Labels = tuple[tuple[str, str], ...]  # sorted by name, no empty values

_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED = ("timestamp", "value")


@dataclass(frozen=True)
class SeriesStore:
    labels: list[Labels]
    offsets: np.ndarray  # int64 [n + 1]
    ts: np.ndarray  # int64 ms
    vals: np.ndarray  # float64

    @property
    def n_series(self) -> int:
        return len(self.labels)

    @cached_property
    def first_ms(self) -> int | None:
        return int(self.ts.min()) if len(self.ts) else None

    @cached_property
    def last_ms(self) -> int | None:
        return int(self.ts.max()) if len(self.ts) else None

    def without_stale(self) -> SeriesStore:
        """The store without staleness markers (range selectors do not see them)."""
        stale = self.vals.view(np.int64) == STALE_NAN_BITS
        if not stale.any():
            return self
        keep = ~stale
        series = np.repeat(np.arange(self.n_series), np.diff(self.offsets))
        counts = np.bincount(series[keep], minlength=self.n_series)
        offsets = np.zeros(self.n_series + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return SeriesStore(self.labels, offsets, self.ts[keep], self.vals[keep])

    def subset(self, rows: np.ndarray) -> SeriesStore:
        """The series ``rows`` (ascending), as a store of their own."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        lengths = ends - starts
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(rows) == self.n_series:
            return SeriesStore([self.labels[i] for i in rows], self.offsets, self.ts, self.vals)
        take = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return SeriesStore([self.labels[i] for i in rows], offsets, self.ts[take], self.vals[take])


def store_from_series(series: SeriesSet) -> SeriesStore:
    """The store of a :class:`~perfalert_lab.frames.SeriesSet` (the series model every path takes): the
    same series, labelled as PromQL sees them (``__name__`` = ``metric``, ``source`` and every label
    column a label, empty ones absent), times in milliseconds (two samples in one millisecond: the last)."""
    names = ["__name__" if c == "metric" else str(c) for c in series.keys.columns]
    columns = [series.keys[c].astype("str").tolist() for c in series.keys.columns]
    labels: list[Labels] = [tuple(sorted((k, v) for k, v in zip(names, row, strict=True) if v))
                            for row in zip(*columns, strict=True)]
    ts = np.floor_divide(series.times, 1_000_000)
    vals = series.values
    offsets = series.offsets
    if len(ts) > 1:
        dup = ts[1:] == ts[:-1]
        inner = offsets[1:-1]
        dup[inner[(inner > 0) & (inner < len(ts))] - 1] = False  # a series' first sample repeats nothing
        if dup.any():
            sid = np.repeat(np.arange(series.n_series), np.diff(series.offsets))
            keep = np.ones(len(ts), dtype=bool)
            keep[:-1] = ~dup
            ts, vals, sid = ts[keep], vals[keep], sid[keep]
            offsets = np.zeros(series.n_series + 1, dtype=np.int64)
            np.cumsum(np.bincount(sid, minlength=series.n_series), out=offsets[1:])
    return SeriesStore(labels, np.asarray(offsets, dtype=np.int64), np.ascontiguousarray(ts, dtype=np.int64),
                       np.ascontiguousarray(vals, dtype=np.float64))


def store_from_frame(frame: pd.DataFrame | SeriesSet, *, name: str = "frame") -> SeriesStore:
    """Build the store from a long frame (``timestamp``, ``value``, ``metric``, labels), or from the
    series model (:func:`store_from_series`)."""
    if isinstance(frame, SeriesSet):
        return store_from_series(frame)
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{name}: expected a pandas DataFrame in the long format, got {type(frame).__name__}")
    missing = [c for c in ("timestamp", "metric", "value") if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {', '.join(missing)}; expected timestamp, metric, value "
                        f"and label columns (found {', '.join(map(str, list(frame.columns)[:8]))})")
    label_cols = [str(c) for c in frame.columns if c not in ("timestamp", "value")]
    for col in label_cols:
        if col != "metric" and not _NAME.match(col):
            raise DataError(f"{name}: column {col!r} is not a valid Prometheus label name; "
                            "rename it to letters, digits and underscores")
    ts_ns = frame_timestamps(frame["timestamp"], name)
    vals = frame_values(frame, name)
    # NaN is a sample value in Prometheus (a scrape can report it), so it is kept here
    ts = np.floor_divide(ts_ns, 1_000_000)
    grouped = _grouped(frame, label_cols, len(ts))
    if grouped is not None:  # rows one series after another (as the CLI reads them): no hashing of rows
        return _sorted_store(grouped[0], ts, vals, grouped[1])
    codes: list[np.ndarray] = []
    uniques: list[np.ndarray] = []
    for col in label_cols:
        series = frame[col]
        if isinstance(series.dtype, pd.CategoricalDtype):  # already dictionary-encoded: use the codes
            c = series.cat.codes.to_numpy(dtype=np.int64)
            u = np.asarray(series.cat.categories.astype(str), dtype=object)
            if (c < 0).any():  # missing -> the empty string (no label)
                u = np.append(u, "")
                c = np.where(c < 0, len(u) - 1, c)
        else:
            fc, fu = pd.factorize(series.astype("string").fillna(""), sort=False)
            c, u = fc.astype(np.int64, copy=False), np.asarray(fu, dtype=object)
        codes.append(c)
        uniques.append(u)
    key: np.ndarray = np.zeros(len(ts), dtype=np.int64)
    room = 1
    for c, u in zip(codes, uniques, strict=True):
        room *= max(len(u), 1)
        if room >= 2**62:  # too many combinations for one integer: let pandas number them
            key = pd.DataFrame({i: c for i, c in enumerate(codes)}).groupby(
                list(range(len(codes))), sort=False).ngroup().to_numpy(dtype=np.int64)
            break
        key = key * max(len(u), 1) + c
    sid, _ = pd.factorize(key, sort=False)  # series numbered by first appearance: one hash pass, no sort
    sid = sid.astype(np.int64, copy=False)
    n = int(sid.max()) + 1 if len(sid) else 0
    first = np.empty(n, dtype=np.int64)
    first[sid[::-1]] = np.arange(len(sid) - 1, -1, -1)
    labels: list[Labels] = []
    for row in first:
        pairs = []
        for col, c, u in zip(label_cols, codes, uniques, strict=True):
            v = str(u[c[row]])
            if v:
                pairs.append(("__name__" if col == "metric" else col, v))
        labels.append(tuple(sorted(pairs)))
    return _sorted_store(labels, ts, vals, sid)


def _grouped(frame: pd.DataFrame, label_cols: list[str], n: int) -> tuple[list[Labels], np.ndarray] | None:
    """Labels and series numbers (by first appearance) when every label column comes in few long runs
    (:func:`~perfalert_lab.frames.value_runs`): each stretch where no column changes is one series' rows."""
    runs = [value_runs(frame[col]) for col in label_cols]
    if not label_cols or any(r is None for r in runs):
        return None
    bounds = np.unique(np.concatenate([r[0] for r in runs if r is not None]))
    values = [np.asarray(r[1], dtype=object)[np.searchsorted(r[0], bounds, side="right") - 1]
              for r in runs if r is not None]
    names = ["__name__" if col == "metric" else col for col in label_cols]
    index: dict[Labels, int] = {}
    seg = [index.setdefault(tuple(sorted((k, str(v)) for k, v in zip(names, row, strict=True) if v)), len(index))
           for row in zip(*values, strict=True)]
    sid = np.repeat(np.array(seg, dtype=np.int64), np.diff(np.append(bounds, n)))
    return list(index), sid


def _sorted_store(labels: list[Labels], ts: np.ndarray, vals: np.ndarray, sid: np.ndarray) -> SeriesStore:
    """The store of samples numbered by series: one sort of the input, none when it is already in series
    then time order; of two samples of a series at one millisecond, the last."""
    n = len(labels)
    if len(ts) > 1:
        series_major = bool(np.all(sid[1:] >= sid[:-1]))
        if not (series_major and np.all((ts[1:] >= ts[:-1]) | (sid[1:] != sid[:-1]))):
            grouped = by_series(sid, ts, vals, n)
            if grouped is not None:  # each series' times strictly increase: one counting sort, no duplicates
                offsets, ts, vals, _ = grouped
                return SeriesStore(labels, offsets, ts, vals)
            if np.all(ts[1:] >= ts[:-1]):  # time-major (as read_metrics returns it): a stable sort by series
                # (numpy sorts 16-bit keys stably by radix, wider ones by merging)
                order = np.argsort(sid.astype(np.int16) if n < 2**15 else sid, kind="stable")
            else:
                order = np.lexsort((ts, sid))
            ts, vals, sid = ts[order], vals[order], sid[order]
    if len(ts) > 1:  # duplicate timestamps in a series: the last one wins
        dup = (sid[1:] == sid[:-1]) & (ts[1:] == ts[:-1])
        if dup.any():
            keep_last = np.ones(len(ts), dtype=bool)
            keep_last[:-1] = ~dup
            ts, vals, sid = ts[keep_last], vals[keep_last], sid[keep_last]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(sid, minlength=n), out=offsets[1:])
    return SeriesStore(labels, offsets, ts, vals)

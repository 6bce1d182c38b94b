"""The series model: metric and incident frames validated and normalised, and the series they hold.

The metric frame (SPEC section 1) is a long DataFrame with one row per sample::

    timestamp  datetime64[ns, UTC]
    source     str     host, instance, file...
    metric     str
    value      float64
    <label>    str     any further column, carried into the outputs

A series is its label set: ``source``, ``metric`` and every further string column (SPEC 1).
Loading rules, applied the same way to every file (:mod:`perfalert_lab.reading`) and to
DataFrames handed to :func:`normalize_frame`:

* naive timestamps are UTC unless ``timezone`` is given (then they are local times of
  that zone; an ambiguous or missing local time maps to the earliest instant);
* timestamps may be ISO 8601 (with or without zone), ``YYYY-MM-DD HH:MM:SS``, or epoch
  seconds / milliseconds / microseconds / nanoseconds (told apart by magnitude:
  below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds);
* ``NaN`` or empty values are missing samples and dropped (counted);
* rows are sorted by time with a stable sort, so a timestamp that goes backwards in a
  file is moved to its place (counted as ``out_of_order``);
* duplicate timestamps within a series keep the last row by default (``first``,
  ``mean`` or ``error`` selectable); the number dropped is counted.

What was dropped or moved is reported in ``frame.attrs["perfalert"]``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._hashing import stable_hash
from ._jit import kernel
from ._time import NS_PER_S, col_ns, ns_to_timestamps, parse_instant
from .errors import DataError

__all__ = ["INCIDENT_COLUMNS", "METRIC_COLUMNS", "SeriesSet", "as_incidents", "normalize_frame"]

METRIC_COLUMNS = ("timestamp", "source", "metric", "value")
INCIDENT_COLUMNS = ("start", "end", "source", "metric", "point")
Duplicates = Literal["last", "first", "mean", "error"]
DUPLICATE_POLICIES = ("last", "first", "mean", "error")

# --------------------------------------------------------------------------- frames


def _strings(values: np.ndarray | pd.Categorical) -> Any:
    """Strings (object array or categorical) as a pandas string column, built from the distinct values."""
    codes: Any
    uniques: Any
    if isinstance(values, pd.Categorical):
        codes, uniques = values.codes, values.categories
    else:
        codes, uniques = pd.factorize(values)
    return pd.array(np.asarray(uniques, dtype=object), dtype="str").take(np.asarray(codes, dtype=np.int64),
                                                                      allow_fill=True)


def build_frame(ts: np.ndarray, source: np.ndarray | pd.Categorical, metric: np.ndarray | pd.Categorical,
                 value: np.ndarray, labels: dict[str, Any]) -> pd.DataFrame:
    data: dict[str, Any] = {
        "timestamp": ns_to_timestamps(ts),
        "source": _strings(source),
        "metric": _strings(metric),
        "value": np.asarray(value, dtype=np.float64),
    }
    for k, v in labels.items():
        data[k] = _strings(v)
    return pd.DataFrame(data)


def _series_codes(*columns: np.ndarray) -> np.ndarray:
    """One code per distinct row of the given string columns (source, metric, labels): a series is
    its whole label set (SPEC 1), so two series that differ only by a label stay two."""
    return combine_codes([pd.factorize(c, sort=True) for c in columns])[0]


def combine_codes(factorized: Sequence[tuple[np.ndarray, Any]]) -> tuple[np.ndarray, int]:
    """Codes of the distinct combinations of several factorised columns, numbered in the
    lexicographic order of the columns' (sorted) uniques, and how many there are. O(n) per column
    while the combinations fit in memory as a table, else one sort."""
    codes: np.ndarray | None = None
    n = 1
    for c, uniq in factorized:
        if len(c) == 0:  # no rows, no series
            return np.zeros(0, dtype=np.int64), 0
        k = max(len(uniq), 1)
        c = np.asarray(c, dtype=np.int64)
        if codes is None:
            codes, n = c, k
            continue
        if k == 1:  # one value (one metric, a constant label): nothing to tell apart
            continue
        combined = codes * k + c
        if n * k <= 50_000_000:
            seen = np.bincount(combined, minlength=n * k) > 0
            if seen.all():
                codes, n = combined, n * k
            else:
                renumber = np.cumsum(seen) - 1
                codes, n = renumber[combined], int(seen.sum())
        else:
            uniq_c, codes = np.unique(combined, return_inverse=True)
            n = len(uniq_c)
    if codes is None:
        return np.zeros(0, dtype=np.int64), 0
    return codes, n


def sort_and_dedupe(ts: np.ndarray, series: np.ndarray, duplicates: Duplicates, *, time_major: bool,
                     values: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    """Stable sort and duplicate handling shared by files and frames.

    Returns ``((order, merged_values_or_None), out_of_order, duplicate_pair_or_None)``:
    ``order`` indexes the rows kept, sorted by time (``time_major``) or by series then
    time, or is None when every row is kept where it is (series order only: no index
    array is made for rows already in place); ``merged_values`` is set only for
    ``duplicates='mean'``.
    """
    n = len(ts)
    if n == 0:
        return (np.zeros(0, dtype=np.int64), None), 0, None
    # each series' rows in input order; when those are in time order (the common case) this is the
    # series-then-time order too, and no row is out of order
    by_series: np.ndarray | None
    if (series[1:] >= series[:-1]).all():  # already one series after another
        by_series = None  # every row where it is
        s_sorted, t_sorted = series, ts
    else:
        by_series = np.argsort(series, kind="stable")
        s_sorted, t_sorted = series[by_series], ts[by_series]
    same_series = s_sorted[1:] == s_sorted[:-1]
    if (same_series & (t_sorted[1:] < t_sorted[:-1])).any():
        by_series = np.lexsort((ts, series))  # stable: ties stay in input order
        t_sorted = ts[by_series]
        # A row is out of order when its series already had a later sample above it.
        out_of_order = _count_out_of_order(ts, series)
    else:
        out_of_order = 0
    dup = same_series & (t_sorted[1:] == t_sorted[:-1])
    merged = None
    kept: np.ndarray | None = by_series
    if dup.any():
        if duplicates == "error":
            k = int(np.flatnonzero(dup)[0])
            pair = (k, k + 1) if by_series is None else (int(by_series[k]), int(by_series[k + 1]))
            return (by_series, None), out_of_order, pair
        if duplicates == "last":
            keep = np.ones(n, dtype=bool)
            keep[:-1] = ~dup
        elif duplicates == "first":
            keep = np.ones(n, dtype=bool)
            keep[1:] = ~dup
        else:  # mean
            if values is None:
                raise AssertionError("values needed for duplicates='mean'")
            starts = np.flatnonzero(np.concatenate(([True], ~dup)))
            merged = np.add.reduceat(values if by_series is None else values[by_series], starts) \
                / np.diff(np.append(starts, n))
            keep = np.zeros(n, dtype=bool)
            keep[starts] = True
        kept = np.flatnonzero(keep) if by_series is None else by_series[keep]
    if time_major:
        # Back to time order (stable in input order) for the frame handed to users.
        reorder = np.argsort(ts if kept is None else ts[kept], kind="stable")
        kept = reorder if kept is None else kept[reorder]
        if merged is not None:
            merged = merged[reorder]
    return (kept, merged), out_of_order, None


def _count_out_of_order(ts: np.ndarray, series: np.ndarray) -> int:
    """Rows that are earlier than some row above them in the same series."""
    if len(ts) < 2:
        return 0
    running = pd.Series(ts).groupby(series, sort=False).cummax().to_numpy()
    prev = pd.Series(running).groupby(series, sort=False).shift(1, fill_value=np.iinfo(np.int64).min)
    return int((ts < prev.to_numpy(dtype=np.int64)).sum())


def normalize_frame(frame: pd.DataFrame, *, duplicates: Duplicates = "last", name: str = "frame") -> pd.DataFrame:
    """Validate a user's long DataFrame and bring it to the metric-frame contract.

    The input is never modified. ``timestamp`` may be tz-aware (converted to UTC),
    naive (taken as UTC) or epoch numbers; a missing ``source`` column defaults to
    the metric name. Missing values are dropped and duplicates handled as in
    :func:`read_metrics`.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{name}: expected a pandas DataFrame in the long format, got {type(frame).__name__}")
    missing = [c for c in ("timestamp", "metric", "value") if c not in frame.columns]
    if missing:
        raise DataError(
            f"{name}: missing column(s) {', '.join(missing)}; expected timestamp, source, metric, value "
            f"(found {', '.join(map(str, list(frame.columns)[:8]))})"
        )
    ts = frame_timestamps(frame["timestamp"], name)
    values = frame_values(frame, name)
    metric = frame["metric"].astype("str").to_numpy(dtype=object)
    source = frame["source"].astype("str").to_numpy(dtype=object) if "source" in frame.columns else metric.copy()
    label_cols = [c for c in frame.columns if c not in METRIC_COLUMNS]
    labels = {str(c): frame[c].astype("str").fillna("").to_numpy(dtype=object) for c in label_cols}
    present = ~np.isnan(values)
    missing_n = int((~present).sum())
    if missing_n:
        ts, values, metric, source = ts[present], values[present], metric[present], source[present]
        labels = {k: v[present] for k, v in labels.items()}
    series = _series_codes(source, metric, *labels.values())
    (order, merged), out_of_order, dup = sort_and_dedupe(ts, series, duplicates, time_major=True, values=values)
    if dup is not None:
        i, j = dup
        extra = "".join(f" {k}={v[j]!r}" for k, v in labels.items() if v[j])
        raise DataError(f"{name}: duplicate timestamp {iso_ns(ts[j])} for source {source[j]!r} metric {metric[j]!r}"
                        f"{extra}; use duplicates='last', 'first' or 'mean'")
    out = build_frame(ts[order], source[order], metric[order], values[order] if merged is None else merged,
                       {k: v[order] for k, v in labels.items()})
    out.attrs["perfalert"] = {"rows": int(len(out)), "missing_dropped": missing_n,
                              "duplicates_dropped": int(len(ts) - len(order)), "out_of_order": out_of_order}
    return out


def iso_ns(ns: int) -> str:
    """A UTC instant in nanoseconds as ISO 8601 text (for messages)."""
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def epoch_to_ns(as_float: np.ndarray, as_int: np.ndarray | None) -> np.ndarray:
    """Epoch numbers to nanoseconds; the unit is told by the largest magnitude."""
    if len(as_float) == 0:
        return np.zeros(0, dtype=np.int64)
    top = float(np.nanmax(np.abs(as_float)))
    scale = NS_PER_S if top < 1e11 else 1_000_000 if top < 1e14 else 1_000 if top < 1e17 else 1
    if as_int is not None:
        return as_int.astype(np.int64) * scale
    return np.round(as_float * scale).astype(np.int64)


def frame_values(frame: pd.DataFrame, name: str) -> np.ndarray:
    """The ``value`` column as float64 (NaN where empty); a non-number names its row."""
    try:
        return pd.to_numeric(frame["value"], errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError):
        coerced = pd.to_numeric(frame["value"], errors="coerce")
        bad = np.flatnonzero(coerced.isna().to_numpy() & frame["value"].notna().to_numpy())
        i = int(bad[0]) if len(bad) else 0
        raise DataError(f"{name}: row {i}: value {frame['value'].iloc[i]!r} is not a number") from None


def frame_timestamps(col: pd.Series, name: str) -> np.ndarray:
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        ts = col.dt.tz_convert("UTC").dt.as_unit("ns")
    elif pd.api.types.is_datetime64_dtype(col.dtype):
        ts = col.dt.as_unit("ns").dt.tz_localize("UTC")
    elif pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        if col.isna().any():
            raise DataError(f"{name}: row {int(np.flatnonzero(col.isna().to_numpy())[0])}: empty timestamp")
        as_float = col.to_numpy(dtype=np.float64)
        as_int = col.to_numpy(dtype=np.int64) if pd.api.types.is_integer_dtype(col.dtype) else None
        return epoch_to_ns(as_float, as_int)
    else:
        if col.isna().any():
            raise DataError(f"{name}: row {int(np.flatnonzero(col.isna().to_numpy())[0])}: empty timestamp")
        numbers = col.map(lambda x: isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool))
        if numbers.all():  # epoch numbers held in an object column
            return frame_timestamps(pd.to_numeric(col), name)
        if numbers.any():
            i = int(np.flatnonzero(numbers.to_numpy())[0])
            raise DataError(f"{name}: row {i}: timestamp {col.iloc[i]!r} mixes epoch numbers and date strings")
        ts = pd.to_datetime(col.astype(str), format="ISO8601", utc=True, errors="coerce").dt.as_unit("ns")
        bad = ts.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{name}: row {i}: cannot parse timestamp {col.iloc[i]!r}; expected ISO 8601 or epoch numbers"
            )
    if ts.isna().any():
        raise DataError(f"{name}: row {int(np.flatnonzero(ts.isna().to_numpy())[0])}: empty timestamp")
    return col_ns(ts)


# --------------------------------------------------------------------------- engine input


@dataclass(frozen=True)
class SeriesSet:
    """A metric frame as contiguous per-series arrays: what the engine works on.

    Series ``i`` occupies ``times[offsets[i]:offsets[i+1]]`` (strictly increasing
    int64 UTC nanoseconds) and the same slice of ``values``. ``keys`` has one row per
    series: ``source``, ``metric`` and the label columns (their last value).
    """

    times: np.ndarray
    values: np.ndarray
    offsets: np.ndarray
    keys: pd.DataFrame
    start_ns: int
    end_ns: int
    # what reading dropped or moved (:func:`~perfalert_lab.reading.read_series`), as a frame's attrs["perfalert"]
    info: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def n_series(self) -> int:
        return len(self.offsets) - 1

    def span_of(self, sids: np.ndarray) -> tuple[int, int]:
        """First and last sample time of the given series (the whole input's span for none)."""
        sids = np.asarray(sids, dtype=np.int64)
        sids = sids[self.offsets[sids + 1] > self.offsets[sids]]
        if len(sids) == 0:
            return self.start_ns, self.end_ns
        return int(self.times[self.offsets[sids]].min()), int(self.times[self.offsets[sids + 1] - 1].max())

    def points(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Series ``s``'s times and values."""
        a, b = self.offsets[s], self.offsets[s + 1]
        return self.times[a:b], self.values[a:b]

    @functools.cached_property
    def hashes(self) -> np.ndarray:
        """A stable 64-bit hash of each series' label set: the series part of alert ids. A series
        with no label beyond ``source`` and ``metric`` hashes ``(source, metric)`` alone, so its ids
        do not change when another column of the input carries labels."""
        names = [str(c) for c in self.keys.columns[2:]]
        cols = [self.keys[c].astype("str").tolist() for c in self.keys.columns]
        out = []
        for row in zip(*cols, strict=True):
            extra = "".join(f"\x00{k}={v}" for k, v in zip(names, row[2:], strict=True) if v)
            out.append(stable_hash(f"{row[0]}\x00{row[1]}{extra}"))
        return np.array(out, dtype=np.uint64)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, duplicates: Duplicates = "last") -> SeriesSet:
        """Build from a metric frame (normalised first when it is not one already)."""
        if not _is_normalized(frame):
            frame = normalize_frame(frame, duplicates=duplicates)
        ts = col_ns(frame["timestamp"])
        # a series is its label set: source, metric and every label column (SPEC 1)
        id_cols = ["source", "metric", *(col for col in frame.columns if col not in METRIC_COLUMNS)]
        runs = [value_runs(frame[col]) for col in id_cols]  # where the strings change, if rarely
        fast = _grouped_series(ts, runs)
        if fast is not None:  # rows come one series after another, each in time order: no sort, no codes
            offsets = fast
            keys = _keys(frame, id_cols, offsets[1:] - 1)
            return cls(times=ts, values=frame["value"].to_numpy(dtype=np.float64).copy(), offsets=offsets,
                       keys=keys, start_ns=int(ts.min()) if len(ts) else 0, end_ns=int(ts.max()) if len(ts) else 0)
        blocks = _time_blocks(ts, frame, id_cols)
        if blocks is not None:  # time order, every timestamp listing the same series alike: a transpose
            return cls._from_time_blocks(frame, ts, id_cols, *blocks)
        # series are numbered in (source, metric, labels) order, so every table lists them alike
        codes, n_uniq = combine_codes([_factorize(_no_missing(frame[col]) if i > 1 else frame[col], run)
                                       for i, (col, run) in enumerate(zip(id_cols, runs, strict=True))])
        identity = False
        if len(ts) < 2:
            identity = True
        else:
            dc = np.diff(codes)
            if (dc >= 0).all():  # grouped by series: is each series in time order?
                dt = np.diff(ts)
                dt[dc > 0] = 1
                identity = bool((dt > 0).all())
        if not identity:
            sorted_ = by_series(codes, ts, frame["value"].to_numpy(dtype=np.float64), n_uniq)
            if sorted_ is not None:  # each series in strictly increasing time: one stable counting sort
                offsets, t, vals, last_rows = sorted_
                return cls(times=t, values=vals, offsets=offsets, keys=_keys(frame, id_cols, last_rows),
                           start_ns=int(ts.min()), end_ns=int(ts.max()))
        if identity:
            order = None  # already grouped by series, in time order: no copy, no sort
            t, c = ts, codes
        else:
            if (np.diff(ts) >= 0).all():
                # time-sorted: a stable sort by series keeps time order (radix sort on small codes)
                small = codes.astype(np.int16) if n_uniq < 2**15 else codes
                order = np.argsort(small, kind="stable")
            else:
                order = np.lexsort((ts, codes))
            t = ts[order]
            c = codes[order]
        dup = (c[1:] == c[:-1]) & (t[1:] == t[:-1]) if not identity else np.zeros(0, dtype=bool)
        if dup.any() and duplicates != "last":  # a frame that looks normalised but is not: as asked
            return cls.from_frame(normalize_frame(frame, duplicates=duplicates))
        if dup.any():  # keep the last, as normalising would
            keep = np.ones(len(t), dtype=bool)
            keep[:-1] = ~dup
            assert order is not None
            order, t, c = order[keep], t[keep], c[keep]
        counts = np.bincount(c, minlength=n_uniq)
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        last_rows = offsets[1:] - 1 if order is None else order[offsets[1:] - 1]
        keys = _keys(frame, id_cols, last_rows)
        vals = frame["value"].to_numpy(dtype=np.float64)
        vals = vals.copy() if order is None else vals[order]  # the series own their values
        return cls(
            times=np.ascontiguousarray(t), values=np.ascontiguousarray(vals), offsets=offsets, keys=keys,
            start_ns=int(t.min()) if len(t) else 0, end_ns=int(t.max()) if len(t) else 0,
        )

    @classmethod
    def _from_time_blocks(cls, frame: pd.DataFrame, ts: np.ndarray, id_cols: list[str], width: int,
                          head_codes: np.ndarray) -> SeriesSet:
        """The series of a frame in blocks of ``width`` rows, one block per timestamp, each listing the same
        ``width`` distinct series in the same order (:func:`_time_blocks`; ``head_codes`` number the first
        block's series in (source, metric, labels) order): series ``j`` is a column of the (time x series)
        matrix the rows make, so its times and values are one strided copy each."""
        perm = np.argsort(head_codes)  # the series in (source, metric, labels) order, as every table lists them
        k = len(ts) // width
        values = frame["value"].to_numpy(dtype=np.float64)
        return cls(times=_columns(ts.reshape(k, width), perm), values=_columns(values.reshape(k, width), perm),
                   offsets=np.arange(width + 1, dtype=np.int64) * k,
                   keys=_keys(frame, id_cols, (k - 1) * width + perm), start_ns=int(ts[0]), end_ns=int(ts[-1]))


class Handoff:
    """An input handed over to one backtest: the backtest takes it out (the holder is then empty), so it is
    freed as soon as the backtest is done with it, not when the call returns. The command reads each file
    for one backtest and hands it over this way: a rule file's backtest keeps none of its input (at 10M
    samples its times, 80 MB, go before the rules run; its values stay only where the report draws them)."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def take(self) -> Any:
        """The input; a second ``take`` is an error (it was handed over once)."""
        value, self._value = self._value, None
        if value is None:
            raise RuntimeError("Handoff.take: the input was already taken (it is handed to one backtest)")
        return value

    @staticmethod
    def taken(value: Any) -> Any:
        """``value`` itself, or what a :class:`Handoff` holds (taken out of it)."""
        return value.take() if isinstance(value, Handoff) else value


def by_series(codes: np.ndarray, ts: np.ndarray, values: np.ndarray, n_series: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The rows grouped by series code, each series' rows in the order they come: ``(offsets, times,
    values, each series' last row)``, when every series' times then strictly increase (else ``None``:
    rows out of order or a duplicate timestamp, for the sorting path; also ``None`` for inputs too small
    to repay compiling, where a sort as plain numpy is quicker). One counting sort (O(n), stable), in
    place of a sort of the codes and three gathers by its order."""
    if not _scatter_by_series.runs_compiled(codes):
        return None
    offsets = np.zeros(n_series + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=n_series), out=offsets[1:])
    times = np.empty(len(ts), dtype=np.int64)
    vals = np.empty(len(ts), dtype=np.float64)
    last = np.empty(n_series, dtype=np.int64)
    if not _scatter_by_series(codes, ts, values, offsets, times, vals, last):
        return None
    return offsets, times, vals, last


@kernel
def _scatter_by_series(codes, ts, values, offsets, times, vals, last):  # type: ignore[no-untyped-def]
    """Place row ``i`` at the next free slot of its series (``offsets``); False as soon as a series'
    time does not increase."""
    free = offsets[:-1].copy()
    for i in range(len(codes)):
        c = codes[i]
        p = free[c]
        if p > offsets[c] and ts[i] <= times[p - 1]:
            return False
        times[p] = ts[i]
        vals[p] = values[i]
        last[c] = i
        free[c] = p + 1
    return True


def _columns(matrix: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The columns ``order`` of ``matrix`` one after another, as one flat array: a transpose done a tile of
    about 256 KB at a time, so what is read and written stays in cache (twice as quick as one strided copy
    of a large matrix)."""
    rows = max(64, (256 * 1024) // (matrix.itemsize * max(matrix.shape[1], 1)))
    out = np.empty((matrix.shape[1], matrix.shape[0]), dtype=matrix.dtype)
    for r0 in range(0, matrix.shape[0], rows):
        out[:, r0:r0 + rows] = matrix[r0:r0 + rows].T[order]
    return out.ravel()


def _time_blocks(ts: np.ndarray, frame: pd.DataFrame, id_cols: list[str]) -> tuple[int, np.ndarray] | None:
    """``(P, codes of the first P rows' series)`` when the rows are blocks of ``P`` rows, one block per
    timestamp in strictly increasing time, every block listing the same ``P`` distinct series in the same
    order (how a time-ordered export of regular series comes); ``None`` otherwise. Compares each id
    column with itself ``P`` rows on (the bytes of an Arrow string column, the codes of a categorical),
    not one string per row."""
    n = len(ts)
    if n < 4:
        return None
    width = int(np.argmax(ts != ts[0]))  # the rows of the first timestamp
    if width < 2 or n % width:
        return None
    blocks = ts.reshape(n // width, width)
    if not (blocks == blocks[:, :1]).all() or not (np.diff(blocks[:, 0]) > 0).all():
        return None
    if not all(_repeats_every(frame[col], width) for col in id_cols):
        return None
    head = frame.iloc[:width]
    codes, distinct = combine_codes([_factorize(_no_missing(head[col]) if i > 1 else head[col])
                                     for i, col in enumerate(id_cols)])
    return (width, codes) if distinct == width else None  # a series twice at one time: the general path


def _repeats_every(col: pd.Series, width: int) -> bool:
    """Whether each value of ``col`` equals the one ``width`` rows before (no value missing)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        return bool((codes >= 0).all()) and bool(np.array_equal(codes[width:], codes[:-width]))
    arr = getattr(col.array, "_pa_array", None)
    if arr is None:  # objects: compared one by one
        values = col.to_numpy(dtype=object)
        return not col.isna().any() and bool((values[width:] == values[:-width]).all())
    import pyarrow as pa

    arr = arr.chunk(0) if isinstance(arr, pa.ChunkedArray) and arr.num_chunks == 1 else \
        arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if arr.null_count or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return False
    # a string column repeats every ``width`` rows when its lengths do and its bytes repeat every B bytes,
    # B the bytes of one block
    wide = pa.types.is_large_string(arr.type)
    offsets: np.ndarray = np.frombuffer(arr.buffers()[1], dtype=np.int64 if wide else np.int32,
                                        count=len(arr) + 1, offset=arr.offset * (8 if wide else 4))
    step = offsets[width:] - offsets[:-width]  # each row's start against the start ``width`` rows before
    if not np.array_equal(step, np.broadcast_to(step[0], len(step))):
        return False
    data = arr.buffers()[2]
    lo, hi, b = int(offsets[0]), int(offsets[-1]), int(offsets[width] - offsets[0])
    if data is None or b == 0:
        return data is None or hi == lo
    return _bytes_repeat(data, lo, hi, b)


def _bytes_repeat(data: Any, lo: int, hi: int, period: int) -> bool:
    """Whether ``data[lo + period:hi] == data[lo:hi - period]`` (compared 8 bytes at a time)."""
    m = (hi - lo - period) // 8
    ahead = np.frombuffer(data, dtype=np.uint64, count=m, offset=lo + period)
    behind = np.frombuffer(data, dtype=np.uint64, count=m, offset=lo)
    if not np.array_equal(ahead, behind):
        return False
    tail = np.frombuffer(data, dtype=np.uint8, count=hi - lo - period - 8 * m, offset=lo + period + 8 * m)
    return bool(np.array_equal(tail, np.frombuffer(data, dtype=np.uint8, count=len(tail), offset=lo + 8 * m)))


def _factorize(col: pd.Series, runs: tuple[np.ndarray, Any] | None = None) -> tuple[np.ndarray, Any]:
    """Codes and sorted uniques of a string column; a categorical's codes are reused (no hashing), and
    a column in few long ``runs`` (:func:`value_runs`) is factorised one value per run."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cat = col.cat.remove_unused_categories()
        cats = np.asarray(cat.cat.categories.astype(str), dtype=object)
        rank = np.argsort(cats, kind="stable")
        if (rank == np.arange(len(rank))).all():
            return cat.cat.codes.to_numpy(dtype=np.int64), cats
        inverse = np.empty(len(rank), dtype=np.int64)
        inverse[rank] = np.arange(len(rank))
        return inverse[cat.cat.codes.to_numpy(dtype=np.int64)], cats[rank]
    if runs is not None:  # grouped rows (one series after another): factorise one value per run
        starts, values = runs
        run_codes, uniq = pd.factorize(values, sort=True)
        return np.repeat(run_codes, np.diff(np.append(starts, len(col)))), uniq
    return pd.factorize(col, sort=True)


def _no_missing(col: pd.Series) -> pd.Series:
    """A label column with an empty label for a missing one (Prometheus: an empty label is no label)."""
    return col.astype("str").fillna("") if col.isna().any() else col


def _keys(frame: pd.DataFrame, id_cols: list[str], rows: np.ndarray) -> pd.DataFrame:
    """One row per series: its ``source``, ``metric`` and label columns (an empty label is ``""``)."""
    keys = frame.iloc[rows][id_cols].reset_index(drop=True)
    for col in id_cols[2:]:
        if keys[col].isna().any():
            keys[col] = keys[col].astype("str").fillna("")
    return keys


def _grouped_series(ts: np.ndarray, runs: list[tuple[np.ndarray, Any] | None]) -> np.ndarray | None:
    """The series' offsets when the frame's rows come one series after another, series in
    (source, metric, labels) order, each in strictly increasing time (what a frame sorted by series
    and time, or written one series at a time, looks like); ``None`` otherwise. Reads only where the
    strings change (:func:`value_runs`) and one difference of the timestamps."""
    n = len(ts)
    if any(r is None for r in runs):
        return None
    starts = functools.reduce(np.union1d, [r[0] for r in runs if r is not None])
    parts = []
    for r in runs:
        assert r is not None
        vals = np.asarray(r[1], dtype=object)[np.searchsorted(r[0], starts, side="right") - 1]
        parts.append(pd.factorize(vals, sort=True))
    key, _ = combine_codes(parts)
    if len(key) > 1 and not (np.diff(key) > 0).all():
        return None  # a series comes back later, or the series are not in (source, metric, labels) order
    dt = np.diff(ts)
    dt[starts[1:] - 1] = 1  # a new series may start at any time
    if not (dt > 0).all():
        return None  # not in time order within a series, or a duplicate timestamp
    return np.append(starts, n).astype(np.int64)


def value_runs(col: pd.Series) -> tuple[np.ndarray, Any] | None:
    """Where the value of an arrow string column changes, and the value of each run, when the rows
    come in few long runs (a frame grouped by series); ``None`` otherwise (then hashing every row is
    as quick). Compares neighbours with arrow kernels: no Python object per row."""
    arr = getattr(col.array, "_pa_array", None)
    n = len(col)
    if arr is None or n < 65_536:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    head = arr.slice(0, 4096).combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr.slice(0, 4096)
    if not pa.types.is_string(head.type) and not pa.types.is_large_string(head.type):
        return None
    if pc.sum(pc.not_equal(head.slice(1), head.slice(0, len(head) - 1))).as_py() > 16:
        return None  # interleaved series: a guess from the first rows saves the full pass
    if isinstance(arr, pa.ChunkedArray):
        whole = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    else:
        whole = arr
    if whole.null_count:
        return None
    change = pc.indices_nonzero(pc.not_equal(whole.slice(1), whole.slice(0, n - 1)))
    starts = np.concatenate(([0], change.to_numpy() + 1)).astype(np.int64)
    if len(starts) > n // 64:
        return None
    return starts, pd.array(whole.take(pa.array(starts)), dtype=col.dtype)


def _is_normalized(frame: pd.DataFrame) -> bool:
    return (
        all(c in frame.columns for c in METRIC_COLUMNS)
        and isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype)
        and str(frame["timestamp"].dt.tz) == "UTC"
        and frame["value"].dtype == np.float64
        and not frame["value"].isna().any()
    )


# --------------------------------------------------------------------------- incidents

def as_incidents(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Incidents in the contract frame (validated unless they already are one); None stays None."""
    if frame is None:
        return None
    if isinstance(frame, pd.DataFrame) and list(frame.columns) == list(INCIDENT_COLUMNS):
        return frame
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"incidents: expected a DataFrame (see read_incidents), got {type(frame).__name__}")
    return incidents_frame(frame)


def incidents_frame(frame: pd.DataFrame, *, name: str = "incidents", csv: bool = False) -> pd.DataFrame:
    """Validate incidents given as a DataFrame and return the incidents contract frame."""
    missing = [c for c in ("start", "end") if c not in frame.columns]
    if missing:
        raise DataError(f"{name}: missing column(s) {', '.join(missing)}; expected start,end[,source,metric,point]")
    unknown = [c for c in frame.columns if c not in INCIDENT_COLUMNS]
    if unknown:
        raise DataError(
            f"{name}: unknown column(s) {', '.join(map(str, unknown))}; expected start,end[,source,metric,point]"
        )
    out: dict[str, Any] = {}
    for col in ("start", "end", "point"):
        if col not in frame.columns:
            continue
        vals: list[Any] = []
        for i, v in enumerate(frame[col].tolist()):
            if col == "point" and (v is None or v == "" or (isinstance(v, float) and np.isnan(v))):
                vals.append(None)
                continue
            try:
                vals.append(parse_instant(v))
            except ValueError:
                where = f"{name}:{i + 2}" if csv else f"{name}: row {i}"
                raise DataError(f"{where}: column {col!r}: cannot parse {v!r} as a time; expected ISO 8601") from None
        out[col] = vals
    start = np.array(out["start"], dtype=np.int64)
    end = np.array(out["end"], dtype=np.int64)
    point = np.array(
        [p if p is not None else s for p, s in zip(out.get("point", [None] * len(start)), start, strict=True)],
        dtype=np.int64,
    )
    bad = np.flatnonzero(end < start)
    if len(bad):
        i = int(bad[0])
        where = f"{name}:{i + 2}" if csv else f"{name}: row {i}"
        raise DataError(f"{where}: incident ends before it starts")

    def text(col: str) -> Any:
        if col not in frame.columns:
            return pd.array([pd.NA] * len(start), dtype="str")
        vals = [
            None if (v is None or v == "" or (isinstance(v, float) and np.isnan(v))) else str(v) for v in frame[col]
        ]
        return pd.array(vals, dtype="str")

    return pd.DataFrame({
        "start": ns_to_timestamps(start), "end": ns_to_timestamps(end),
        "source": text("source"), "metric": text("metric"), "point": ns_to_timestamps(point),
    })

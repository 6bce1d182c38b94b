"""Reading metric and incident files: CSV, Parquet (files and datasets), NAB, Prometheus's formats.

What a file becomes is the metric frame of SPEC section 1 (see :mod:`perfalert_lab.frames`, whose
loading rules apply to every file: the same timestamp forms, missing values dropped, rows sorted,
duplicates handled, all counted in ``frame.attrs["perfalert"]``). Reading imports neither the
engine nor PromQL: loading a CSV stays quick.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._time import ns_to_timestamps, parse_instant
from ..errors import DataError, InputFileNotFound, UsageError
from ..frames import (
    DUPLICATE_POLICIES,
    METRIC_COLUMNS,
    Duplicates,
    SeriesSet,
    build_frame,
    combine_codes,
    epoch_to_ns,
    incidents_frame,
    iso_ns,
    sort_and_dedupe,
)
from .prometheus import is_prometheus_file, read_prometheus

__all__ = ["is_parquet_dataset", "iter_files", "read_incidents", "read_metrics", "read_series"]

_NUMERIC_RE = r"^\s*[-+]?\d+(\.\d*)?([eE][-+]?\d+)?\s*$"

def read_metrics(
    paths: str | Path | Sequence[str | Path],
    *,
    source: str | None = None,
    metric: str | None = None,
    timezone: str | None = None,
    duplicates: Duplicates = "last",
    order: Literal["time", "series"] = "time",
) -> pd.DataFrame:
    """Read metric files (CSV or Parquet; long, wide or NAB layout) into one long frame.

    Parameters
    ----------
    paths
        One path or several. ``.parquet``/``.pq`` files are read as Parquet, anything
        else as CSV (``,``, ``;`` or tab delimited, detected from the header line).
    source, metric
        Names to use where the file has no ``source`` / ``metric`` column. By default
        both are the file stem (NAB style: ``cpu.csv`` gives metric ``cpu``).
    timezone
        IANA zone of naive timestamps (default UTC).
    duplicates
        What to do with several rows of one series at one timestamp: keep the
        ``last`` (default) or ``first``, average them (``mean``), or raise (``error``).
    order
        ``time`` (default): rows stably sorted by time. ``series``: one series after
        another (by source, metric and labels), each in time order — what a backtest
        reads without sorting again (the command line reads so).

    Layouts, told apart by the header:

    * long: ``timestamp, [source,] metric, value[, labels...]``;
    * NAB: ``timestamp, value`` (metric and source are the file stem);
    * wide: ``timestamp, [source,] metric_a, metric_b, ...`` (every other column numeric).

    Examples
    --------
    >>> import perfalert_lab as pal, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cpu.csv"
    >>> _ = p.write_text("timestamp,value\\n2026-01-01 00:00:00,5\\n2026-01-01 00:01:00,7\\n")
    >>> pal.read_metrics(p)
                      timestamp source metric  value
    0 2026-01-01 00:00:00+00:00    cpu    cpu    5.0
    1 2026-01-01 00:01:00+00:00    cpu    cpu    7.0
    """
    if order not in ("time", "series"):
        raise UsageError(f"order={order!r}: expected 'time' or 'series'")
    raw = _read_raw(paths, source=source, metric=metric, timezone=timezone, duplicates=duplicates)
    return raw.finish(duplicates, time_major=order == "time")


def read_series(
    paths: str | Path | Sequence[str | Path],
    *,
    source: str | None = None,
    metric: str | None = None,
    timezone: str | None = None,
    duplicates: Duplicates = "last",
) -> SeriesSet:
    """Read metric files as :func:`read_metrics` does, straight into the series model (what a backtest,
    PromQL and the tuners replay): ``SeriesSet.from_frame(read_metrics(paths, order="series"))``, equal
    to it, without a string per row. What was dropped or moved is in ``series.info``.

    Examples
    --------
    >>> import perfalert_lab as pal, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cpu.csv"
    >>> _ = p.write_text("timestamp,value\\n2026-01-01 00:00:00,5\\n2026-01-01 00:01:00,7\\n")
    >>> s = pal.read_series(p)
    >>> s.n_series, s.values.tolist(), s.keys.to_dict("records")
    (1, [5.0, 7.0], [{'source': 'cpu', 'metric': 'cpu'}])
    """
    raw = _read_raw(paths, source=source, metric=metric, timezone=timezone, duplicates=duplicates)
    return raw.series_set(duplicates)


def _read_raw(paths: str | Path | Sequence[str | Path], *, source: str | None, metric: str | None,
              timezone: str | None, duplicates: str) -> _Raw:
    if duplicates not in DUPLICATE_POLICIES:
        raise UsageError(f"duplicates={duplicates!r}: expected one of {', '.join(DUPLICATE_POLICIES)}")
    if isinstance(paths, str | Path):
        paths = [paths]
    if not paths:
        raise UsageError("read_metrics: no file given")
    parts = [_read_one(Path(p), source=source, metric=metric, timezone=timezone) for p in paths]
    raw = _Raw.concat(parts)
    if len(raw.ts) == 0:
        raise DataError(f"{', '.join(raw.files)}: every value is empty; no samples to replay")
    return raw


@dataclass
class _Raw:
    """Columns of loaded rows before sorting, with where each row came from."""

    ts: np.ndarray  # int64 ns
    source: pd.Categorical  # string columns stay dictionary-encoded: no Python object per row
    metric: pd.Categorical
    value: np.ndarray  # float64
    labels: dict[str, pd.Categorical]
    # where each row came from, for messages: files[k] holds rows starts[k] up to starts[k + 1]; ``row`` is
    # each row's data row in its file (0-based), None when that is its place after its file's start (a
    # long file with every value present: no array of a row number per row)
    starts: np.ndarray
    row: np.ndarray | None
    files: list[str]
    missing: int = 0

    def where(self, j: int) -> tuple[str, int]:
        """The file row ``j`` came from and its data row there (0-based)."""
        k = int(np.searchsorted(self.starts, j, side="right")) - 1
        return self.files[k], int(self.row[j]) if self.row is not None else j - int(self.starts[k])

    def rows(self) -> np.ndarray:
        """Each row's data row in its file."""
        if self.row is not None:
            return self.row
        sizes = np.diff(np.append(self.starts, len(self.ts)))
        return np.arange(len(self.ts), dtype=np.int64) - np.repeat(self.starts, sizes)

    @staticmethod
    def concat(parts: list[_Raw]) -> _Raw:
        if len(parts) == 1:
            return parts[0]
        label_names: list[str] = []
        for p in parts:
            label_names += [k for k in p.labels if k not in label_names]
        files: list[str] = []
        starts, offset = [], 0
        for p in parts:
            starts.append(p.starts + offset)
            offset += len(p.ts)
            files += p.files

        def col(p: _Raw, k: str) -> pd.Categorical:
            return p.labels.get(
                k, pd.Categorical.from_codes(np.full(len(p.ts), -1), categories=pd.Index([], dtype=object))
            )

        def union(cols: list[pd.Categorical]) -> pd.Categorical:  # categories as objects (a wide file's are str)
            return pd.api.types.union_categoricals([
                c if c.categories.dtype == object else pd.Categorical.from_codes(
                    c.codes, categories=pd.Index(np.asarray(c.categories, dtype=object), dtype=object))
                for c in cols])

        return _Raw(
            ts=np.concatenate([p.ts for p in parts]),
            source=union([p.source for p in parts]),
            metric=union([p.metric for p in parts]),
            value=np.concatenate([p.value for p in parts]),
            labels={k: union([col(p, k) for p in parts]) for k in label_names},
            starts=np.concatenate(starts),
            row=None if all(p.row is None for p in parts) else np.concatenate([p.rows() for p in parts]),
            files=files,
            missing=sum(p.missing for p in parts),
        )

    def series_set(self, duplicates: Duplicates) -> SeriesSet:
        """The rows as the series model: series numbered in (source, metric, labels) order (an empty
        label sorts first), each in time order, duplicates resolved as :meth:`finish` resolves them."""
        columns = {"source": self.source, "metric": self.metric, **self.labels}
        sorted_codes = []
        for name, col in columns.items():
            cats = np.asarray(col.categories, dtype=object)
            if name not in ("source", "metric"):  # a missing label (code -1) is the empty one, put last
                cats = np.append(cats, "")
            uniq, inverse = np.unique(cats.astype(str), return_inverse=True)
            # each row's place among the sorted values: a lookup by the (small) category code, -1 the last
            sorted_codes.append((inverse.astype(np.int32)[col.codes], uniq))
        series, _ = combine_codes(sorted_codes)
        keep, out_of_order, dup_index = sort_and_dedupe(self.ts, series, duplicates, time_major=False,
                                                         values=self.value)
        self._refuse_duplicate(dup_index)
        order, merged = keep
        if _in_place(order, len(self.ts)):
            ts, vals, sid = self.ts, self.value if merged is None else merged, series
        else:
            ts, sid = self.ts[order], series[order]
            vals = self.value[order] if merged is None else merged
        starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]]) if len(sid) else np.zeros(0, dtype=np.int64)
        offsets = np.append(starts, len(sid)).astype(np.int64)
        first_rows = starts if order is None else order[starts]  # each series' first row, as read
        keys = pd.DataFrame({name: pd.array(uniq[codes[first_rows]], dtype="str")
                             for name, (codes, uniq) in zip(columns, sorted_codes, strict=True)})
        return SeriesSet(times=np.ascontiguousarray(ts, dtype=np.int64),
                         values=np.ascontiguousarray(vals, dtype=np.float64), offsets=offsets, keys=keys,
                         start_ns=int(ts.min()), end_ns=int(ts.max()), info=self._info(len(ts), out_of_order))

    def _refuse_duplicate(self, dup_index: tuple[int, int] | None) -> None:
        if dup_index is not None:
            i, j = dup_index
            raise DataError(
                f"{_line(self, j)}: duplicate timestamp "
                f"{iso_ns(self.ts[j])} for source {self.source[j]!r} metric {self.metric[j]!r} "
                f"(also at {_line(self, i)}); "
                "use duplicates='last', 'first' or 'mean' to resolve"
            )

    def _info(self, rows: int, out_of_order: int) -> dict[str, Any]:
        return {"files": list(self.files), "rows": int(rows), "missing_dropped": int(self.missing),
                "duplicates_dropped": int(len(self.ts) - rows), "out_of_order": int(out_of_order)}

    def finish(self, duplicates: Duplicates, *, time_major: bool = True) -> pd.DataFrame:
        source, metric = self.source, self.metric
        if not time_major:  # series in (source, metric) order, as the engine numbers them
            source = source.reorder_categories(sorted(source.categories))
            metric = metric.reorder_categories(sorted(metric.categories))
        series = source.codes.astype(np.int64) * max(len(metric.categories), 1) + metric.codes
        for col in self.labels.values():  # a series is its whole label set (SPEC 11); an empty label is none
            codes = col.codes.astype(np.int64)
            empty = np.flatnonzero(np.asarray(col.categories, dtype=object) == "")
            if len(empty):
                codes = np.where(codes == empty[0], -1, codes)
            if len(codes) and not (codes == codes[0]).all():  # one value everywhere tells no series apart
                series = pd.factorize(series * (len(col.categories) + 1) + (codes + 1),
                                      sort=not time_major)[0].astype(np.int64)
        keep, out_of_order, dup_index = sort_and_dedupe(self.ts, series, duplicates, time_major=time_major,
                                                         values=self.value)
        self._refuse_duplicate(dup_index)
        order, values = keep
        if _in_place(order, len(self.ts)):
            # the rows stay where they are: no copy of any column
            frame = build_frame(self.ts, self.source, self.metric, self.value if values is None else values,
                                 dict(self.labels))
        else:
            values = self.value[order] if values is None else values
            frame = build_frame(
                self.ts[order], self.source[order], self.metric[order], values,
                {k: v[order] for k, v in self.labels.items()},
            )
        frame.attrs["perfalert"] = self._info(len(frame), out_of_order)
        return frame


def _in_place(order: np.ndarray | None, n: int) -> bool:
    """Whether sorting kept all ``n`` rows where they are (then no column needs copying)."""
    if order is None:
        return True
    return len(order) == n and (n == 0 or (int(order[0]) == 0 and bool((np.diff(order) == 1).all())))


def _line(raw: _Raw, i: int) -> str:
    """``file:line`` of row ``i`` (1-based line numbers, the header on line 1)."""
    file, row = raw.where(i)
    return f"{file}:{_line_of_row(Path(file), row)}"


def _read_one(path: Path, *, source: str | None, metric: str | None, timezone: str | None) -> _Raw:
    if not path.exists():
        raise InputFileNotFound(f"{path}: no such file")
    if path.is_dir():
        if not is_parquet_dataset(path):
            raise InputFileNotFound(f"{path}: is a directory, expected a CSV or Parquet file (or a Parquet dataset)")
        table = _read_parquet_table(path)  # hive partitions (source=web-1/...) come back as columns
        return _table_to_raw(table, _FileContext(path, csv=False), source=source, metric=metric, timezone=timezone)
    if is_prometheus_file(path):
        return _prometheus_to_raw(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        table = _read_parquet_table(path)
        ctx = _FileContext(path, csv=False)
    else:
        table = _read_csv_table(path)
        ctx = _FileContext(path, csv=True)
    return _table_to_raw(table, ctx, source=source, metric=metric, timezone=timezone)


def _prometheus_to_raw(path: Path) -> _Raw:
    """A query_range JSON, tsdb dump or exposition file (SPEC 11): ``source`` is the label of that name."""
    cols = read_prometheus(path)
    labels = {k: pd.Categorical(v) for k, v in cols["labels"].items() if k not in ("source", "metric")}
    n = len(cols["value"])
    source = pd.Categorical(cols["labels"].get("source", [""] * n))
    return _Raw(ts=cols["timestamp"], source=source, metric=pd.Categorical(cols["metric"]), value=cols["value"],
                labels=labels, starts=np.zeros(1, dtype=np.int64), row=cols["row"], files=[str(path)])


@dataclass
class _FileContext:
    path: Path
    csv: bool

    def where(self, row: int | None = None, column: str | None = None) -> str:
        loc = str(self.path)
        if row is not None:
            loc += f":{_line_of_row(self.path, row)}" if self.csv else f": row {row + 1}"
        if column is not None:
            loc += f": column {column!r}"
        return loc


def _sniff_delimiter(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.readline(65536)
    if b"\x00" in head:
        raise DataError(f"{path}: binary data, expected a CSV text file (UTF-8) or Parquet (.parquet)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}:1: the header is not UTF-8 text; re-export the file as UTF-8") from None
    if b"," not in head:
        for d in (b";", b"\t", b"|"):
            if d in head:
                return d.decode()
    return ","


def _read_csv_table(path: Path):  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter = _sniff_delimiter(path)
    string_cols = {"timestamp": pa.string(), "source": pa.string(), "metric": pa.string()}
    try:
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types=string_cols, strings_can_be_null=True),
        )
    except pa.ArrowInvalid as exc:
        raise DataError(_arrow_message(path, str(exc))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def _arrow_message(path: Path, msg: str) -> str:
    msg = msg.strip().splitlines()[0]
    if "Empty CSV file" in msg:
        return f"{path}: empty file, expected a header line such as 'timestamp,value'"
    if "invalid UTF8" in msg:
        return f"{path}: not UTF-8 text ({msg}); re-export the file as UTF-8"
    m = re.search(r"Expected (\d+) columns, got (\d+)", msg)
    if m:
        return (
            f"{path}: a row has {m.group(2)} fields where the header has {m.group(1)} ({msg.split(': ', 1)[-1][:80]})"
        )
    return f"{path}: cannot parse as CSV: {msg[:200]}"


def _read_parquet_table(path: Path):  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # string columns stay dictionary-encoded as Parquet stores them: no string per row is made
        schema = pq.read_schema(path) if not Path(path).is_dir() else None
        strings = None
        if schema is not None:  # the label columns only: times and values are parsed from their text
            names = set(schema.names)
            labels = [n for n in names if n not in ("timestamp", "value")] if "value" in names else \
                [n for n in ("source", "metric") if n in names]
            strings = [n for n in labels if pa.types.is_string(schema.field(n).type)
                       or pa.types.is_large_string(schema.field(n).type)]
        return pq.read_table(path, read_dictionary=strings or None)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:160]})") from None


def _table_to_raw(table, ctx: _FileContext, *, source: str | None, metric: str | None, timezone: str | None) -> _Raw:  # type: ignore[no-untyped-def]
    names = [str(n) for n in table.column_names]
    stem = ctx.path.stem
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise DataError(
            f"{ctx.path}: duplicate column(s) {', '.join(map(repr, dups))} in the header; name each column once"
        )
    if "timestamp" not in names:
        hint = ""
        if len(names) == 1 and any(d in names[0] for d in ";\t|"):
            hint = " (the delimiter seems wrong)"
        raise DataError(
            f"{ctx.path}: no 'timestamp' column{hint}; found {', '.join(map(repr, names[:8]))}: "
            "name the time column 'timestamp'"
        )
    n = table.num_rows
    if n == 0:
        raise DataError(f"{ctx.path}: no data rows (only a header); expected one row per sample")
    ts = _parse_timestamps(table.column("timestamp"), ctx, timezone)
    src = (
        _string_column(table, "source", ctx) if "source" in names else _constant(n, stem if source is None else source)
    )
    labels: dict[str, pd.Categorical] = {}
    if "value" in names:  # long or NAB
        met = _string_column(table, "metric", ctx) if "metric" in names else _constant(n, metric or stem)
        val = _float_column(table, "value", ctx)
        for k in names:
            if k not in METRIC_COLUMNS:
                labels[k] = _string_column(table, k, ctx)
    else:  # wide
        metric_cols = [k for k in names if k not in ("timestamp", "source", "metric")]
        if not metric_cols:
            raise DataError(
                f"{ctx.path}: no 'value' column and no metric columns; "
                "expected 'timestamp,value' or 'timestamp,<metric>,...'"
            )
        vals = [_float_column(table, k, ctx) for k in metric_cols]
        val = np.concatenate(vals)
        met = pd.Categorical.from_codes(np.repeat(np.arange(len(metric_cols)), n), categories=pd.Index(metric_cols))
        ts = np.tile(ts, len(metric_cols))
        src = pd.Categorical.from_codes(np.tile(src.codes, len(metric_cols)), categories=src.categories)
    present = ~np.isnan(val)
    missing = int((~present).sum())
    rows = None  # a long file with every value: row i is data row i
    if missing or len(val) != n:  # a wide file's rows repeat per metric column
        rows = np.tile(np.arange(n, dtype=np.int64), len(val) // max(n, 1))
    if missing and rows is not None:
        ts, src, met, val, rows = ts[present], src[present], met[present], val[present], rows[present]
        labels = {k: v[present] for k, v in labels.items()}
    return _Raw(ts=ts, source=src, metric=met, value=val, labels=labels, starts=np.zeros(1, dtype=np.int64),
                row=rows, files=[str(ctx.path)], missing=missing)


def _string_column(table, name: str, ctx: _FileContext) -> Any:  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name)
    if pa.types.is_dictionary(col.type) and (pa.types.is_string(col.type.value_type)
                                             or pa.types.is_large_string(col.type.value_type)):
        if name in ("source", "metric") and col.null_count:
            bad = int(np.flatnonzero(np.asarray(col.is_null()))[0])
            raise DataError(f"{ctx.where(bad, name)}: empty {name}; every row needs one")
        unified = col.unify_dictionaries()
        chunks = unified.chunks
        dictionary = chunks[0].dictionary if chunks else pa.array([], pa.string())
        indices = [c.indices for c in chunks]
        codes = np.concatenate([_codes(i, len(dictionary)) for i in indices]) if indices else np.zeros(0, np.int8)
        return pd.Categorical.from_codes(codes, categories=pd.Index(dictionary.to_pylist(), dtype=object))
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        raise DataError(f"{ctx.where(None, name)}: not UTF-8 text; re-export the file as UTF-8")
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    if name in ("source", "metric") and col.null_count:
        bad = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise DataError(f"{ctx.where(bad, name)}: empty {name}; every row needs one")
    # dictionary-encode in arrow: codes and a few distinct strings, no Python object per row
    encoded = pc.dictionary_encode(col.combine_chunks() if hasattr(col, "combine_chunks") else col)
    return pd.Categorical.from_codes(_codes(encoded.indices, len(encoded.dictionary)),
                                     categories=pd.Index(encoded.dictionary.to_pylist(), dtype=object))


def _codes(indices: Any, categories: int) -> np.ndarray:
    """Dictionary indices as category codes of the width pandas keeps for ``categories`` values (int8,
    int16 or int32: no second narrowing copy), -1 where null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    width = pa.int8() if categories < 2**7 - 1 else pa.int16() if categories < 2**15 - 1 else pa.int32()
    return np.asarray(pc.cast(indices, width).to_numpy(zero_copy_only=False))


def _constant(n: int, value: str) -> pd.Categorical:
    return pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=pd.Index([value], dtype=object))


def _float_column(table, name: str, ctx: _FileContext) -> np.ndarray:  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name)
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t) or pa.types.is_decimal(t):
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:  # numbers written as text (a Parquet column of strings): read them as numbers
            return np.asarray(pc.cast(pc.utf8_trim_whitespace(col), pa.float64()).to_numpy(zero_copy_only=False),
                              dtype=np.float64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        # A column pyarrow could not read as numbers: find the first offending row.
        ok = pc.match_substring_regex(col, _NUMERIC_RE + r"|^\s*(?i:nan|inf|-inf|\+inf|infinity|-infinity)\s*$")
        ok = np.asarray(pc.fill_null(ok, True))
        bad = int(np.flatnonzero(~ok)[0]) if (~ok).any() else 0
        value = col[bad].as_py()
        raise DataError(f"{ctx.where(bad, name)}: {value!r} is not a number; expected a numeric value or empty")
    raise DataError(f"{ctx.where(None, name)}: column type {t} is not numeric")


def _parse_timestamps(col, ctx: _FileContext, timezone: str | None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Timestamps of an arrow column as int64 UTC nanoseconds; errors name the row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    if col.null_count:
        bad = int(np.flatnonzero(np.asarray(col.is_null()))[0])
        raise DataError(f"{ctx.where(bad, 'timestamp')}: empty timestamp; every row needs one")
    t = col.type
    if pa.types.is_timestamp(t):
        arr = col
        if t.tz is None:
            arr = _assume_tz(pc.cast(arr, pa.timestamp("ns")), timezone, ctx)
        return np.asarray(pc.cast(arr, pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy(), dtype=np.int64)
    if pa.types.is_date(t):
        return _parse_timestamps(pc.cast(col, pa.timestamp("ns")), ctx, timezone)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return epoch_to_ns(np.asarray(pc.cast(col, pa.float64()).to_numpy(), dtype=np.float64),
                            np.asarray(col.to_numpy()) if pa.types.is_integer(t) else None)
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise DataError(f"{ctx.where(None, 'timestamp')}: column type {t} is not a time")
    n = len(col)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not re.match(_NUMERIC_RE, str(col[0].as_py())):
        numeric = np.zeros(n, dtype=bool)  # dates: a stray number fails to parse below, with its line
    else:
        numeric = np.asarray(pc.match_substring_regex(col, _NUMERIC_RE))
    if numeric.all():
        as_float = np.asarray(pc.cast(pc.utf8_trim_whitespace(col), pa.float64()).to_numpy(), dtype=np.float64)
        as_int = None
        if (
            not np.asarray(pc.match_substring(col, ".")).any()
            and not np.asarray(pc.match_substring_regex(col, "[eE]")).any()
        ):
            as_int = np.asarray(pc.cast(pc.utf8_trim_whitespace(col), pa.int64()).to_numpy(), dtype=np.int64)
        return epoch_to_ns(as_float, as_int)
    if numeric.any():
        bad = int(np.flatnonzero(numeric)[0]) if numeric.sum() < n / 2 else int(np.flatnonzero(~numeric)[0])
        raise DataError(
            f"{ctx.where(bad, 'timestamp')}: {col[bad].as_py()!r} mixes epoch numbers and date strings; "
            "use one timestamp format per file"
        )
    # Fast paths: every value zone-less, or every value with a zone. The first value
    # tells which to try first (a failing cast of a large column is slow).
    def naive() -> np.ndarray:
        parsed = pc.cast(col, pa.timestamp("ns"))
        return np.asarray(pc.cast(_assume_tz(parsed, timezone, ctx), pa.int64()).to_numpy(), dtype=np.int64)

    def aware() -> np.ndarray:
        return np.asarray(pc.cast(pc.cast(col, pa.timestamp("ns", tz="UTC")), pa.int64()).to_numpy(), dtype=np.int64)

    zoned_first = bool(re.search(r"(?:Z|[+-]\d\d:?\d\d)\s*$", str(col[0].as_py())))
    for attempt in (aware, naive) if zoned_first else (naive, aware):
        try:
            return attempt()
        except pa.ArrowInvalid:
            pass
    # Mixed or unusual ISO 8601 forms: pandas' parser, then locate the first failure.
    strings = pd.Series(np.asarray(col.to_numpy(zero_copy_only=False), dtype=object))
    parsed = pd.to_datetime(strings, format="ISO8601", utc=True, errors="coerce")
    if parsed.isna().any():
        bad = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(
            f"{ctx.where(bad, 'timestamp')}: cannot parse {strings[bad]!r} as a time; expected ISO 8601 "
            "(2026-01-03T00:00:00Z), 'YYYY-MM-DD HH:MM:SS' or epoch seconds/milliseconds"
        )
    if timezone is not None:
        has_zone = strings.str.contains(r"(?:Z|[+-]\d\d:?\d\d)\s*$", regex=True)
        if (~has_zone).any():
            bad = int(np.flatnonzero((~has_zone).to_numpy())[0])
            raise DataError(
                f"{ctx.where(bad, 'timestamp')}: the file mixes zone-less and zoned times; "
                "a timezone applies only to zone-less files"
            )
    return np.asarray(parsed.dt.as_unit("ns").astype("int64").to_numpy(), dtype=np.int64)


def _assume_tz(naive, timezone: str | None, ctx: _FileContext):  # type: ignore[no-untyped-def]
    import pyarrow as pa
    import pyarrow.compute as pc

    if timezone is None or timezone.upper() == "UTC":
        return pc.cast(naive, pa.timestamp("ns", tz="UTC"))
    try:
        local = pc.assume_timezone(naive, timezone, ambiguous="earliest", nonexistent="earliest")
    except (pa.ArrowInvalid, ValueError) as exc:
        raise DataError(f"{ctx.path}: unknown timezone {timezone!r} ({str(exc).splitlines()[0][:80]})") from None
    return pc.cast(local, pa.timestamp("ns", tz="UTC"))


def _line_of_row(path: Path, row: int) -> int:
    """The 1-based line of data row ``row`` (0-based, header excluded) in a CSV file.

    Only used to word errors, so it reads the file again rather than tracking lines
    on the fast path. Blank lines, which the reader skips, are skipped here too.
    """
    try:
        with path.open("rb") as fh:
            line_no = 0
            seen = -1
            for raw in fh:
                line_no += 1
                if not raw.strip():
                    continue
                if seen == row:
                    return line_no
                seen += 1
    except OSError:
        pass
    return row + 2



def read_incidents(path: str | Path) -> pd.DataFrame:
    """Read labelled incidents: a CSV ``start,end[,source,metric,point]`` or NAB label JSON.

    For NAB's ``combined_windows.json`` the source and metric are the file stem of each
    key (as :func:`read_metrics` names NAB series) and ``point`` comes from
    ``combined_labels.json`` beside it when present, else the window centre.
    ``point`` defaults to ``start`` in CSV files.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileNotFound(f"{p}: no such file")
    if p.is_dir():
        raise InputFileNotFound(f"{p}: is a directory, expected an incidents CSV or NAB JSON file")
    if p.suffix.lower() == ".json":
        return _read_nab_incidents(p)
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot parse incidents CSV ({str(exc).splitlines()[0][:120]})") from None
    return incidents_frame(frame, name=str(p), csv=True)


def _read_nab_incidents(p: Path) -> pd.DataFrame:
    def load(path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from None

    data = load(p)
    if not isinstance(data, dict):
        raise DataError(f"{p}: expected a NAB label object mapping file names to windows")
    points: dict[str, list[Any]] = {}
    labels_path = p.with_name("combined_labels.json")
    if p.name != labels_path.name and labels_path.exists():
        loaded = load(labels_path)
        points = loaded if isinstance(loaded, dict) else {}
    rows = []
    for key, windows in data.items():
        stem = Path(str(key)).stem
        if not isinstance(windows, list):
            raise DataError(f"{p}: entry {key!r}: expected a list of windows or points")
        pts = [parse_instant(x) for x in points.get(key, [])]
        for w in windows:
            if isinstance(w, list) and len(w) == 2:
                try:
                    s, e = parse_instant(w[0]), parse_instant(w[1])
                except ValueError:
                    raise DataError(f"{p}: entry {key!r}: cannot parse window {w!r}") from None
                # NAB merges overlapping windows: such a window holds several points; the
                # incident is the window, measured from its first point
                inside = [x for x in pts if s <= x <= e]
                rows.append((s, e, stem, stem, inside[0] if inside else s + (e - s) // 2))
            elif isinstance(w, str):  # combined_labels.json: points only
                x = parse_instant(w)
                rows.append((x, x, stem, stem, x))
            else:
                raise DataError(f"{p}: entry {key!r}: expected [start, end] windows, got {w!r}")
    frame = pd.DataFrame(rows, columns=["start", "end", "source", "metric", "point"])
    return pd.DataFrame({
        "start": ns_to_timestamps(frame["start"].to_numpy(dtype=np.int64)),
        "end": ns_to_timestamps(frame["end"].to_numpy(dtype=np.int64)),
        "source": pd.array(frame["source"].tolist(), dtype="str"),
        "metric": pd.array(frame["metric"].tolist(), dtype="str"),
        "point": ns_to_timestamps(frame["point"].to_numpy(dtype=np.int64)),
    })


def is_parquet_dataset(path: Path) -> bool:
    """A directory of Parquet files partitioned hive-style (``source=web-1/part.parquet``)."""
    if not path.is_dir():
        return False
    files = [q for q in path.rglob("*") if q.is_file() and not q.name.startswith((".", "_"))]
    return bool(files) and all(q.suffix.lower() in (".parquet", ".pq") for q in files) and any(
        "=" in part for q in files for part in q.relative_to(path).parts[:-1])


def iter_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories into the CSV/Parquet files they hold (sorted), keep files.

    A hive-partitioned Parquet dataset stays one path: its partition directories
    carry columns (such as ``source``) that its files alone do not have.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if is_parquet_dataset(p):
            out.append(p)
        elif p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in (".csv", ".parquet", ".pq"))
            if not found:
                raise InputFileNotFound(f"{p}: directory holds no .csv or .parquet file")
            out += found
        else:
            out.append(p)
    return out

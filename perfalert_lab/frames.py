"""Metric and incident frames: read CSV / Parquet / NAB files, validate, normalise.

The metric frame (SPEC section 1) is a long DataFrame with one row per sample::

    timestamp  datetime64[ns, UTC]
    source     str     host, instance, file...
    metric     str
    value      float64
    <label>    str     any further column, carried into the outputs

Loading rules, applied the same way to every file and to DataFrames handed to
:func:`normalize_frame`:

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
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._time import NS_PER_S, col_ns, ns_to_timestamps, parse_instant
from .errors import DataError, InputFileNotFound, UsageError

__all__ = [
    "METRIC_COLUMNS",
    "INCIDENT_COLUMNS",
    "SeriesSet",
    "normalize_frame",
    "read_incidents",
    "read_metrics",
]

METRIC_COLUMNS = ("timestamp", "source", "metric", "value")
INCIDENT_COLUMNS = ("start", "end", "source", "metric", "point")
Duplicates = Literal["last", "first", "mean", "error"]
_DUPLICATE_POLICIES = ("last", "first", "mean", "error")
_NUMERIC_RE = r"^\s*[-+]?\d+(\.\d*)?([eE][-+]?\d+)?\s*$"


# --------------------------------------------------------------------------- reading


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
    if duplicates not in _DUPLICATE_POLICIES:
        raise UsageError(f"duplicates={duplicates!r}: expected one of {', '.join(_DUPLICATE_POLICIES)}")
    if order not in ("time", "series"):
        raise UsageError(f"order={order!r}: expected 'time' or 'series'")
    if isinstance(paths, str | Path):
        paths = [paths]
    if not paths:
        raise UsageError("read_metrics: no file given")
    parts = [_read_one(Path(p), source=source, metric=metric, timezone=timezone) for p in paths]
    raw = _Raw.concat(parts)
    if len(raw.ts) == 0:
        raise DataError(f"{', '.join(raw.files)}: every value is empty; no samples to replay")
    return raw.finish(duplicates, time_major=order == "time")


@dataclass
class _Raw:
    """Columns of loaded rows before sorting, with where each row came from."""

    ts: np.ndarray  # int64 ns
    source: pd.Categorical  # string columns stay dictionary-encoded: no Python object per row
    metric: pd.Categorical
    value: np.ndarray  # float64
    labels: dict[str, pd.Categorical]
    origin: np.ndarray  # int: index into files
    row: np.ndarray  # int: data row within its file (0-based)
    files: list[str]
    missing: int = 0

    @staticmethod
    def concat(parts: list[_Raw]) -> _Raw:
        if len(parts) == 1:
            return parts[0]
        label_names: list[str] = []
        for p in parts:
            label_names += [k for k in p.labels if k not in label_names]
        files: list[str] = []
        origins = []
        for p in parts:
            origins.append(p.origin + len(files))
            files += p.files

        def col(p: _Raw, k: str) -> pd.Categorical:
            return p.labels.get(
                k, pd.Categorical.from_codes(np.full(len(p.ts), -1), categories=pd.Index([], dtype=object))
            )

        union = pd.api.types.union_categoricals
        return _Raw(
            ts=np.concatenate([p.ts for p in parts]),
            source=union([p.source for p in parts]),
            metric=union([p.metric for p in parts]),
            value=np.concatenate([p.value for p in parts]),
            labels={k: union([col(p, k) for p in parts]) for k in label_names},
            origin=np.concatenate(origins),
            row=np.concatenate([p.row for p in parts]),
            files=files,
            missing=sum(p.missing for p in parts),
        )

    def finish(self, duplicates: Duplicates, *, time_major: bool = True) -> pd.DataFrame:
        source, metric = self.source, self.metric
        if not time_major:  # series in (source, metric) order, as the engine numbers them
            source = source.reorder_categories(sorted(source.categories))
            metric = metric.reorder_categories(sorted(metric.categories))
        series = source.codes.astype(np.int64) * max(len(metric.categories), 1) + metric.codes
        for col in self.labels.values():  # a series is its whole label set (SPEC 11)
            if len(col.categories) > 1:
                series = pd.factorize(series * (len(col.categories) + 1) + (col.codes + 1),
                                      sort=not time_major)[0].astype(np.int64)
        keep, out_of_order, dup_index = _sort_and_dedupe(self.ts, series, duplicates, time_major=time_major,
                                                         values=self.value)
        if dup_index is not None:
            i, j = dup_index
            raise DataError(
                f"{self.files[self.origin[j]]}:{_line(self, j)}: duplicate timestamp "
                f"{_iso(self.ts[j])} for source {self.source[j]!r} metric {self.metric[j]!r} "
                f"(also at {self.files[self.origin[i]]}:{_line(self, i)}); "
                "use duplicates='last', 'first' or 'mean' to resolve"
            )
        order, values = keep
        if len(order) == len(self.ts) and (len(order) == 0 or (order[0] == 0 and (np.diff(order) == 1).all())):
            # the rows stay where they are: no copy of any column
            frame = _build_frame(self.ts, self.source, self.metric, self.value if values is None else values,
                                 dict(self.labels))
        else:
            values = self.value[order] if values is None else values
            frame = _build_frame(
                self.ts[order], self.source[order], self.metric[order], values,
                {k: v[order] for k, v in self.labels.items()},
            )
        frame.attrs["perfalert"] = {
            "files": list(self.files),
            "rows": int(len(frame)),
            "missing_dropped": int(self.missing),
            "duplicates_dropped": int(len(self.ts) - len(order)),
            "out_of_order": int(out_of_order),
        }
        return frame


def _line(raw: _Raw, i: int) -> int | str:
    """1-based line number in the file of data row ``raw.row[i]`` (header on line 1)."""
    return _line_of_row(Path(raw.files[raw.origin[i]]), int(raw.row[i]))


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def _read_one(path: Path, *, source: str | None, metric: str | None, timezone: str | None) -> _Raw:
    if not path.exists():
        raise InputFileNotFound(f"{path}: no such file")
    if path.is_dir():
        if not is_parquet_dataset(path):
            raise InputFileNotFound(f"{path}: is a directory, expected a CSV or Parquet file (or a Parquet dataset)")
        table = _read_parquet_table(path)  # hive partitions (source=web-1/...) come back as columns
        return _table_to_raw(table, _FileContext(path, csv=False), source=source, metric=metric, timezone=timezone)
    from .promql_engine.formats import is_prometheus_file

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
    from .promql_engine.formats import read_prometheus

    cols = read_prometheus(path)
    labels = {k: pd.Categorical(v) for k, v in cols["labels"].items() if k not in ("source", "metric")}
    n = len(cols["value"])
    source = pd.Categorical(cols["labels"].get("source", [""] * n))
    return _Raw(ts=cols["timestamp"], source=source, metric=pd.Categorical(cols["metric"]), value=cols["value"],
                labels=labels, origin=np.zeros(n, dtype=np.int64), row=cols["row"], files=[str(path)])


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
    rows = np.tile(np.arange(n, dtype=np.int64), len(val) // max(n, 1)) if n else np.zeros(0, np.int64)
    present = ~np.isnan(val)
    missing = int((~present).sum())
    if missing:
        ts, src, met, val, rows = ts[present], src[present], met[present], val[present], rows[present]
        labels = {k: v[present] for k, v in labels.items()}
    return _Raw(ts=ts, source=src, metric=met, value=val, labels=labels,
                origin=np.zeros(len(ts), dtype=np.int64), row=rows, files=[str(ctx.path)], missing=missing)


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
        codes = np.concatenate([np.asarray(pc.fill_null(i, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
                                for i in indices]) if indices else np.zeros(0, np.int64)
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
    codes = np.asarray(pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    return pd.Categorical.from_codes(codes, categories=pd.Index(encoded.dictionary.to_pylist(), dtype=object))


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
        return _epoch_to_ns(np.asarray(pc.cast(col, pa.float64()).to_numpy(), dtype=np.float64),
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
        return _epoch_to_ns(as_float, as_int)
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


def _epoch_to_ns(as_float: np.ndarray, as_int: np.ndarray | None) -> np.ndarray:
    """Epoch numbers to nanoseconds; the unit is told by the largest magnitude."""
    if len(as_float) == 0:
        return np.zeros(0, dtype=np.int64)
    top = float(np.nanmax(np.abs(as_float)))
    scale = NS_PER_S if top < 1e11 else 1_000_000 if top < 1e14 else 1_000 if top < 1e17 else 1
    if as_int is not None:
        return as_int.astype(np.int64) * scale
    return np.round(as_float * scale).astype(np.int64)


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


def _build_frame(ts: np.ndarray, source: np.ndarray | pd.Categorical, metric: np.ndarray | pd.Categorical,
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


def _sort_and_dedupe(ts: np.ndarray, series: np.ndarray, duplicates: Duplicates, *, time_major: bool,
                     values: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    """Stable sort and duplicate handling shared by files and frames.

    Returns ``((order, merged_values_or_None), out_of_order, duplicate_pair_or_None)``:
    ``order`` indexes the rows kept, sorted by time (``time_major``) or by series then
    time; ``merged_values`` is set only for ``duplicates='mean'``.
    """
    n = len(ts)
    if n == 0:
        return (np.zeros(0, dtype=np.int64), None), 0, None
    # each series' rows in input order; when those are in time order (the common case) this is the
    # series-then-time order too, and no row is out of order
    if (series[1:] >= series[:-1]).all():  # already one series after another
        by_series = np.arange(n)
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
    if dup.any():
        if duplicates == "error":
            k = int(np.flatnonzero(dup)[0])
            return (by_series, None), out_of_order, (int(by_series[k]), int(by_series[k + 1]))
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
            merged = np.add.reduceat(values[by_series], starts) / np.diff(np.append(starts, n))
            keep = np.zeros(n, dtype=bool)
            keep[starts] = True
        kept = by_series[keep]
    else:
        kept = by_series
    if time_major:
        # Back to time order (stable in input order) for the frame handed to users.
        reorder = np.argsort(ts[kept], kind="stable")
        kept = kept[reorder]
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
    (order, merged), out_of_order, dup = _sort_and_dedupe(ts, series, duplicates, time_major=True, values=values)
    if dup is not None:
        i, j = dup
        extra = "".join(f" {k}={v[j]!r}" for k, v in labels.items() if v[j])
        raise DataError(f"{name}: duplicate timestamp {_iso(ts[j])} for source {source[j]!r} metric {metric[j]!r}"
                        f"{extra}; use duplicates='last', 'first' or 'mean'")
    out = _build_frame(ts[order], source[order], metric[order], values[order] if merged is None else merged,
                       {k: v[order] for k, v in labels.items()})
    out.attrs["perfalert"] = {"rows": int(len(out)), "missing_dropped": missing_n,
                              "duplicates_dropped": int(len(ts) - len(order)), "out_of_order": out_of_order}
    return out


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
        return _epoch_to_ns(as_float, as_int)
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

    @functools.cached_property
    def hashes(self) -> np.ndarray:
        """A stable 64-bit hash of each series' label set: the series part of alert ids. A series
        with no label beyond ``source`` and ``metric`` hashes ``(source, metric)`` alone, so its ids
        do not change when another column of the input carries labels."""
        from ._hashing import stable_hash

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
        runs = [_runs(frame[col]) for col in id_cols]  # where the strings change, if rarely
        fast = _grouped_series(ts, runs)
        if fast is not None:  # rows come one series after another, each in time order: no sort, no codes
            offsets = fast
            keys = _keys(frame, id_cols, offsets[1:] - 1)
            return cls(times=ts, values=frame["value"].to_numpy(dtype=np.float64).copy(), offsets=offsets,
                       keys=keys, start_ns=int(ts.min()) if len(ts) else 0, end_ns=int(ts.max()) if len(ts) else 0)
        # series are numbered in (source, metric, labels) order, so every table lists them alike
        codes, n_uniq = combine_codes([_factorize(_no_missing(frame[col]) if i > 1 else frame[col], run)
                                       for i, (col, run) in enumerate(zip(id_cols, runs, strict=True))])
        identity = False
        if len(ts) < 2:
            identity = True
        else:
            dc = np.diff(codes)
            dt = np.diff(ts)
            if (dc >= 0).all():  # grouped by series: is each series in time order?
                dt[dc > 0] = 1
                identity = bool((dt > 0).all())
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


def _factorize(col: pd.Series, runs: tuple[np.ndarray, Any] | None = None) -> tuple[np.ndarray, Any]:
    """Codes and sorted uniques of a string column; a categorical's codes are reused (no hashing), and
    a column in few long ``runs`` (:func:`_runs`) is factorised one value per run."""
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
    strings change (:func:`_runs`) and one difference of the timestamps."""
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


def _runs(col: pd.Series) -> tuple[np.ndarray, Any] | None:
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

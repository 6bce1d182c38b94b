"""HTML renderings: Jupyter reprs of results and rule sets (the report builds on them)."""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._secrets import redact_settings
from ._time import NAT_NS
from .present import stats_for_people

if TYPE_CHECKING:  # pragma: no cover
    from .result import BacktestResult

__all__ = ["csv_ready", "iso_utc", "result_html", "rules_html", "stats_html", "table_html", "write_report",
           "write_table_csv"]


TEXT_COLUMNS = ("summary", "annotations", "labels")  # sentences: read left to right, wrapped


def table_html(frame: pd.DataFrame, max_rows: int = 20) -> str:
    """A DataFrame as an HTML table (first ``max_rows`` rows), times in ISO 8601 UTC; the columns of
    sentences (a page's summary, annotations, labels) left-aligned and wrapped."""
    shown = frame.head(max_rows).copy()
    for col in shown.columns:
        if isinstance(shown[col].dtype, pd.DatetimeTZDtype):
            shown[col] = shown[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ").fillna("")
    formatters = {c: (lambda v: f'<div class="pal-text">{html.escape(str(v))}</div>') for c in TEXT_COLUMNS
                  if c in shown.columns}
    more = f"<p><small>{len(frame) - max_rows} more rows</small></p>" if len(frame) > max_rows else ""
    if formatters:  # the formatters' markup stays; every other text is escaped here
        for col in shown.columns:
            if col not in formatters and (shown[col].dtype == object or pd.api.types.is_string_dtype(shown[col])):
                shown[col] = shown[col].map(lambda v: html.escape(str(v)) if isinstance(v, str) else v)
    table = shown.to_html(index=False, border=0, classes="pal-table", na_rep="", float_format=lambda x: f"{x:.4g}",
                          formatters=formatters or None, escape=not formatters)
    return f'<div class="scroll">{table}</div>{more}'


# what a reader looks at first in the report's tables (the CSVs keep SPEC 5's order); the rest follows
ALERTS_FIRST = ["fired_at", "rule_id", "source", "status", "peak_value", "resolved_at", "severity"]
NOTIFICATIONS_FIRST = ["at", "channel", "kind", "summary", "rule_id", "source", "delivered", "reason",
                       "receiver", "integration", "firing", "resolved", "group_labels"]


def reader_order(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    """``frame`` with the columns of ``first`` it has in front, the others after in their order."""
    front = [c for c in first if c in frame.columns]
    return frame[front + [c for c in frame.columns if c not in front]]


CAUGHT_COLUMNS = ["rule_id", "alerts", "suppressed", "alerts_per_day", "incidents", "detected", "recall", "precision",
                  "detection"]


def stats_html(stats: pd.DataFrame) -> str:
    """The statistics as a person reads them (durations, leads, no nan) in two tables that fit a
    1400 px window: what each rule caught and at what volume, then what it cost and how long it fired."""
    people = stats_for_people(stats)
    caught = [c for c in CAUGHT_COLUMNS if c in people.columns]
    cost = ["rule_id", *[c for c in people.columns if c not in caught]]
    tables = []
    for title, cols in (("Alerts and incidents", caught), ("Notifications and time firing", cost)):
        shown = people[cols].rename(columns=lambda c: c.replace("_", " "))
        tables.append(f"<h3>{title}</h3>" + shown.to_html(index=False, border=0, classes="pal-table"))
    return f'<div class="stats">{"".join(tables)}</div>'


def rules_html(rules: Any) -> str:
    if hasattr(rules, "groups"):  # a Prometheus rule file
        prom = [{"group": g.name, "interval": f"{g.interval_ms // 1000}s", "kind": r.kind, "name": r.name,
                 "expr": r.expr, "for": f"{r.for_ms // 1000}s" if r.for_ms else "",
                 "keep firing for": f"{r.keep_firing_for_ms // 1000}s" if r.keep_firing_for_ms else "",
                 "labels": ", ".join(f"{k}={v}" for k, v in r.labels.items())}
                for g in rules.groups for r in g.rules]
        return (f"<b>Prometheus rule file</b> {html.escape(str(rules.path))} ({len(prom)} rules)"
                + pd.DataFrame(prom).to_html(index=False, border=0, escape=True))
    rows = []
    for r in rules:
        channels = ", ".join(
            c.channel + (f" {redact_settings(dict(c.settings))}" if c.settings else "") for c in r.channels
        )
        rows.append({"id": r.id, "condition": r.describe(), "mode": r.mode, "severity": r.severity,
                     "notify": channels, "escalation": "yes" if r.escalation else "", "enabled": r.enabled})
    return f"<b>RuleSet</b> ({len(rules)} rules)" + pd.DataFrame(rows).to_html(index=False, border=0, escape=True)


def result_html(result: BacktestResult) -> str:
    head = html.escape(repr(result))
    return (f"<div><b>{head}</b><h4>stats</h4>{table_html(result.stats)}"
            f"<h4>alerts</h4>{table_html(result.alerts, 10)}</div>")


def iso_utc(col: pd.Series) -> pd.Series:
    """Times as ISO 8601 UTC text (``2026-01-03T00:00:00Z``; fractions only when present); NaT as empty."""
    c = col.dt.tz_convert("UTC")
    whole = (c.dropna().dt.nanosecond == 0).all() and (c.dropna().dt.microsecond == 0).all()
    fmt = "%Y-%m-%dT%H:%M:%SZ" if whole else "%Y-%m-%dT%H:%M:%S.%fZ"
    return c.dt.strftime(fmt).fillna("")


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every datetime column as ISO 8601 UTC text."""
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = iso_utc(out[col])
    return out


def write_table_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a result table as CSV with ISO 8601 UTC times.

    The text is ``csv_ready(frame).to_csv(index=False)``'s, byte for byte (the tests hold it), built
    column by column in Arrow: each column rendered as pandas renders it (floats as their shortest
    repr, booleans as ``True``/``False``, missing as empty, a field quoted only when it holds a comma,
    a quote or a line break), the rows joined in C++. Several times quicker on a million rows. Rows are
    rendered and written :data:`CSV_ROWS` at a time, so the text is never held whole."""
    try:
        with open(path, "wb") as out:
            for part in _csv_parts(frame):
                out.write(part)
    except _NeedsPandas:  # a column of a kind only pandas renders (found before a byte is written): pandas writes it
        csv_ready(frame).to_csv(path, index=False, lineterminator="\n")


CSV_ROWS = 25_000  # rows rendered at a time: about 6 MB of text for a result table (100k: 30-40 MB more at peak)


class _NeedsPandas(Exception):
    """A column holds values only pandas renders (objects that are not all strings, nullable integers)."""


def _needs_quotes() -> str:
    """The characters that make the csv module quote a field (with ``lineterminator="\\n"``): a comma, a
    quote, a line feed, and on newer Pythons a carriage return too (asked of the module, not assumed)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["a\rb", "c"])
    return r'[,"\n\r]' if buf.getvalue().startswith('"') else r'[,"\n]'


_NEEDS_QUOTES = _needs_quotes()


def _quoted(col: Any) -> Any:
    """Strings as the csv module writes them (QUOTE_MINIMAL): quoted, inner quotes doubled, when they
    hold the delimiter, a quote or a line break."""
    import pyarrow.compute as pc

    need = pc.match_substring_regex(col, _NEEDS_QUOTES)
    if not pc.any(need).as_py():
        return col
    return _quote_where(col, need)


def _quote_where(col: Any, need: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    quoted = pc.binary_join_element_wise(pa.scalar('"', col.type), pc.replace_substring(col, '"', '""'),
                                         pa.scalar('"', col.type), pa.scalar("", col.type))
    return pc.if_else(pc.fill_null(need, False), quoted, col)


Rows = Callable[[int, int], Any]  # the text of rows [a, b) of one column, an Arrow large_string array


def _column_text(series: pd.Series) -> Rows | None:
    """One column's CSV text as ``DataFrame.to_csv`` renders it, given a block of rows at a time (None:
    not a kind rendered here). What every block shares is worked out once for the whole column (a time
    column's distinct times formatted, a string column's few distinct values quoted, which fields need
    quotes), so a block costs one Arrow call or none: each call hands the interpreter lock back and
    forth with the report drawing beside the writer, and a block of twenty calls a column waited for
    it most of the time."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text_type = pa.large_string()
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        utc = series.dt.tz_convert("UTC")
        codes, uniques = pd.factorize(utc.to_numpy(dtype="datetime64[ns]").astype(np.int64))  # NaT: a value
        ns = uniques[uniques != NAT_NS]
        whole = bool(((ns % 1_000_000_000) == 0).all())
        unit = pa.timestamp("s" if whole else "us", "UTC")
        stamps = pa.array(uniques.view("datetime64[ns]"), type=pa.timestamp("ns", "UTC"),
                          mask=uniques == NAT_NS)  # each distinct time formatted once (a tick repeats often)
        text = pc.fill_null(pc.strftime(pc.cast(stamps, unit, safe=False), format="%Y-%m-%dT%H:%M:%SZ"), "")
        return _taken(pc.cast(text, text_type), pa.array(codes))
    if pd.api.types.is_bool_dtype(dtype) and not series.isna().any():
        return _taken(pa.array(["False", "True"], type=text_type), pa.array(series.to_numpy(dtype=np.int8)))
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        ints = series.to_numpy()
        return lambda a, b: pc.cast(pa.array(ints[a:b]), text_type)
    if pd.api.types.is_float_dtype(dtype) and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        floats = series.to_numpy(dtype=np.float64)
        return lambda a, b: pc.cast(_float_text(floats[a:b]), text_type)
    if pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        try:
            arr = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # objects that are not all strings: pandas writes str(x)
            return None
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return None
        arr = pc.cast(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr, text_type)
        if arr.null_count:
            arr = pc.fill_null(arr, "")
        if len(arr) > 1000 and len(pc.unique(arr.slice(0, 1000))) * 4 < 1000:  # few values (judged by the first
            encoded = arr.dictionary_encode()                                     # rows: ids are not encoded)
            if len(encoded.dictionary) * 4 < len(arr):
                return _taken(_quoted(encoded.dictionary), encoded.indices)
        need = pc.match_substring_regex(arr, _NEEDS_QUOTES)
        if not pc.any(need).as_py():
            return lambda a, b: arr.slice(a, b - a)
        return lambda a, b: _quote_where(arr.slice(a, b - a), need.slice(a, b - a))
    return None


def _taken(text: Any, codes: Any) -> Rows:
    """Rows as ``text[codes[row]]``: one take a block (the codes held as narrow as ``text`` allows: they
    are held for the whole table while the report draws)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    width = pa.int8() if len(text) <= 2**7 else pa.int16() if len(text) <= 2**15 else pa.int32()
    codes = pc.cast(codes, width) if codes.type.bit_width > width.bit_width else codes
    return lambda a, b: text.take(codes.slice(a, b - a))


def _float_text(values: np.ndarray) -> Any:
    """Floats as pandas writes them (numpy's ``str``: the shortest round trip, positional for 1e-4 <= |x| <
    1e16 with ``.0`` on whole numbers, else exponent form; NaN empty), in Arrow. Arrow's cast finds the
    same shortest digits; where it prints them otherwise (an exponent, a whole number without ``.0``,
    zero) the text is mended or taken from numpy."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(pa.array(values), pa.string())
    with np.errstate(invalid="ignore"):
        mag = np.abs(values)
        fast = (mag >= 1e-4) & (mag < 1e16)
    fast &= ~pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
    whole = fast & (values == np.trunc(values))
    if whole.any():
        text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    zero = values == 0
    if zero.any():
        text = pc.if_else(pa.array(zero), pc.if_else(pa.array(np.signbit(values)), "-0.0", "0.0"), text)
    slow = ~fast & ~zero & ~np.isnan(values)
    if slow.any():  # tiny, huge or infinite: numpy's own text
        text = pc.replace_with_mask(text, pa.array(slow), pa.array(values[slow].astype(str), type=pa.string()))
    return pc.fill_null(pc.if_else(pa.array(np.isnan(values)), pa.scalar(None, pa.string()), text), "")


def csv_text(frame: pd.DataFrame) -> bytes | None:
    """The CSV text of ``frame`` as :func:`write_table_csv` writes it, or None when a column needs pandas."""
    try:
        return b"".join(bytes(part) for part in _csv_parts(frame))
    except _NeedsPandas:
        return None


def _csv_parts(frame: pd.DataFrame) -> Iterator[bytes | memoryview]:
    """The CSV text of ``frame`` in parts: the header, then the lines of each block of :data:`CSV_ROWS`
    rows (raises :class:`_NeedsPandas`, before any part, when a column is not one rendered here)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(frame.columns) or frame.columns.duplicated().any() or (len(frame) and len(frame.columns) == 1):
        raise _NeedsPandas  # the csv module quotes an empty lone field: leave that to pandas
    columns = [_column_text(frame.iloc[:, k]) for k in range(len(frame.columns))] if len(frame) else []
    if any(c is None for c in columns):
        raise _NeedsPandas
    yield (",".join(_quoted(pa.array([str(c)])).to_pylist()[0] for c in frame.columns) + "\n").encode()
    comma, newline, nothing = (pa.scalar(x, pa.large_string()) for x in (",", "\n", ""))
    for start in range(0, len(frame), CSV_ROWS):
        stop = min(start + CSV_ROWS, len(frame))
        fields = [c(start, stop) for c in columns if c is not None]
        fields[-1] = pc.binary_join_element_wise(fields[-1], newline, nothing)  # the line's end, on its last field
        lines = pc.binary_join_element_wise(*fields, comma)
        del fields  # one block's text held at a time: this one's fields go before the lines are written,
        yield from _value_views(lines)
        del lines  # and its lines before the next block is made


def _value_views(arr: Any) -> Iterator[memoryview]:
    """The bytes a (large) string array holds, in order: its value buffer between the first and last offset
    (views, not copies)."""
    import pyarrow as pa

    for chunk in arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]:
        wide = chunk.type == pa.large_string()
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64 if wide else np.int32, count=len(chunk) + 1,
                                offset=chunk.offset * (8 if wide else 4))
        yield memoryview(chunk.buffers()[2])[int(offsets[0]):int(offsets[-1])]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
  color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table.pal-table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}
.pal-table th,.pal-table td{padding:.2rem .5rem;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
.pal-table th{background:#f6f6f6}.meta{color:#666;font-size:.85rem}.figure img{max-width:100%;border:1px solid #eee}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#f6f8fa;border-radius:6px;padding:.6rem 1rem}
.card b{display:block;font-size:1.3rem}.scroll{overflow-x:auto}
.pal-text{text-align:left;white-space:normal;min-width:22rem;max-width:38rem}
.stats .pal-table th{white-space:normal;vertical-align:bottom;max-width:6.5rem}
"""


def _cards(result: BacktestResult) -> str:
    total = result.stats[result.stats["rule_id"] == "TOTAL"].iloc[0]
    items = [("alerts", int(total["alerts"])), ("suppressed", int(total["suppressed"])),
             ("alerts / day", f"{total['alerts_per_day']:.2f}"), ("notifications", int(total["notifications"])),
             ("undelivered", int(total["undelivered"])), ("escalations", int(total["escalations"]))]
    if "recall" in result.stats.columns:
        items += [("recall", f"{total['recall']:.2f}"), ("precision", f"{total['precision']:.2f}")]
    return '<div class="cards">' + "".join(f'<div class="card"><b>{html.escape(str(v))}</b>{k}</div>'
                                          for k, v in items) + "</div>"


def write_report(result: BacktestResult, path: Path, *, title: str = "perfalert_lab backtest",
                 figures: list[tuple[str, bytes]] | None = None, sections: list[tuple[str, str]] | None = None
                 ) -> None:
    """A self-contained HTML report: summary, statistics, alerts, notifications, pictures.

    Pictures are PNGs embedded as data URIs, so the file can be mailed or archived.
    When ``figures`` is None the standard timeline pictures are drawn (if
    matplotlib is importable). ``sections`` (heading, HTML) come first, after the summary cards.
    """
    if figures is None:
        figures = _default_figures(result)
    figs = "".join(
        f'<div class="figure"><h3>{html.escape(name)}</h3>'
        f'<img alt="{html.escape(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></div>'
        for name, png in figures)
    span = f"{result.span[0]:%Y-%m-%d %H:%M} to {result.span[1]:%Y-%m-%d %H:%M} UTC"
    oncall = result.oncall()
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="meta">{len(result.rules)} rules, clock {html.escape(str(result.clock))}, data {span}</p>
{_cards(result)}
{"".join(f"<h2>{html.escape(h)}</h2>{body}" for h, body in sections or [])}
<h2>Rules</h2>{rules_html(result.rules)}
<h2>Statistics</h2>{stats_html(result.stats)}
<h2>On-call load</h2>{table_html(oncall, 200)}
<h2>Timelines</h2>{figs or '<p>No pictures.</p>'}
<h2>Alerts</h2>{_first_rows(result.alerts, ALERTS_FIRST, 200)}
<h2>Notifications</h2>{_first_rows(result.notifications, NOTIFICATIONS_FIRST, 200)}
</body></html>
"""
    path.write_text(doc, encoding="utf-8")


def _first_rows(frame: pd.DataFrame, first: list[str], rows: int) -> str:
    """The table's first ``rows`` rows in reader order, and how many more there are (the columns are
    reordered on those rows only, not on a copy of the whole table)."""
    more = f"<p><small>{len(frame) - rows} more rows</small></p>" if len(frame) > rows else ""
    return table_html(reader_order(frame.head(rows), first), rows) + more


def _default_figures(result: BacktestResult) -> list[tuple[str, bytes]]:
    from .plot import report_figures

    return report_figures(result)

"""History as Prometheus users export it (SPEC 11), read into the long frame.

* a saved HTTP API ``query_range`` response (JSON, ``resultType: matrix``);
* ``promtool tsdb dump`` output: ``{__name__="up", job="x"} 1 1700000000000``;
* text / OpenMetrics exposition with timestamps: ``up{job="x"} 1 1700000000000``
  (``# HELP`` / ``# TYPE`` / ``# EOF`` lines are skipped).

Every problem names the file and line (or series) and says how to fix it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["is_prometheus_file", "read_prometheus"]

_LINE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(?P<labels>\{(?:[^}"]|"(?:[^"\\]|\\.)*")*\})?\s+'
    r"(?P<value>\S+)(?:\s+(?P<ts>\S+))?\s*$")
_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def is_prometheus_file(path: Path) -> bool:
    """A query_range JSON, a tsdb dump or an exposition file (told apart from CSV by content)."""
    if path.suffix.lower() in (".parquet", ".pq") or not path.is_file():
        return False
    with path.open("rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace").lstrip()
    if path.suffix.lower() == ".json" or head.startswith("{\""):
        return True
    first = next((ln.strip() for ln in head.splitlines() if ln.strip()), "")
    if first.startswith("# HELP") or first.startswith("# TYPE") or first.startswith("{__name__="):
        return True
    m = _LINE.match(first)
    return bool(m and (m["labels"] or m["ts"]) and "," not in first.split("}")[-1])


def _unescape(v: str) -> str:
    return v.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def _number(text: str) -> float:
    low = text.lower()
    if low in ("nan", "+inf", "inf", "-inf"):
        return float(low)
    return float(text)


def read_prometheus(path: Path) -> dict[str, Any]:
    """Columns (``timestamp`` ns, ``metric``, ``value``, labels, ``row``) of a Prometheus file."""
    if path.suffix.lower() == ".json" or path.read_bytes()[:64].lstrip().startswith(b"{\""):
        return _read_query_range(path)
    return _read_lines(path)


def _columns(series: list[tuple[dict[str, str], list[int], list[float], list[int]]], path: Path) -> dict[str, Any]:
    names = sorted({k for labels, *_ in series for k in labels if k != "__name__"})
    ts: list[int] = []
    vals: list[float] = []
    rows: list[int] = []
    metric: list[str] = []
    labels: dict[str, list[str]] = {k: [] for k in names}
    for lb, t, v, r in series:
        if "__name__" not in lb:
            raise DataError(f"{path}:{r[0] + 1 if r else 1}: series {lb} has no metric name (__name__); "
                            "export it with its name")
        ts += t
        vals += v
        rows += r
        metric += [lb["__name__"]] * len(t)
        for k in names:
            labels[k] += [lb.get(k, "")] * len(t)
    if not ts:
        raise DataError(f"{path}: no samples; expected Prometheus series with timestamps")
    return {"timestamp": np.asarray(ts, dtype=np.int64) * 1_000_000, "metric": metric,
            "value": np.asarray(vals, dtype=np.float64), "labels": labels, "row": np.asarray(rows, dtype=np.int64)}


def _read_lines(path: Path) -> dict[str, Any]:
    by_labels: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], list[int], list[float], list[int]]] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, raw in enumerate(fh):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            if m is None:
                raise DataError(f"{path}:{n + 1}: cannot read {line[:80]!r}; expected "
                                "'name{label=\"value\", ...} value timestamp_ms'")
            lb = {k: _unescape(v) for k, v in _PAIR.findall(m["labels"][1:-1])} if m["labels"] else {}
            if m["name"]:
                lb["__name__"] = m["name"]
            if m["ts"] is None:
                raise DataError(f"{path}:{n + 1}: sample has no timestamp; history needs timestamps "
                                "(exposition lines 'name{...} value timestamp_ms')")
            try:
                value = _number(m["value"])
            except ValueError:
                raise DataError(f"{path}:{n + 1}: value {m['value']!r} is not a number") from None
            try:
                # OpenMetrics writes seconds with a fraction; the text format and tsdb dump, milliseconds
                ts = int(round(float(m["ts"]) * 1000)) if "." in m["ts"] else int(m["ts"])
            except ValueError:
                raise DataError(f"{path}:{n + 1}: timestamp {m['ts']!r} is not a number of milliseconds") from None
            key = tuple(sorted(lb.items()))
            entry = by_labels.setdefault(key, (lb, [], [], []))
            entry[1].append(ts)
            entry[2].append(value)
            entry[3].append(n)
    return _columns(list(by_labels.values()), path)


def _read_query_range(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); expected a saved query_range "
                        "response") from None
    if isinstance(doc, dict) and doc.get("status") == "error":
        raise DataError(f"{path}: the saved response is an error: {doc.get('error', '?')}")
    data = doc.get("data", doc) if isinstance(doc, dict) else None
    if not isinstance(data, dict) or "result" not in data:
        raise DataError(f"{path}: expected a Prometheus query_range response with data.result")
    if data.get("resultType", "matrix") != "matrix":
        raise DataError(f"{path}: resultType is {data.get('resultType')!r}; save a range query "
                        "(/api/v1/query_range), whose resultType is 'matrix'")
    series = []
    for i, item in enumerate(data["result"]):
        if not isinstance(item, dict) or not isinstance(item.get("metric"), dict) \
                or not isinstance(item.get("values"), list):
            raise DataError(f"{path}: data.result[{i}]: expected "
                            '{"metric": {...}, "values": [[unix_seconds, "value"], ...]}')
        ts, vals = [], []
        for k, pair in enumerate(item["values"]):
            try:
                t, v = pair
                ts.append(int(round(float(t) * 1000)))
                vals.append(_number(str(v)))
            except (TypeError, ValueError):
                raise DataError(f"{path}: data.result[{i}].values[{k}]: {pair!r} is not [unix_seconds, "
                                "\"value\"]") from None
        series.append(({str(k): str(v) for k, v in item["metric"].items()}, ts, vals, [i] * len(ts)))
    return _columns(series, path)

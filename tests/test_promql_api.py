"""pal.promql, the Prometheus history formats and ``perfalert promql`` (SPEC 11)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import perfalert_lab as pal
from perfalert_lab.cli import main

T0 = 1_700_000_000  # seconds


def _frame() -> pd.DataFrame:
    ts = pd.to_datetime([T0 + 60 * i for i in range(11)], unit="s", utc=True)
    rows = []
    for code, slope in (("200", 60.0), ("500", 6.0)):
        rows.append(pd.DataFrame({"timestamp": ts, "metric": "http_requests_total", "job": "api", "code": code,
                                  "value": slope * np.arange(11)}))
    return pd.concat(rows, ignore_index=True)


def test_promql_returns_the_long_frame_of_the_contract():
    out = pal.promql(_frame(), 'sum by (code) (rate(http_requests_total[5m]))',
                     start=pd.Timestamp(T0 + 600, unit="s"), end=pd.Timestamp(T0 + 600, unit="s"))
    assert list(out.columns) == ["timestamp", "value", "labels", "code"]
    assert dict(zip(out["labels"].astype(str), out["value"], strict=True)) == pytest.approx(
        {'{code="200"}': 1.0, '{code="500"}': 0.1})
    # the metric name is kept where PromQL keeps it, as the column ``metric``
    raw = pal.promql(_frame(), 'http_requests_total{code="500"}', start=pd.Timestamp(T0, unit="s"),
                     end=pd.Timestamp(T0 + 120, unit="s"))
    assert set(raw["metric"]) == {"http_requests_total"} and list(raw["value"]) == [0.0, 6.0, 12.0]
    assert raw["labels"].iloc[0] == '{__name__="http_requests_total", code="500", job="api"}'


def test_promql_steps_default_to_the_data_and_scalars_are_one_series():
    out = pal.promql(_frame(), "time()", step="5m")
    assert list(out["value"]) == [T0 + 100.0, T0 + 400.0]  # T0 rounded up to 5m, then every 5m to the end
    assert set(out["labels"]) == {"{}"}


def test_unsupported_constructs_name_themselves_and_their_position():
    with pytest.raises(pal.UnsupportedPromQL, match=r"the @ modifier at position 21"):
        pal.promql(_frame(), "http_requests_total @ 100")
    with pytest.raises(pal.UnsupportedPromQL, match=r"the function sort\(\) at position 1"):
        pal.promql(_frame(), "sort(http_requests_total)")
    with pytest.raises(pal.PromQLError, match="cannot parse PromQL"):
        pal.promql(_frame(), "sum((")
    with pytest.raises(pal.PromQLError, match="many-to-many matching not allowed"):
        pal.promql(_frame(), "http_requests_total / on(job) http_requests_total")


def test_promql_is_the_function_even_after_the_readers_loaded(tmp_path):
    path = tmp_path / "x.prom"
    path.write_text(f'up{{job="a"}} 1 {T0 * 1000}\n')
    pal.read_metrics(path)
    assert callable(pal.promql)


def test_history_as_prometheus_users_export_it(tmp_path):
    dump = tmp_path / "dump.txt"
    dump.write_text("".join(f'{{__name__="up", instance="{i}", job="node"}} {v} {(T0 + 60 * k) * 1000}\n'
                            for k in range(3) for i, v in (("a:9100", 1), ("b:9100", k % 2))))
    expo = tmp_path / "metrics.prom"
    expo.write_text("# HELP up Up.\n# TYPE up gauge\n" + "".join(
        f'up{{instance="{i}",job="node"}} {v} {(T0 + 60 * k) * 1000}\n'
        for k in range(3) for i, v in (("a:9100", 1), ("b:9100", k % 2))))
    qr = tmp_path / "range.json"
    qr.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "up", "instance": i, "job": "node"},
         "values": [[T0 + 60 * k, str(v if i == "a:9100" else k % 2)] for k in range(3)]}
        for i, v in (("a:9100", 1), ("b:9100", 0))]}}))
    frames = [pal.read_metrics(p) for p in (dump, expo, qr)]
    for f in frames:
        assert len(f) == 6 and set(f["instance"]) == {"a:9100", "b:9100"} and set(f["metric"]) == {"up"}
        out = pal.promql(f, "sum by (job) (up)", start=pd.Timestamp(T0 + 120, unit="s"),
                         end=pd.Timestamp(T0 + 120, unit="s"))
        assert list(out["value"]) == [1.0 + 0.0]  # a is 1, b is 2 % 2 == 0 at the third minute


@pytest.mark.parametrize(("text", "message"), [
    ('up{job="a"} 1\n', r"x\.prom:1: sample has no timestamp"),
    (f'up{{job="a"}} 1 {T0}000\nup{{job="a"}} one {T0}060\n', r"x\.prom:2: value 'one' is not a number"),
    (f'{{job="a"}} 1 {T0}000\n', r"x\.prom:1: series .* has no metric name"),
])
def test_bad_prometheus_files_name_file_and_line(tmp_path, capsys, text, message):
    path = tmp_path / "x.prom"
    path.write_text(text)
    assert main(["promql", str(path), "-e", "up"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert pytest.importorskip("re").search(message, err), err


def test_bad_query_range_json_says_what_to_save(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}))
    assert main(["promql", str(path), "-e", "up"]) == 2
    assert "save a range query (/api/v1/query_range)" in capsys.readouterr().err


def test_cli_promql_writes_the_frame(tmp_path, capsys):
    src = tmp_path / "m.csv"
    _frame().to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert main(["promql", str(src), "-e", "sum by (code) (increase(http_requests_total[5m]))",
                 "--start", pd.Timestamp(T0 + 600, unit="s").isoformat(), "-o", str(out)]) == 0
    got = pd.read_csv(out)
    assert sorted(got["value"].round(9)) == [30.0, 300.0]
    assert not list(tmp_path.glob("*.tmp*"))


def test_dask_frames_give_what_pandas_gives():
    dd = pytest.importorskip("dask.dataframe")
    import dask

    frame = _frame()
    expr = "sum by (code) (rate(http_requests_total[3m]))"
    with dask.config.set(scheduler="synchronous"):
        got = pal.promql(dd.from_pandas(frame, npartitions=3), expr)
    pd.testing.assert_frame_equal(got, pal.promql(frame, expr))


@pytest.mark.parametrize("seed", [1, 2])
def test_dask_equals_pandas_on_random_expressions(seed):
    """Per-series parts run in the partitions, sum/count/min/max/avg/group reduce there too."""
    import random

    dd = pytest.importorskip("dask.dataframe")
    import dask
    from promql_oracle import close, random_case

    from perfalert_lab.promql_engine import parse, scaleout

    rng = random.Random(seed)
    reduced = 0
    for _ in range(40):
        case = random_case(rng)
        frame = case.frame()
        kwargs = {"start": pd.Timestamp(0, tz="UTC"), "end": pd.Timestamp(45 * 60, unit="s", tz="UTC"),
                  "step": "90s", "prometheus_compat": "2"}
        try:
            want = pal.promql(frame, case.expr, **kwargs)
        except pal.PromQLError as exc:
            refused = pytest.raises(pal.PromQLError, match=re.escape(str(exc)[:30]))
            with dask.config.set(scheduler="synchronous"), refused:
                pal.promql(dd.from_pandas(frame, npartitions=4), case.expr, **kwargs)
            continue
        with dask.config.set(scheduler="synchronous"):
            got = pal.promql(dd.from_pandas(frame, npartitions=4), case.expr, **kwargs)
        assert list(got.columns) == list(want.columns), case.expr
        assert got[["timestamp", "labels"]].astype(str).equals(want[["timestamp", "labels"]].astype(str)), case.expr
        assert all(close(a, b) for a, b in zip(got["value"], want["value"], strict=True)), case.expr
        local: list = []
        partial: list = []
        scaleout._plan(parse(case.expr), local, partial)
        reduced += bool(partial)
    assert reduced >= 3  # partial aggregates were exercised, not only the gather-and-evaluate path


def test_cli_promql_writes_parquet_and_plain_timestamps(tmp_path, capsys):
    src = tmp_path / "m.parquet"
    _frame().to_parquet(src)
    assert main(["promql", str(src), "-e", "http_requests_total > 50", "-o", str(tmp_path / "o.parquet")]) == 0
    assert main(["promql", str(src), "-e", "http_requests_total > 50", "-o", str(tmp_path / "o.csv")]) == 0
    want = pal.promql(_frame(), "http_requests_total > 50")
    got = pd.read_parquet(tmp_path / "o.parquet")
    assert list(got["value"]) == list(want["value"]) and list(got["labels"].astype(str)) == list(
        want["labels"].astype(str))
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert lines[0] == '"timestamp","value","labels","metric","code","job"'
    assert lines[1].startswith(pd.Timestamp(want["timestamp"].iloc[0]).strftime("%Y-%m-%d %H:%M:%SZ"))
    # a file without a source column gives series without a source label
    assert "source" not in got.columns and 'source="' not in lines[1]


def test_quantiles_sort_nan_first_as_promtool_does():
    """Facts from promtool 2.42: sqrt(-4), sqrt(1), sqrt(9) -> quantile 0 is NaN, 0.5 is 1."""
    from perfalert_lab.promql_engine import evaluate, store_from_frame

    f = pd.DataFrame({"timestamp": pd.to_datetime([0, 0, 0, 0, 60, 120], unit="s", utc=True),
                      "metric": ["g", "g", "g", "h", "h", "h"], "a": ["1", "2", "3", "", "", ""],
                      "value": [-4, 1, 9, -4, 1, 9.0]})
    store = store_from_frame(f)

    def one(expr: str, t_ms: int) -> float:
        return float(evaluate(store, expr, np.array([t_ms]), prometheus_compat="2").values[0, 0])

    assert np.isnan(one("quantile(0, sqrt(g))", 0))
    assert one("quantile(0.5, sqrt(g))", 0) == 1.0
    assert one("quantile_over_time(0.5, sqrt(h)[3m:1m])", 120_000) == 1.0
    assert np.isnan(one("quantile_over_time(0, sqrt(h)[3m:1m])", 120_000))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_frame_in_series_order_stores_as_a_shuffled_one(seed, monkeypatch):
    """A frame of over 65,536 rows one series after another is stored from its label columns' runs (no
    hashing of rows); the store equals the one built by hashing every row: series with extra and empty
    labels, one series in two stretches, a repeated millisecond (the last sample wins), NaN samples."""
    from perfalert_lab.promql_engine import store as st

    rng = np.random.default_rng(seed)
    parts = []
    for i in range(40):
        n = int(rng.integers(1000, 3000))
        t = np.sort(rng.choice(10**7, n, replace=False)) * 1000
        parts.append(pd.DataFrame({"timestamp": t, "metric": f"m{i % 3}", "source": f"h{i % 7}",
                                   "zone": ["", "a", "b,c"][i % 3], "value": rng.normal(size=n)}))
    parts.append(parts[5].assign(timestamp=parts[5]["timestamp"] + 10**10))  # series 5 again, later
    frame = pd.concat(parts, ignore_index=True)
    frame.loc[rng.random(len(frame)) < 0.01, "value"] = np.nan
    frame.loc[100, "timestamp"] = frame.loc[99, "timestamp"] + 400  # two samples in one millisecond
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="us", utc=True)
    for col in ("metric", "source", "zone"):
        frame[col] = pd.array(frame[col], dtype="str")
    assert len(frame) > 65_536 and st._grouped(frame, ["metric", "source", "zone"], len(frame)) is not None
    fast = st.store_from_frame(frame)
    monkeypatch.setattr(st, "value_runs", lambda col: None)
    slow = st.store_from_frame(frame)
    assert fast.labels == slow.labels
    for a, b in ((fast.offsets, slow.offsets), (fast.ts, slow.ts), (fast.vals, slow.vals)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", range(6))
def test_the_store_keeps_the_last_sample_of_each_millisecond_within_each_series(seed: int) -> None:
    """Times go to milliseconds; two samples of one series in one millisecond keep the last, while a series'
    first sample in the millisecond its neighbour ended in is its own (checked series by series)."""
    from perfalert_lab.frames import SeriesSet
    from perfalert_lab.promql_engine.store import store_from_series

    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, int(rng.integers(1, 6)))  # some series empty
    times, values = [], []
    for c in counts:
        t = np.sort(rng.choice(np.arange(10) * 400_000 + 1_700_000_000_000_000_000, int(c), replace=False))
        times.append(t)
        values.append(rng.normal(size=int(c)))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    keys = pd.DataFrame({"source": [f"s{i}" for i in range(len(counts))], "metric": "m"})
    allt = np.concatenate(times).astype(np.int64)
    series = SeriesSet(times=allt, values=np.concatenate(values), offsets=offsets, keys=keys,
                       start_ns=int(allt.min()) if len(allt) else 0, end_ns=int(allt.max()) if len(allt) else 0)
    store = store_from_series(series)
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        ms = t // 1_000_000
        last = np.r_[ms[1:] != ms[:-1], True] if len(ms) else np.zeros(0, dtype=bool)
        lo, hi = store.offsets[i], store.offsets[i + 1]
        np.testing.assert_array_equal(store.ts[lo:hi], ms[last])
        np.testing.assert_array_equal(store.vals[lo:hi], v[last])


@pytest.mark.parametrize("jit", ["always", "never"])
@pytest.mark.parametrize("seed", range(4))
def test_a_time_ordered_frame_stores_as_the_same_frame_in_series_order(jit: str, seed: int) -> None:
    """A frame in time order (as ``read_metrics`` returns it) is grouped by series with one counting sort
    when each series' times strictly increase, else sorted; a shuffled frame is sorted. With series that
    start late or skip a time, two samples of a series in one millisecond (the last wins) and NaN samples,
    every series holds what it holds when the frame comes one series after another."""
    from perfalert_lab import _jit
    from perfalert_lab.promql_engine import store as st

    rng = np.random.default_rng(seed)
    parts = []
    for i in range(int(rng.integers(2, 40))):
        n = int(rng.integers(1, 3000))
        t = np.sort(rng.choice(10**5, n, replace=False)) * 60_000 + int(rng.integers(0, 1000))
        parts.append(pd.DataFrame({"timestamp": t, "metric": f"m{i % 3}", "source": f"h{i % 7}",
                                   "zone": ["", "a", "b,c"][i % 3], "value": rng.normal(size=n)}))
    by_series = pd.concat(parts, ignore_index=True)
    by_series.loc[rng.random(len(by_series)) < 0.01, "value"] = np.nan
    by_series["timestamp"] = pd.to_datetime(by_series["timestamp"], unit="ms", utc=True)
    one_ms = by_series.copy()
    one_ms.loc[1, "timestamp"] = one_ms.loc[0, "timestamp"] + pd.Timedelta(400, "us")  # series 0: a repeat
    previous = _jit.set_mode(jit)
    try:
        for frame in (by_series, one_ms):
            want = st.store_from_frame(frame)
            others = [frame.sort_values("timestamp", kind="stable", ignore_index=True)]
            if frame is by_series:  # (shuffled, two samples in one millisecond would come in either order)
                others.append(frame.sample(frac=1, random_state=seed, ignore_index=True))
            for other in map(st.store_from_frame, others):
                assert sorted(other.labels) == sorted(want.labels)
                place = {lb: k for k, lb in enumerate(other.labels)}
                for k, lb in enumerate(want.labels):
                    j = place[lb]
                    a, b = slice(want.offsets[k], want.offsets[k + 1]), slice(other.offsets[j], other.offsets[j + 1])
                    np.testing.assert_array_equal(other.ts[b], want.ts[a])
                    np.testing.assert_array_equal(other.vals[b], want.vals[a])
    finally:
        _jit.set_mode(previous)

"""The prepare stage gives the same series whatever the frame's layout and string encoding (its
fast paths: grouped rows factorised one run at a time, categoricals reused, no copy when sorted)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfalert_lab.engine.pipeline import prepare


def fleet(rows: int, series: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per = rows // series
    t0 = pd.Timestamp("2026-01-01", tz="UTC").value
    return pd.DataFrame({
        "timestamp": pd.to_datetime(np.tile(t0 + np.arange(per) * 60 * 10**9, series), utc=True),
        "source": pd.array(np.repeat([f"h{i:03d}" for i in rng.permutation(series)], per), dtype="str"),
        "metric": pd.array(np.where(np.arange(per * series) % 3 == 0, "cpu", "mem"), dtype="str"),
        "value": rng.normal(50, 10, per * series),
    })


def grouped(frame: pd.DataFrame):
    """The fast path's answer for ``frame`` (offsets, or None when it declines)."""
    from perfalert_lab._time import col_ns
    from perfalert_lab.frames import _grouped_series, value_runs

    return _grouped_series(col_ns(frame["timestamp"]), [value_runs(frame["source"]), value_runs(frame["metric"])])


def same(a, b) -> None:
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    pd.testing.assert_frame_equal(a.keys.astype(str), b.keys.astype(str))


@pytest.mark.parametrize("layout", ["grouped", "time-sorted", "shuffled"])
@pytest.mark.parametrize("encoding", ["str", "category", "object"])
def test_every_layout_and_encoding_gives_the_same_series(layout: str, encoding: str) -> None:
    frame = fleet(420_000, 7)
    frame = frame[frame["metric"] == "cpu"].reset_index(drop=True)  # grouped runs of one metric
    expected = prepare(frame.sample(frac=1, random_state=1))  # the general path: a sort
    if layout == "grouped":
        frame = frame.sort_values(["source", "timestamp"], kind="stable")
    elif layout == "time-sorted":
        frame = frame.sort_values("timestamp", kind="stable")
    else:
        frame = frame.sample(frac=1, random_state=2)
    for col in ("source", "metric"):
        frame[col] = frame[col].astype({"str": "str", "category": "category", "object": object}[encoding])
    frame = frame.reset_index(drop=True)
    if layout == "grouped" and encoding == "str":  # the run-length path is the one taken
        from perfalert_lab.frames import value_runs

        assert value_runs(frame["source"]) is not None and len(value_runs(frame["source"])[0]) == 7
        assert grouped(frame) is not None
    got = prepare(frame)
    same(got, expected)


def test_two_metrics_grouped_and_a_copy_of_the_values() -> None:
    frame = fleet(200_000, 4).sort_values(["source", "metric", "timestamp"], kind="stable").reset_index(drop=True)

    assert grouped(frame) is not None  # two metrics per source, grouped
    got = prepare(frame)
    same(got, prepare(frame.sample(frac=1, random_state=3)))
    assert got.n_series == 8
    got.values[:] = -1  # the series own their arrays: the user's frame is untouched
    assert (frame["value"] > -1).any()
    got.times[:] = 0
    assert frame["timestamp"].iloc[0].year == 2026


def test_the_fast_path_declines_what_it_cannot_read() -> None:

    frame = fleet(300_000, 3)
    frame = frame[frame["metric"] == "cpu"].sort_values(["source", "timestamp"], kind="stable")
    frame = frame.reset_index(drop=True)
    half = len(frame) // 2
    back = pd.concat([frame.iloc[half:], frame.iloc[:half]], ignore_index=True)  # a series comes back
    late = frame.copy()
    late.loc[5, "timestamp"] = late.loc[2, "timestamp"] + pd.Timedelta("1s")  # a sample out of time order
    for odd in (back, late):
        odd = odd.sort_values("source", kind="stable").reset_index(drop=True) if odd is back else odd
        assert grouped(odd) is None or odd is back
        same(prepare(odd), prepare(odd.sample(frac=1, random_state=4)))
    assert grouped(late) is None
    unsorted_series = pd.concat([frame[frame["source"] == s] for s in sorted(frame["source"].unique())[::-1]],
                                ignore_index=True)
    assert grouped(unsorted_series) is None
    same(prepare(unsorted_series), prepare(frame))


def _time_ordered(series: int, steps: int, seed: int, encoding: str) -> pd.DataFrame:
    """Rows in time order, every timestamp listing the same series in one (unsorted) order, as a
    time-ordered export comes; a label column, empty for some series."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2026-01-01", tz="UTC").value
    hosts = np.array([f"h{i:02d}" for i in rng.permutation(series)], dtype=object)
    metric = np.array(["cpu", "mem", "net"], dtype=object)[rng.integers(0, 3, series)]
    zone = np.array(["", "eu", "us-é"], dtype=object)[rng.integers(0, 3, series)]
    frame = pd.DataFrame({
        "timestamp": pd.to_datetime(np.repeat(t0 + np.arange(steps) * 60 * 10**9, series), utc=True),
        "source": np.tile(hosts, steps), "metric": np.tile(metric, steps),
        "value": rng.normal(50, 10, steps * series), "zone": np.tile(zone, steps),
    })
    kinds = {"str": "str", "category": "category", "object": object}
    for col in ("source", "metric", "zone"):
        frame[col] = frame[col].astype(kinds[encoding])
    return frame


@pytest.mark.parametrize("encoding", ["str", "category", "object"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_time_ordered_frame_is_read_as_blocks_of_one_time(encoding: str, seed: int) -> None:
    """A frame in time order whose timestamps each list the same series alike is read as a (time x series)
    matrix: no factorising or sorting of every row. It gives what the general path (a sort) gives, and a
    frame that breaks the pattern anywhere is left to the general path."""
    from perfalert_lab._time import col_ns
    from perfalert_lab.frames import _time_blocks

    rng = np.random.default_rng(seed)
    series = int(rng.integers(2, 40))
    frame = _time_ordered(series, int(rng.integers(3, 300)), seed, encoding)
    ids = ["source", "metric", "zone"]
    if len(frame.drop_duplicates(ids[:2] + ["timestamp"])) < len(frame):
        frame["zone"] = frame["zone"].astype(object).where(frame.index % series != 0, "only")  # distinct series
        frame["zone"] = frame["zone"].astype({"str": "str", "category": "category", "object": object}[encoding])

    def blocks(f: pd.DataFrame):
        return _time_blocks(col_ns(f["timestamp"]), f, ids)

    assert blocks(frame) is not None and blocks(frame)[0] == series
    same(prepare(frame), prepare(frame.sample(frac=1, random_state=seed)))
    odd = {
        "a row missing": frame.drop(index=len(frame) // 2).reset_index(drop=True),
        "two series swapped at one time": frame.iloc[np.r_[1, 0, 2:len(frame)]].reset_index(drop=True),
        "a time twice": pd.concat([frame.iloc[:series], frame], ignore_index=True),
        "a label changed once": frame.assign(zone=frame["zone"].astype(object).where(frame.index != len(frame) - 1,
                                                                                     "moved")),
        "a label missing once": frame.assign(zone=frame["zone"].astype(object).where(frame.index != series + 1,
                                                                                     None)),
    }
    for name, f in odd.items():
        assert blocks(f) is None, name
        want = prepare(f.sort_values(ids + ["timestamp"], kind="stable", na_position="first").reset_index(drop=True))
        same(prepare(f), want)


@pytest.mark.parametrize("jit", ["always", "never"])
@pytest.mark.parametrize("seed", range(6))
def test_a_time_ordered_frame_without_the_pattern_is_counted_into_its_series(jit: str, seed: int) -> None:
    """Rows in time order where series start late, end early or skip a time (no (time x series) pattern) are
    grouped by one counting sort; a series whose time goes back or repeats is left to the sorting path. Both
    give what preparing the frame sorted by series gives, compiled and as plain Python."""
    from perfalert_lab import _jit
    from perfalert_lab._time import col_ns
    from perfalert_lab.frames import _factorize, by_series, combine_codes

    rng = np.random.default_rng(seed)
    series, steps = int(rng.integers(2, 30)), int(rng.integers(5, 400))
    t0 = pd.Timestamp("2026-01-01", tz="UTC").value
    parts = []
    for s in range(series):
        keep = rng.random(steps) > rng.choice([0.0, 0.05, 0.5])  # gaps
        keep[: rng.integers(0, steps // 2)] = rng.random() < 0.5  # some start late
        t = t0 + np.flatnonzero(keep) * 60 * 10**9 + int(rng.integers(0, 1000)) * 10**6
        parts.append(pd.DataFrame({"timestamp": pd.to_datetime(t, utc=True), "source": f"h{s % 7}",
                                   "metric": ["cpu", "mem"][s % 2], "zone": ["", "eu", "us"][s % 3],
                                   "value": rng.normal(50, 10, len(t))}))
    frame = pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame = frame.astype({"source": "str", "metric": "str", "zone": "str"})
    ids = ["source", "metric", "zone"]
    odd = {
        "time-ordered": frame,
        "a time twice": pd.concat([frame, frame.iloc[[len(frame) // 2]]]).sort_values("timestamp", kind="stable"),
        "a row early": frame.iloc[np.r_[len(frame) - 1, 0:len(frame) - 1]],
    }
    previous = _jit.set_mode(jit)
    try:
        for name, f in odd.items():
            f = f.reset_index(drop=True)
            codes, n = combine_codes([_factorize(f[c]) for c in ids])
            counted = by_series(codes, col_ns(f["timestamp"]), f["value"].to_numpy(), n)
            # (as plain Python the counting sort is not used: a numpy sort is quicker there)
            assert (counted is not None) == (name == "time-ordered" and jit == "always"), name
            want = prepare(f.sort_values(ids + ["timestamp"], kind="stable").reset_index(drop=True))
            same(prepare(f), want)
    finally:
        _jit.set_mode(previous)

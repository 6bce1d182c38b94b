"""Loading metrics and incidents (SPEC section 1), including the NAB quirks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import NAB, SHARED_NAB
from series import at, series_frame

import perfalert_lab as pal
from perfalert_lab.errors import DataError
from perfalert_lab.frames import SeriesSet

T = pd.Timestamp("2026-01-01T00:00:00Z")


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def nab_dirs() -> list[Path]:
    return [d for d in (NAB, SHARED_NAB) if d.is_dir()]


@pytest.mark.parametrize("root", nab_dirs(), ids=lambda p: p.parent.parent.name)
def test_every_nab_file_loads(root: Path) -> None:
    files = sorted(root.glob("real*/*.csv"))
    assert len(files) == 9
    for f in files:
        frame = pal.read_metrics(f)
        assert frame["timestamp"].is_monotonic_increasing
        assert not frame.duplicated(["timestamp", "source", "metric"]).any()
        assert set(frame["source"]) == {f.stem} and set(frame["metric"]) == {f.stem}


def test_nab_clock_change_duplicates_keep_the_last_row() -> None:
    f = NAB / "realKnownCause" / "ec2_request_latency_system_failure.csv"
    raw = pd.read_csv(f)
    same = raw[raw["timestamp"] == "2014-03-09 03:00:00"]
    assert len(same) == 12  # 11 rows at 03:00:00 after the gap, plus the regular one
    frame = pal.read_metrics(f)
    assert frame.attrs["perfalert"]["duplicates_dropped"] == 11
    kept = frame[frame["timestamp"] == pd.Timestamp("2014-03-09 03:00:00", tz="UTC")]
    assert kept["value"].tolist() == [same["value"].iloc[-1]]
    first = pal.read_metrics(f, duplicates="first")
    assert first[first["timestamp"] == kept["timestamp"].iloc[0]]["value"].tolist() == [same["value"].iloc[0]]
    mean = pal.read_metrics(f, duplicates="mean")
    assert mean[mean["timestamp"] == kept["timestamp"].iloc[0]]["value"].iloc[0] == pytest.approx(same["value"].mean())
    with pytest.raises(
        pal.DataError, match=r"ec2_request_latency_system_failure.csv:\d+: duplicate timestamp 2014-03-09"
    ):
        pal.read_metrics(f, duplicates="error")


def test_nab_timestamp_going_backwards_is_sorted_and_counted() -> None:
    f = NAB / "realKnownCause" / "machine_temperature_system_failure.csv"
    raw = pd.read_csv(f)
    frame = pal.read_metrics(f)
    info = frame.attrs["perfalert"]
    assert info["out_of_order"] == 11  # the hour re-sent after the jump back, but for its last row
    assert info["duplicates_dropped"] == 12  # 02:00 .. 02:55 appear twice; the later rows win
    assert len(frame) == len(raw) - 12
    back = pd.to_datetime(raw["timestamp"]).diff() < pd.Timedelta(0)
    i = int(np.flatnonzero(back.to_numpy())[0])
    t = pd.Timestamp(raw["timestamp"].iloc[i], tz="UTC")
    assert frame.loc[frame["timestamp"] == t, "value"].tolist() == [raw["value"].iloc[i]]


@pytest.mark.parametrize("stamp", [
    "2026-01-01T00:01:00Z", "2026-01-01T01:01:00+01:00", "2026-01-01 00:01:00", "2026-01-01T00:01:00",
    "1767225660", "1767225660000", "1767225660.0",
])
def test_timestamp_formats(tmp_path: Path, stamp: str) -> None:
    p = write(tmp_path, "cpu.csv", f"timestamp,value\n{stamp},1\n")
    assert pal.read_metrics(p)["timestamp"].tolist() == [T + pd.Timedelta(minutes=1)]


def test_mixed_zone_forms_in_one_file(tmp_path: Path) -> None:
    p = write(tmp_path, "cpu.csv", "timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01T02:00:00+02:00,2\n")
    frame = pal.read_metrics(p)  # both rows are the same instant: the last is kept
    assert frame["timestamp"].tolist() == [T]
    assert frame["value"].tolist() == [2.0]


def test_timezone_applies_to_naive_timestamps(tmp_path: Path) -> None:
    p = write(tmp_path, "cpu.csv", "timestamp,value\n2026-01-01 01:00:00,1\n")
    assert pal.read_metrics(p, timezone="Europe/Berlin")["timestamp"].tolist() == [T]


def test_empty_and_nan_values_are_dropped_and_counted(tmp_path: Path) -> None:
    p = write(tmp_path, "cpu.csv", "timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:01:00,\n"
                                   "2026-01-01 00:02:00,NaN\n2026-01-01 00:03:00,4\n")
    frame = pal.read_metrics(p)
    assert frame["value"].tolist() == [1.0, 4.0]
    assert frame.attrs["perfalert"]["missing_dropped"] == 2


def test_long_format_with_labels(tmp_path: Path) -> None:
    p = write(tmp_path, "m.csv", "timestamp,source,metric,value,env\n"
                                 "2026-01-01 00:01:00,web-1,cpu,5,prod\n2026-01-01 00:00:00,web-2,cpu,6,dev\n")
    frame = pal.read_metrics(p)
    assert list(frame.columns) == ["timestamp", "source", "metric", "value", "env"]
    assert frame["source"].tolist() == ["web-2", "web-1"]  # sorted by time
    assert frame["env"].tolist() == ["dev", "prod"]


def test_wide_format_becomes_long(tmp_path: Path) -> None:
    p = write(tmp_path, "host.csv", "timestamp,cpu,mem\n2026-01-01 00:00:00,1,2\n2026-01-01 00:01:00,3,\n")
    frame = pal.read_metrics(p)
    assert sorted(zip(frame["metric"], frame["value"], strict=True)) == [("cpu", 1.0), ("cpu", 3.0), ("mem", 2.0)]
    assert set(frame["source"]) == {"host"}


def test_semicolon_delimiter_is_detected(tmp_path: Path) -> None:
    p = write(tmp_path, "cpu.csv", "timestamp;value\n2026-01-01 00:00:00;1\n")
    assert pal.read_metrics(p)["value"].tolist() == [1.0]


def test_parquet_equals_csv(tmp_path: Path) -> None:
    csv = write(tmp_path, "cpu.csv", "timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:01:00,2\n")
    frame = pal.read_metrics(csv)
    pq = tmp_path / "cpu.parquet"
    frame.to_parquet(pq)
    pd.testing.assert_frame_equal(pal.read_metrics(pq), frame, check_like=True)


def test_source_and_metric_options(tmp_path: Path) -> None:
    p = write(tmp_path, "x.csv", "timestamp,value\n2026-01-01 00:00:00,1\n")
    frame = pal.read_metrics(p, source="web-1", metric="cpu")
    assert (frame["source"].iloc[0], frame["metric"].iloc[0]) == ("web-1", "cpu")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:01:00,abc\n",
            r"bad.csv:3: column 'value': 'abc' is not a number",
        ),
        (
            "timestamp,value\n2026-01-01 00:00:00,1\nyesterday,2\n",
            r"bad.csv:3: column 'timestamp': cannot parse 'yesterday'",
        ),
        ("timestamp,value\n", r"bad.csv: no data rows"),
        ("", r"bad.csv: empty file"),
        ("time,value\n1,2\n", r"bad.csv: no 'timestamp' column"),
        ("timestamp,value\n2026-01-01 00:00:00,1,3\n", r"bad.csv: a row has 3 fields"),
        ("timestamp,value\n1767225660,1\n2026-01-01 00:00:00,2\n", r"bad.csv:\d: column 'timestamp': .* mixes epoch"),
        ("timestamp,value\n,1\n", r"bad.csv:2: column 'timestamp': empty timestamp"),
        ("timestamp,value\n2026-01-01 00:00:00,\n", r"bad.csv: every value is empty"),
    ],
)
def test_bad_files_name_file_line_and_column(tmp_path: Path, text: str, match: str) -> None:
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(pal.DataError, match=match):
        pal.read_metrics(p)


def test_binary_and_wrong_encoding(tmp_path: Path) -> None:
    with pytest.raises(pal.DataError, match="binary data"):
        pal.read_metrics(write(tmp_path, "a.csv", b"\x00\x01\x02garbage"))
    with pytest.raises(pal.DataError, match="not UTF-8"):
        pal.read_metrics(write(tmp_path, "b.csv", "timestamp,value,host\n2026-01-01,1,caf\xe9\n".encode("latin-1")))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(pal.InputError, match="no such file") as e:
        pal.read_metrics(tmp_path / "nope.csv")
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(pal.InputError, match="is a directory"):
        pal.read_metrics(tmp_path)


def test_normalize_frame_accepts_naive_and_epoch_and_fills_source() -> None:
    frame = pd.DataFrame({"timestamp": [1767225600, 1767225660], "metric": "cpu", "value": [1, 2]})
    out = pal.normalize_frame(frame)
    assert out["timestamp"].tolist() == [T, T + pd.Timedelta(minutes=1)]
    assert out["source"].tolist() == ["cpu", "cpu"]
    with pytest.raises(pal.DataError, match="missing column"):
        pal.normalize_frame(frame.drop(columns="value"))


def test_series_set_groups_series_in_time_order() -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2026-01-01 00:02", "2026-01-01 00:01", "2026-01-01 00:00"], utc=True),
            "source": ["a", "b", "a"],
            "metric": "m",
            "value": [3.0, 2.0, 1.0],
        }
    )
    s = SeriesSet.from_frame(frame)
    assert s.offsets.tolist() == [0, 2, 3]
    assert s.values.tolist() == [1.0, 3.0, 2.0]
    assert s.keys["source"].tolist() == ["a", "b"]


def test_nab_incidents_use_points_from_labels_file() -> None:
    inc = pal.read_incidents(NAB / "labels" / "combined_windows.json")
    labels = json.loads((NAB / "labels" / "combined_labels.json").read_text())
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    assert len(inc) == sum(len(v) for v in windows.values())  # one incident per window
    points = {pd.Timestamp(p, tz="UTC") for v in labels.values() for p in v}
    assert set(inc["point"]) <= points and ((inc["start"] <= inc["point"]) & (inc["point"] <= inc["end"])).all()
    # NAB merged two overlapping windows of asg_misconfiguration: measured from the first point
    asg = inc[inc["source"] == "cpu_utilization_asg_misconfiguration"]
    assert asg["point"].tolist() == [pd.Timestamp("2014-07-12 02:04:00", tz="UTC")]
    row = inc[inc["source"] == "ec2_cpu_utilization_24ae8d"].iloc[0]
    assert row["point"] == pd.Timestamp("2014-02-26 22:05:00", tz="UTC")
    assert row["start"] <= row["point"] <= row["end"]


def test_incidents_csv(tmp_path: Path) -> None:
    p = write(tmp_path, "inc.csv", "start,end,source\n2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,web-1\n"
                                   "2026-01-02T00:00:00Z,2026-01-02T01:00:00Z,\n")
    inc = pal.read_incidents(p)
    assert inc["point"].tolist() == inc["start"].tolist()
    assert inc["source"].isna().tolist() == [False, True]
    bad = write(tmp_path, "bad.csv", "start,end\n2026-01-02,2026-01-01\n")
    with pytest.raises(pal.DataError, match="bad.csv:2: incident ends before it starts"):
        pal.read_incidents(bad)


def test_duplicates_policy_applies_to_a_frame_that_looks_normalised() -> None:
    """A frame already in the normalised dtypes used to skip duplicate handling: 'error' and 'mean'
    were silently ignored (the last row was kept)."""
    frame = pal.normalize_frame(series_frame("10 20 30"))
    doubled = pd.concat([frame, frame.iloc[[1]].assign(value=40.0)], ignore_index=True)
    rule = pal.Rule(id="r", metric="m", threshold=25)
    with pytest.raises(pal.DataError, match="duplicate"):
        pal.backtest(doubled, rule, duplicates="error")
    mean = pal.backtest(doubled, rule, duplicates="mean")  # minute 1 is (20 + 40) / 2 = 30 > 25
    assert mean.alerts["pending_since"].tolist() == [at(1)]
    last = pal.backtest(doubled, rule)  # the default keeps the last row: 40
    assert last.alerts["peak_value"].tolist() == [40.0]


def test_parquet_with_times_and_numbers_written_as_text(tmp_path) -> None:
    """Times and values stored as Parquet strings are parsed (the label columns alone are read as
    dictionaries); a value that is not a number is named with its row."""
    import perfalert_lab as pal
    from perfalert_lab.errors import DataError

    good = tmp_path / "text.parquet"
    pd.DataFrame({"timestamp": ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"], "source": ["a", "a"],
                  "metric": ["m", "m"], "value": ["1.5", " 2"]}).to_parquet(good)
    frame = pal.read_metrics(good)
    assert frame["value"].tolist() == [1.5, 2.0]
    assert frame["timestamp"].iloc[1] == pd.Timestamp("2026-01-01T00:01:00Z")
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"timestamp": ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"], "source": ["a", "a"],
                  "metric": ["m", "m"], "value": ["1.5", "x"]}).to_parquet(bad)
    with pytest.raises(DataError, match=r"row 2: column 'value': 'x' is not a number"):
        pal.read_metrics(bad)
    wide = tmp_path / "wide.parquet"
    pd.DataFrame({"timestamp": ["2026-01-01T00:00:00Z"], "source": ["a"], "cpu": ["1.5"],
                  "mem": ["3"]}).to_parquet(wide)
    assert sorted(pal.read_metrics(wide)["value"].tolist()) == [1.5, 3.0]


def _random_files(tmp_path: Path, seed: int) -> list[Path]:
    """Metric files as users bring them: long with labels (some missing), rows out of order, repeated
    timestamps, several files (one Parquet), a wide and a NAB file, series interleaved."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(3):
        n = int(rng.integers(50, 400))
        frame = pd.DataFrame({
            "timestamp": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 300, n), "min"),
            "source": rng.choice(["web-2", "web-1", "db", "é"], n),
            "metric": rng.choice(["cpu", "mem", "a,b"], n),
            "value": np.where(rng.random(n) < 0.05, np.nan, rng.normal(50, 20, n)),
        })
        if k != 1:
            frame["zone"] = rng.choice(["b", "a", ""], n)
        path = tmp_path / f"long{k}.{'parquet' if k == 2 else 'csv'}"
        frame.to_parquet(path) if k == 2 else frame.to_csv(path, index=False)
        out.append(path)
    wide = tmp_path / "wide.csv"
    pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=30, freq="1min"), "source": "w",
                  "cpu": rng.normal(size=30), "disk": rng.normal(size=30)}).to_csv(wide, index=False)
    nab = tmp_path / "nab_cpu.csv"
    pd.DataFrame({"timestamp": pd.date_range("2026-01-01", periods=30, freq="5min")[::-1],
                  "value": rng.normal(size=30)}).to_csv(nab, index=False)
    return [*out, wide, nab]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("duplicates", ["last", "first", "mean"])
def test_read_series_is_the_series_of_the_frame_read(tmp_path: Path, seed: int, duplicates: str) -> None:
    """``read_series`` (no string per row) equals ``SeriesSet.from_frame(read_metrics(...))``: the same
    series in the same order, times, values, keys and counts of what was dropped or moved."""
    files = _random_files(tmp_path, seed)
    for chosen in (files, files[:1], files[3:], [files[1], files[0]]):
        frame = pal.read_metrics(chosen, duplicates=duplicates, order="series")
        want = SeriesSet.from_frame(frame)
        got = pal.read_series(chosen, duplicates=duplicates)
        np.testing.assert_array_equal(got.offsets, want.offsets)
        np.testing.assert_array_equal(got.times, want.times)
        np.testing.assert_array_equal(got.values, want.values)
        pd.testing.assert_frame_equal(got.keys, want.keys)
        assert (got.start_ns, got.end_ns) == (want.start_ns, want.end_ns)
        assert got.info == frame.attrs["perfalert"]
    assert got.info["duplicates_dropped"] > 0 and got.info["missing_dropped"] > 0  # the cases reach both
    with pytest.raises(DataError, match=r"long0.csv:\d+: duplicate timestamp"):
        pal.read_series(files[0], duplicates="error")


def test_a_label_set_on_some_rows_only_is_two_series_not_a_duplicate(tmp_path: Path) -> None:
    """``zone="x"`` and no zone at one time are two series (before, a label column with one value was
    not looked at, and the second row was dropped as a duplicate); an empty label is no label."""
    path = tmp_path / "m.csv"
    path.write_text("timestamp,source,metric,value,zone\n2026-01-01 00:00:00,a,cpu,1,x\n"
                    "2026-01-01 00:00:00,a,cpu,2,\n2026-01-01 00:01:00,a,cpu,3,x\n")
    frame = pal.read_metrics(path)
    assert frame["value"].tolist() == [1.0, 2.0, 3.0] and frame.attrs["perfalert"]["duplicates_dropped"] == 0
    series = pal.read_series(path)
    assert series.keys["zone"].tolist() == ["", "x"] and series.offsets.tolist() == [0, 1, 3]
    pq = tmp_path / "m.parquet"  # Parquet keeps the empty label as "": the same series as a missing one
    pd.DataFrame({"timestamp": pd.to_datetime(["2026-01-01 00:02:00"], utc=True), "source": ["a"],
                  "metric": ["cpu"], "value": [4.0], "zone": [""]}).to_parquet(pq)
    assert pal.read_series([path, pq]).offsets.tolist() == [0, 2, 4]


def test_a_duplicate_names_the_file_and_line_of_both_rows(tmp_path: Path) -> None:
    """Where each row came from is not kept per row (a long file with every value needs no array for it);
    the message still names each row's own file and line, after empty values and across files."""
    a = tmp_path / "a.csv"
    a.write_text("timestamp,source,metric,value\n2026-01-01 00:00:00,w,cpu,1\n2026-01-01 00:01:00,w,cpu,2\n")
    b = tmp_path / "b.csv"
    b.write_text("timestamp,source,metric,value\n2026-01-01 00:02:00,w,cpu,\n2026-01-01 00:03:00,w,cpu,4\n"
                 "2026-01-01 00:04:00,w,cpu,\n2026-01-01 00:03:00,w,cpu,5\n")
    c = tmp_path / "c.csv"
    c.write_text("timestamp,source,metric,value\n2026-01-01 00:02:00,w,cpu,\n2026-01-01 00:03:00,w,cpu,4\n")
    wide = tmp_path / "wide.csv"
    wide.write_text("timestamp,source,cpu,mem\n2026-01-01 00:00:00,w,1,2\n2026-01-01 00:00:00,w,3,4\n")
    cases = [([a, b], rf"b.csv:5: duplicate timestamp .* \(also at {b}:3\)"),
             ([c, a, c], rf"c.csv:3: duplicate timestamp .* \(also at {c}:3\)"),
             ([a, a], rf"a.csv:2: duplicate timestamp .* \(also at {a}:2\)"),
             ([wide], rf"wide.csv:3: duplicate timestamp .* metric 'cpu' \(also at {wide}:2\)")]
    for paths, message in cases:
        for read in (pal.read_series, pal.read_metrics):
            with pytest.raises(DataError, match=message):
                read(paths, duplicates="error")

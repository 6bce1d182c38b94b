"""The CSV writer (Arrow, column by column) writes pandas' ``to_csv`` text byte for byte."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfalert_lab.report import csv_ready, write_table_csv

WORDS = np.array(["a", "b,c", 'q"r', "", "x\ny", "plain", 'r\rs', '{alertname="X", a="b"}', "é ü", " lead"],
                 dtype=object)


def _frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    floats = rng.choice([1.0, 0.1, 1e-05, 1e16, 123456.789, -0.0, np.inf, -np.inf, 2.5e-300, 7.0, 1 / 3], n)
    frame = pd.DataFrame({
        "s": pd.array(rng.choice(WORDS, n), dtype="str"),
        "o": rng.choice(WORDS, n),
        "few": pd.array(rng.choice(["page", "ticket,x"], n), dtype="str"),  # dictionary-quoted path
        "i": rng.integers(-5, 10**12, n),
        "f": np.where(rng.random(n) < 0.1, np.nan, floats * rng.choice([1, 3.3, -2], n)),
        "g": _any_floats(rng, n),
        "b": rng.random(n) < 0.5,
        "t": pd.to_datetime(rng.integers(int(1.7e18), int(1.8e18), n), utc=True).floor("s"),
        "tf": pd.to_datetime(rng.integers(int(1.7e18), int(1.8e18), n), utc=True),
        "c": pd.Categorical(rng.choice(["x", "y,z", 'w"'], n)),
    })
    frame.loc[rng.random(n) < 0.1, "t"] = pd.NaT
    frame.loc[rng.random(n) < 0.1, "o"] = None
    return frame


def _any_floats(rng: np.random.Generator, n: int) -> np.ndarray:
    """Floats of every magnitude, with 1 to 17 significant digits, whole numbers, zeros and the edges
    where numpy's text turns to exponent form (1e-4, 1e16)."""
    x = np.sign(rng.normal(size=n)) * 10 ** rng.uniform(-8, 20, n)
    digits = rng.integers(1, 18, n)
    x = np.array([float(f"{v:.{d - 1}e}") for v, d in zip(x.tolist(), digits.tolist(), strict=True)])
    pick = rng.random(n)
    x = np.where(pick < 0.1, np.round(x), x)
    edges = np.array([1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 0.0, -0.0, 5e-324, 1e308])
    return np.where(pick > 0.95, rng.choice(edges, n), x)


@pytest.mark.parametrize(("seed", "n"), [(0, 50), (1, 3000), (2, 20_000), (3, 1)])
def test_the_csv_text_is_pandas_text(tmp_path: Path, seed: int, n: int) -> None:
    frame = _frame(seed, n)
    for cols in (list(frame.columns), ["s", "i"], ["t", "b", "few"], ["o", "tf"], ["g", "f"]):
        path = tmp_path / "t.csv"
        write_table_csv(frame[cols], path)
        want = csv_ready(frame[cols]).to_csv(index=False, lineterminator="\n").encode()
        assert path.read_bytes() == want, cols


def test_columns_pandas_alone_renders_still_write_as_pandas(tmp_path: Path) -> None:
    frame = pd.DataFrame({"mixed": [1, "a", None], "n": pd.array([1, None, 3], dtype="Int64"), "x": [1, 2, 3]})
    path = tmp_path / "t.csv"
    write_table_csv(frame, path)
    assert path.read_bytes() == frame.to_csv(index=False, lineterminator="\n").encode()
    empty = frame.iloc[:0]
    write_table_csv(empty, path)
    assert path.read_bytes() == empty.to_csv(index=False, lineterminator="\n").encode()


def test_a_string_column_held_in_chunks_writes_too(tmp_path: Path) -> None:
    """A column pandas holds as several Arrow chunks (a concatenation) is written whole."""
    parts = [pd.DataFrame({"s": pd.array([f"v{i % 7}" for i in range(3000)], dtype="str"), "n": range(3000)})
             for _ in range(2)]
    frame = pd.concat(parts, ignore_index=True)
    path = tmp_path / "t.csv"
    write_table_csv(frame, path)
    assert path.read_bytes() == frame.to_csv(index=False, lineterminator="\n").encode()


def test_the_text_written_in_blocks_is_the_text_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """Rows are rendered a block at a time; the file is the same for any block size, and a column that only
    pandas renders, found in a later block, still leaves pandas' text (not a file begun in Arrow)."""
    import perfalert_lab.report as report

    frame = _frame(4, 5000)
    want = csv_ready(frame).to_csv(index=False, lineterminator="\n").encode()
    path = tmp_path / "t.csv"
    for rows in (1, 7, 1000, 4999, 5000, 10**6):
        monkeypatch.setattr(report, "CSV_ROWS", rows)
        write_table_csv(frame, path)
        assert path.read_bytes() == want, rows
    late = frame.assign(o=frame["o"].astype(object))
    late.loc[4500, "o"] = 17  # strings, then one integer in the last block
    monkeypatch.setattr(report, "CSV_ROWS", 1000)
    write_table_csv(late, path)
    assert path.read_bytes() == csv_ready(late).to_csv(index=False, lineterminator="\n").encode()

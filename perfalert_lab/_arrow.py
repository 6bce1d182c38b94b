"""String columns through Arrow: the tables' text made and read without a Python string per row.

One rule for what a missing value becomes: it stays missing (an Arrow null, ``<NA>`` in pandas), on
every path that builds or reads the tables' text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["arrow_strings", "repeated", "strings_at", "taken"]


def arrow_strings(col: pd.Series) -> pa.Array:
    """A string column as one Arrow array (no copy when it already is one in one piece); missing values
    stay null."""
    arr = pc.cast(pa.array(col.array), pa.string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def strings_at(uniques: Sequence[str], index: np.ndarray) -> Any:
    """A pandas string column of ``uniques[index]``, gathered in Arrow (an index out of range is an
    error, not a wrap-around)."""
    return pd.array(pc.take(pa.array(list(uniques), type=pa.string()), pa.array(np.asarray(index, dtype=np.int64))),
                    dtype="str")


def taken(strings: pa.Array | list[pa.Array], index: np.ndarray) -> Any:
    """A pandas string column of the ``index`` rows of an Arrow string array (or of several, end to end)."""
    if isinstance(strings, list):
        strings = pa.concat_arrays(strings) if strings else pa.array([], type=pa.string())
    return pd.array(strings.take(pa.array(np.asarray(index, dtype=np.int64))), dtype="str")


def repeated(text: str, n: int) -> pa.Array:
    """An Arrow string array of ``text``, ``n`` times."""
    return pa.array([text], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int64)))

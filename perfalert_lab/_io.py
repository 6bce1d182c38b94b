"""Atomic outputs: complete files or none.

Each file is written to a temporary file in the same directory and renamed into
place. A set of outputs (a report folder) is staged in a temporary sibling
directory and each file moved into the target only when all were written, so a run
that fails leaves the previous outputs or none.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "write_outputs"]


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_outputs(out_dir: Path, writers: dict[str, Callable[[Path], None]]) -> list[Path]:
    """Write several files into ``out_dir`` all-or-nothing.

    ``writers`` maps a file name to a function that writes that file at the path it
    is given. Every file is written into a staging directory first; only when all
    succeeded are they renamed into ``out_dir``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        from .errors import UsageError

        raise UsageError(f"{out_dir}: exists and is not a directory; choose another --out")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, write in writers.items():
            write(stage / name)
        out_dir.mkdir(parents=True, exist_ok=True)
        done = []
        for name in writers:
            os.replace(stage / name, out_dir / name)
            done.append(out_dir / name)
        return done
    finally:
        shutil.rmtree(stage, ignore_errors=True)

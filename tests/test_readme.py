"""The README's Python example runs as written (from a folder that has the bundled data)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import ROOT


def test_readme_python_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks, "the README has a Python example"
    (tmp_path / "data").symlink_to(ROOT / "data")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        namespace: dict = {}
        exec(compile(blocks[0], "README.md", "exec"), namespace)  # noqa: S102 - our own README
    finally:
        os.chdir(cwd)
    assert len(namespace["result"].alerts) > 0
    assert (tmp_path / "tuned.yaml").exists()

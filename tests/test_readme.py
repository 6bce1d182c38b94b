"""The README's Python examples run as written (from a folder that has the bundled data)."""

from __future__ import annotations

import os
import re
import warnings
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
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            # the first example whole, then the PromQL one (the sweep example continues the first with
            # names a reader supplies, such as old_rules)
            for block in [blocks[0]] + [b for b in blocks[1:] if "pal.promql(" in b]:
                exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    finally:
        os.chdir(cwd)
    assert len(namespace["result"].alerts) > 0
    assert (tmp_path / "tuned.yaml").exists()
    assert namespace["ratio"]["value"].max() > 0.05  # the PromQL example finds the error burst
    # the only warnings are the export's notes on what Prometheus cannot express
    assert all("not mapped" in str(w.message) for w in seen), [str(w.message) for w in seen]

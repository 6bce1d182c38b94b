"""nbval for the notebooks: a plot cell must still produce a picture.

nbval leaves ``image/png`` out of its comparison (pixels differ across matplotlib
versions). Here it is compared again for the cells tagged ``nbval-check-output``,
with the picture's bytes sanitised to a token (tests/nbval_sanitize.cfg): a cell
whose stored output has a picture fails if the run produces none.

Registered by tests/conftest.py (a conftest.py beside the notebooks would clash
with the tests' ``from conftest import ...``).
"""

from __future__ import annotations

from typing import Any


class NbvalPictures:
    """A pytest plugin: nbval compares ``image/png`` (by presence, after sanitising)."""

    def pytest_collectstart(self, collector: Any) -> None:
        skip = getattr(collector, "skip_compare", None)
        if skip is not None and str(getattr(collector, "path", "")).endswith(".ipynb"):
            collector.skip_compare = tuple(k for k in skip if k != "image/png")

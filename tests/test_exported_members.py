"""The public surface agrees with itself: ``__all__``, the lazy table and the type checkers' imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import perfalert_lab as pal

INIT = Path(pal.__file__)


def _type_checking_names() -> set[str]:
    tree = ast.parse(INIT.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for imp in node.body:
                if isinstance(imp, ast.ImportFrom):
                    names |= {a.asname or a.name for a in imp.names}
    return names


def test_every_exported_name_resolves_and_every_lazy_name_is_exported_and_typed() -> None:
    lazy = set(pal._LAZY)  # type: ignore[attr-defined]
    exported = set(pal.__all__)
    assert len(pal.__all__) == len(exported), "duplicates in __all__"
    assert lazy <= exported, f"lazy but not exported: {sorted(lazy - exported)}"
    unseen = lazy - _type_checking_names()
    assert not unseen, f"lazy names the type checkers do not see: {sorted(unseen)}"
    for name in sorted(exported):
        assert getattr(pal, name) is not None, name
    eager = exported - lazy
    assert eager <= set(vars(pal)), f"exported but neither imported nor lazy: {sorted(eager - set(vars(pal)))}"


def test_importing_the_package_loads_neither_the_compiled_engine_nor_plots_widgets_or_dask() -> None:
    """As the package docstring promises: they load on first use (pandas itself is the data model)."""
    code = ("import sys, perfalert_lab\n"
            "heavy = [m for m in ('numba', 'matplotlib', 'ipywidgets', 'dask', 'distributed') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_loading_borrows_nothing_from_the_engine() -> None:
    """Arrows never point up: reading metrics and preparing series (hashes included) import no engine module."""
    code = ("import sys, pandas as pd, perfalert_lab as pal\n"
            "from perfalert_lab.frames import SeriesSet\n"
            "f = pal.read_metrics(sys.argv[1])\n"
            "SeriesSet.from_frame(f).hashes\n"
            "print(sorted(m for m in sys.modules if m.startswith('perfalert_lab.engine')))")
    nab = Path(__file__).resolve().parents[1] / "data" / "nab" / "realKnownCause"
    nab = nab / "ec2_request_latency_system_failure.csv"
    out = subprocess.run([sys.executable, "-c", code, str(nab)], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"

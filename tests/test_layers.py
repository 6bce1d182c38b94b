"""The layering the imports show (docs/architecture.md): loading below the engine, the engine below
the front door, and the engine importing none of the things built on it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "perfalert_lab"


def imported(path: Path) -> set[str]:
    """Every perfalert_lab module ``path`` imports (at the top or inside functions), as dotted names."""
    module = ".".join(path.relative_to(PKG.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("perfalert_lab"):
                out.add(name)
                out.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("perfalert_lab"))
    return out


def modules(*parts: str) -> list[Path]:
    found = []
    for p in parts:
        target = PKG / p
        found += sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
    return found


ABOVE_THE_ENGINE = ("perfalert_lab.backtesting", "perfalert_lab.report", "perfalert_lab.distributed",
                    "perfalert_lab.cli", "perfalert_lab.widgets", "perfalert_lab.plot", "perfalert_lab.query",
                    "perfalert_lab.alertmanager", "perfalert_lab.tuning")


@pytest.mark.parametrize("path", modules("engine"), ids=lambda p: p.name)
def test_the_engine_imports_nothing_built_on_it(path: Path) -> None:
    bad = sorted(m for m in imported(path) if m.startswith(ABOVE_THE_ENGINE))
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", modules("frames", "rules", "clock", "stats", "_hashing", "_time", "templates"),
                         ids=lambda p: p.name)
def test_loading_imports_nothing_from_the_engine(path: Path) -> None:
    # loading may parse PromQL and read Prometheus's formats (query's parser and readers), and a rule
    # set draws itself in Jupyter with the report's table; it runs nothing
    runners = ("perfalert_lab.engine", "perfalert_lab.backtesting", "perfalert_lab.distributed", "perfalert_lab.cli",
               "perfalert_lab.widgets", "perfalert_lab.tuning", "perfalert_lab.alertmanager",
               "perfalert_lab.query.alerting", "perfalert_lab.query.backtest", "perfalert_lab.query.tuning")
    bad = sorted(m for m in imported(path) if m.startswith(runners))
    assert not bad, f"{path.name} imports {bad}"


def test_nothing_outside_the_engine_imports_a_private_engine_name() -> None:
    bad = []
    for path in PKG.rglob("*.py"):
        if "engine" in path.relative_to(PKG).parts:
            continue
        for name in imported(path):
            if name.startswith("perfalert_lab.engine") and any(p.startswith("_") for p in name.split(".")[2:]):
                bad.append(f"{path.relative_to(PKG)}: {name}")
    assert not bad, bad


def test_the_checker_sees_an_import() -> None:
    """The scan itself: a known import of the front door is found (a scan that sees nothing proves nothing)."""
    assert "perfalert_lab.engine.pipeline.run" in imported(PKG / "backtesting.py")
    assert "perfalert_lab.engine.lifecycle" in imported(PKG / "engine" / "pipeline.py")

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
                    "perfalert_lab.cli", "perfalert_lab.widgets", "perfalert_lab.plot", "perfalert_lab.promql_engine",
                    "perfalert_lab.alertmanager", "perfalert_lab.tuning")


@pytest.mark.parametrize("path", modules("engine"), ids=lambda p: p.name)
def test_the_engine_imports_nothing_built_on_it(path: Path) -> None:
    bad = sorted(m for m in imported(path) if m.startswith(ABOVE_THE_ENGINE))
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("path", modules("frames", "rules", "clock", "stats", "_hashing", "_time", "templates"),
                         ids=lambda p: p.name)
def test_loading_imports_nothing_from_the_engine(path: Path) -> None:
    # loading may parse PromQL and read Prometheus's formats (promql's parser and readers), and a rule
    # set draws itself in Jupyter with the report's table; it runs nothing
    runners = ("perfalert_lab.engine", "perfalert_lab.backtesting", "perfalert_lab.distributed", "perfalert_lab.cli",
               "perfalert_lab.widgets", "perfalert_lab.tuning", "perfalert_lab.alertmanager",
               "perfalert_lab.prometheus")
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


def _package_of(module: str) -> str:
    """The package a module belongs to: ``perfalert_lab.rules`` for ``perfalert_lab.rules.model``; the
    top-level modules (``frames``, ``_time`` ...) belong to ``perfalert_lab`` itself."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or (PKG / parts[-1]).is_dir() else "perfalert_lab"


def test_no_private_name_is_imported_across_packages() -> None:
    """What two packages share is public (``_time``'s functions are the package root's own helpers, and
    public); a ``_name`` imported from another package is a seam that hides its shape."""
    bad = []
    for path in PKG.rglob("*.py"):
        own = _package_of(".".join(path.relative_to(PKG.parent).with_suffix("").parts))
        for name in imported(path):
            parts = name.split(".")
            if not parts[-1].startswith("_") or parts[-1].startswith("__"):
                continue
            if PKG.parent.joinpath(*parts).with_suffix(".py").exists():
                continue  # a module of the package root (``_time``), imported for its public names
            source = ".".join(parts[:-1])
            if _package_of(source) != own:
                bad.append(f"{path.relative_to(PKG)}: {name}")
    assert not bad, bad


BELOW_THE_FRONT_DOOR = ("engine", "frames", "rules", "promql_engine", "prometheus", "alertmanager", "distributed",
                        "stats", "templates", "gotemplate", "re2", "result", "recommendation", "clock", "datasets",
                        "present", "errors", "_time", "_io", "_jit", "_hashing", "_secrets")


@pytest.mark.parametrize("path", modules(*BELOW_THE_FRONT_DOOR), ids=lambda p: str(p.relative_to(PKG)))
def test_nothing_below_the_front_door_imports_it(path: Path) -> None:
    """``backtesting`` dispatches to the paths below it; none of them reaches back up (its result type
    lives in ``result``)."""
    assert "perfalert_lab.backtesting" not in {n.rsplit(".", 1)[0] if n.endswith(".backtest") else n
                                               for n in imported(path)}, path.name


def test_every_exception_is_under_the_packages_base_error() -> None:
    """Every exception class the package defines derives from PerfAlertError (a caller's one ``except``),
    but for private control flow (a template's break/continue) that never leaves its module."""
    bad = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_") or node.name == "PerfAlertError":
                continue
            bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
            if bases & {"Exception", "ValueError", "RuntimeError", "TypeError", "KeyError", "ImportError"} and \
                    not bases & {"PerfAlertError", "InputError"}:
                bad.append(f"{path.relative_to(PKG)}: {node.name}")
    assert not bad, bad
    import perfalert_lab.errors as errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, Warning):
            assert issubclass(cls, errors.PerfAlertError), name

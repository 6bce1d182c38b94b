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


@pytest.mark.parametrize("path", modules("frames", "reading", "rules", "clock", "stats", "_hashing", "_time",
                                         "templates"),
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


BELOW_THE_FRONT_DOOR = ("engine", "frames", "reading", "rules", "promql_engine", "prometheus", "alertmanager",
                        "distributed", "stats", "templates", "gotemplate", "re2", "result", "recommendation", "clock",
                        "datasets", "present", "errors", "_time", "_io", "_jit", "_hashing", "_secrets")


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


# What may be imported inside a function: the heavy optional or slow-to-load dependencies, so that
# ``import perfalert_lab``, reading a CSV and ``perfalert validate`` do not pay for them; and a module of
# ours only where it loads one of these at its top that the importing module does not already load.
HEAVY = {
    "numba": "the compiled kernels (about 0.4 s to import)",
    "promql_parser": "PromQL's parser (a compiled extension)",
    "pyarrow": "CSV and Parquet reading, table writing",
    "matplotlib": "the pictures",
    "PIL": "the pictures' PNG encoding",
    "ruamel": "round-trip YAML for write-back",
    "tqdm": "progress bars",
    "dask": "the scale-out path (extra 'dask')",
    "distributed": "the scale-out path (extra 'dask')",
    "ipywidgets": "the tuner (extra 'notebook')",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolved(path: Path, node: ast.Import | ast.ImportFrom) -> str:
    if isinstance(node, ast.Import):
        return node.names[0].name
    if not node.level:
        return node.module or ""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _heavy_at_import() -> dict[str, set[str]]:
    """For each of our modules, the heavy dependencies importing it loads (its top-level imports,
    followed through our modules; ``if TYPE_CHECKING`` blocks are not run)."""
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        deps = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}  # its packages
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            for n in ast.walk(node):
                if isinstance(n, ast.Import | ast.ImportFrom):
                    name = _resolved(path, n)
                    if name in files:
                        deps.add(name)
                        if isinstance(n, ast.ImportFrom):
                            deps.update(f"{name}.{a.name}" for a in n.names if f"{name}.{a.name}" in files)
                    elif name.split(".")[0] in HEAVY:
                        deps.add(name.split(".")[0])
        graph[module] = deps - {module}

    def closure(module: str, seen: set[str]) -> set[str]:
        if module in seen:
            return set()
        seen.add(module)
        if module not in graph:
            return {module} if module in HEAVY else set()
        return set().union(*(closure(d, seen) for d in graph[module]))

    return {m: closure(m, set()) for m in graph}


def test_function_level_imports_are_only_for_heavy_dependencies() -> None:
    """An import inside a function hides a module's shape (and a cycle, usually): only the named heavy
    dependencies are imported late, or a module of ours that loads one of them."""
    heavy = _heavy_at_import()
    assert heavy["perfalert_lab.plot"] >= {"matplotlib"} and "numba" in heavy["perfalert_lab.promql_engine"]
    bad = []
    for path in PKG.rglob("*.py"):
        module = _module_name(path)
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                target = _resolved(path, node)
                if target.split(".")[0] in HEAVY or heavy.get(target, set()) - heavy[module]:
                    continue
                bad.append(f"{path.relative_to(PKG)}:{node.lineno}: {target}")
    assert not bad, bad


def test_reading_a_csv_imports_neither_numba_nor_promql(tmp_path: Path) -> None:
    """Reading a file is quick: no compiled kernels, no PromQL parser, no pictures (they load with the
    first backtest, PromQL query or plot)."""
    import subprocess
    import sys

    csv = tmp_path / "m.csv"
    csv.write_text("timestamp,source,metric,value\n2026-01-01T00:00:00Z,web-1,cpu,1\n")
    code = ("import sys, perfalert_lab as pal\n"
            f"frame = pal.read_metrics({str(csv)!r})\n"
            "assert len(frame) == 1\n"
            "print(sorted(m for m in ('numba', 'promql_parser', 'matplotlib', 'perfalert_lab.promql_engine',"
            " 'perfalert_lab.engine') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))
# the engine's kernels compiled whatever the input's size, so the randomized suites hold the
# compiled code to the references; tests/test_jit.py holds the plain-Python mode to it
os.environ.setdefault("PERFALERT_JIT", "always")

# CI runs thousands of randomized examples; a local run fewer (PERFALERT_EXAMPLES overrides).
settings.register_profile("ci", max_examples=int(os.environ.get("PERFALERT_EXAMPLES", 1500)), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], derandomize=True)
settings.register_profile("dev", max_examples=int(os.environ.get("PERFALERT_EXAMPLES", 200)), deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

ROOT = Path(__file__).resolve().parent.parent
NAB = ROOT / "data" / "nab"
SHARED_NAB = ROOT.parent / "shared" / "data" / "nab"
SHARED_RULES = ROOT.parent / "shared" / "data" / "real-rules"


def need_shared(path: Path) -> Path:
    """A folder of ``../shared`` (test data kept beside the checkout, not in it): CI lays it there, so
    under CI a missing one fails instead of skipping (a wrong path must not pass silently)."""
    import pytest

    if path.is_dir():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{path}: missing; CI lays shared/ beside the checkout")
    pytest.skip(f"no {path} beside this checkout")


def pytest_configure(config: Any) -> None:
    from nbval_pictures import NbvalPictures

    config.pluginmanager.register(NbvalPictures(), "perfalert-nbval-pictures")

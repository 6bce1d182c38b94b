"""A wheel built from the repository runs ``perfalert demo`` from a fresh environment outside the checkout.

The demo data ships inside the package (``perfalert_lab/data`` is the repository's
``data/``). The fresh virtual environment borrows only the dependencies of the test
environment (a path line, not its site packages, so the editable install of the
checkout is not seen) and installs the wheel itself.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from conftest import ROOT


def test_the_wheel_runs_the_demo_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(dist)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("perfalert_lab-*.whl"))
    env = tmp_path / "env"
    venv.EnvBuilder(with_pip=False).create(env)
    py = env / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # numpy, pandas, ... (no .pth there)
    # pip itself is borrowed too; run by the new environment's python, it installs there (scripts included)
    install = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-compile", "-q", str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.check_output([str(py), "-c", "import perfalert_lab; print(perfalert_lab.__file__)"],
                                    cwd=work, text=True).strip()
    assert where.startswith(str(env)), where  # the wheel, not the checkout
    demo = subprocess.run([str(env / "bin" / "perfalert"), "demo", "--out", "report"], cwd=work,
                          capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert (work / "report" / "report.html").exists() and (work / "report" / "alerts.csv").exists()
    assert "perfalert demo:" in demo.stdout

"""Bundled data and a seeded synthetic fleet with known incidents.

* :func:`nab_files` / :func:`load_nab`: real cloud metrics from the Numenta Anomaly
  Benchmark (MIT) in the repository's ``data/nab`` folder, with labelled windows.
* :func:`synthetic_fleet`: a reproducible fleet of hosts with daily cycles, noise
  and injected incidents whose windows are returned, for tests and examples at any
  size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputFileNotFound

__all__ = ["data_dir", "demo_rules_path", "load_nab", "nab_files", "synthetic_fleet"]


def data_dir() -> Path:
    """The bundled ``data/`` folder (of the source checkout the package runs from)."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "data", here / "data"):
        if (candidate / "nab").is_dir():
            return candidate
    raise InputFileNotFound(
        "bundled data not found: perfalert_lab's data/ folder ships with the source checkout; "
        "run from a clone (pip install -e .) or pass your own files")


def nab_files(group: str | None = None) -> list[Path]:
    """The bundled NAB CSV files, sorted (``group``: ``realKnownCause`` or ``realAWSCloudwatch``)."""
    root = data_dir() / "nab"
    groups = [group] if group else ["realAWSCloudwatch", "realKnownCause"]
    return sorted(p for g in groups for p in (root / g).glob("*.csv"))


def demo_rules_path() -> Path:
    """The rules file ``perfalert demo`` runs."""
    return data_dir() / "rules" / "nab-demo.yaml"


def load_nab(names: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The NAB series (all, or those whose stem is in ``names``) and their incidents."""
    from .frames import read_incidents, read_metrics

    files = [p for p in nab_files() if names is None or p.stem in names]
    if not files:
        raise InputFileNotFound(f"no bundled NAB file named {names!r}")
    frame = read_metrics(files)
    incidents = read_incidents(data_dir() / "nab" / "labels" / "combined_windows.json")
    incidents = incidents[incidents["source"].isin({p.stem for p in files})].reset_index(drop=True)
    return frame, incidents


def synthetic_fleet(
    hosts: int = 4,
    days: float = 7.0,
    freq: str = "1min",
    *,
    metrics: tuple[str, ...] = ("cpu", "latency_ms"),
    incidents_per_host: float = 2.0,
    start: str = "2026-01-05T00:00:00Z",
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reproducible fleet ``web-1..web-N`` and the incidents injected into it.

    Each metric follows a daily cycle with noise; an incident raises ``cpu`` towards
    95 and ``latency_ms`` several-fold on one host for 20 to 120 minutes. Returns the
    metric frame (long format) and the incidents (``start, end, source, metric,
    point``; ``point`` is the incident start).

    >>> frame, incidents = synthetic_fleet(hosts=2, days=1, seed=1)
    >>> sorted(frame["source"].unique()), len(frame)
    (['web-1', 'web-2'], 5760)
    """
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    times = pd.date_range(t0, t0 + pd.Timedelta(days=days), freq=freq, inclusive="left")
    n = len(times)
    minutes = (times - t0).total_seconds().to_numpy() / 60.0
    daily = np.sin(2 * np.pi * (minutes / 1440.0 - 0.25))
    frames, incidents = [], []
    for h in range(1, hosts + 1):
        src = f"web-{h}"
        k = rng.poisson(incidents_per_host * days / 7.0)
        bumps = np.zeros(n)
        for _ in range(k):
            length = int(rng.integers(20, 121))
            step_min = max(pd.Timedelta(freq).total_seconds() / 60.0, 1e-9)
            span = max(1, int(round(length / step_min)))
            if span >= n:
                continue
            i = int(rng.integers(0, n - span))
            bumps[i:i + span] = np.maximum(bumps[i:i + span], 1.0)
            incidents.append((times[i], times[i + span - 1], src, "cpu", times[i]))
        for m in metrics:
            if m == "cpu":
                base = 45 + 15 * daily + rng.normal(0, 4, n)
                values = np.clip(base + bumps * (95 - base) + bumps * rng.normal(0, 2, n), 0, 100)
            elif m == "latency_ms":
                base = 120 + 30 * daily + rng.gamma(2.0, 8.0, n)
                values = base * (1 + 3 * bumps)
            else:
                values = 100 + 10 * daily + rng.normal(0, 3, n) + 50 * bumps
            frames.append(pd.DataFrame({"timestamp": times, "source": src, "metric": m, "value": values}))
    frame = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame["source"] = frame["source"].astype("str")
    frame["metric"] = frame["metric"].astype("str")
    inc = pd.DataFrame(incidents, columns=["start", "end", "source", "metric", "point"])
    for c in ("start", "end", "point"):
        inc[c] = pd.to_datetime(inc[c], utc=True).dt.as_unit("ns")
    for c in ("source", "metric"):
        inc[c] = inc[c].astype("str")
    frame["timestamp"] = frame["timestamp"].dt.as_unit("ns")
    return frame, inc.sort_values("start", kind="stable").reset_index(drop=True)

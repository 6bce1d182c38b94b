"""Bundled data and a seeded synthetic fleet with known incidents.

* :func:`nab_files` / :func:`load_nab`: real cloud metrics from the Numenta Anomaly
  Benchmark (MIT) in the repository's ``data/nab`` folder, with labelled windows.
* :func:`prometheus_fleet`: the same idea with Prometheus-style series and labels
  (request counters by status code, latency histogram buckets, filesystem space,
  ``up``), for PromQL and Prometheus rule files.
* :func:`synthetic_fleet`: a reproducible fleet of hosts with daily cycles, noise
  and injected incidents whose windows are returned, for tests and examples at any
  size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputFileNotFound
from .reading import read_incidents, read_metrics

__all__ = ["data_dir", "demo_rules_path", "load_nab", "nab_files", "prometheus_fleet", "slo_history", "slo_spec_path",
           "synthetic_fleet"]


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


def prometheus_fleet(
    instances: int = 4,
    days: float = 1.0,
    *,
    start: str = "2026-01-05T00:00:00Z",
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reproducible ``job="api"`` fleet as Prometheus scrapes it every minute, and its incidents.

    Series (labels ``job``, ``instance`` and as noted):

    * ``http_requests_total{code="200"|"500"}``: counters; the process restarts
      (counter reset) once a day; an *error burst* multiplies 500s for 30 minutes;
    * ``http_request_duration_seconds_bucket{le=...}``: a classic histogram (0.05 s to
      +Inf); a *slow* incident moves most requests above 0.5 s for 45 minutes;
    * ``node_filesystem_avail_bytes{mountpoint="/"}``: free bytes; on one instance a
      *disk fill* drains it towards zero over the last hours;
    * ``up``: 1, and 0 while a *target down* incident lasts (20 minutes).

    Returns the long frame (``timestamp``, ``metric``, ``value`` and the label columns
    ``job``, ``instance``, ``code``, ``le``, ``mountpoint``; empty = no such label) and the
    incidents (``start``, ``end``, ``source`` = the instance, ``metric``, ``point``).

    >>> frame, incidents = prometheus_fleet(instances=2, days=0.25)
    >>> sorted(frame["metric"].unique())  # doctest: +NORMALIZE_WHITESPACE
    ['http_request_duration_seconds_bucket', 'http_requests_total', 'node_filesystem_avail_bytes', 'up']
    >>> list(incidents["metric"])
    ['errors', 'latency', 'disk', 'up']
    """
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    n = int(round(days * 1440))
    times = t0 + pd.to_timedelta(np.arange(n), unit="min")
    minutes = np.arange(n, dtype=np.float64)
    daily = 1 + 0.5 * np.sin(2 * np.pi * (minutes / 1440.0 - 0.25))
    les = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"]
    fast = np.array([0.35, 0.7, 0.92, 0.98, 0.995, 1.0])  # share of requests at or under each bound
    slow = np.array([0.02, 0.05, 0.15, 0.3, 0.7, 1.0])
    names = [f"api-{i}:8080" for i in range(1, instances + 1)]

    def window(frac: float, length: int) -> tuple[int, int]:
        a = min(max(int(frac * n), 0), max(n - length - 1, 0))
        return a, min(a + length, n)

    err = (int(rng.integers(0, instances)), *window(0.3, 30))
    lat = (int(rng.integers(0, instances)), *window(0.6, 45))
    down = (int(rng.integers(0, instances)), *window(0.8, 20))
    disk = (instances - 1, int(0.75 * n), n)
    rows: list[pd.DataFrame] = []

    def add(metric: str, values: np.ndarray, **labels: str) -> None:
        rows.append(pd.DataFrame({"timestamp": times, "metric": metric, "value": values, **labels}))

    for i, inst in enumerate(names):
        rate = rng.gamma(20, 1.0, n) * daily  # requests per second
        per_min = rate * 60
        errors = per_min * 0.002 * rng.random(n)
        if i == err[0]:
            errors[err[1]:err[2]] = per_min[err[1]:err[2]] * rng.uniform(0.08, 0.2, err[2] - err[1])
        restart = int(rng.integers(n // 4, max(n // 4 + 1, 3 * n // 4)))
        for code, counts in (("200", per_min - errors), ("500", errors)):
            total = np.cumsum(counts)
            total[restart:] -= total[restart - 1]
            add("http_requests_total", np.round(total), job="api", instance=inst, code=code)
        share = np.tile(fast, (n, 1))
        if i == lat[0]:
            share[lat[1]:lat[2]] = slow
        buckets = np.cumsum(per_min[:, None] * share, axis=0)
        buckets[restart:] -= buckets[restart - 1]
        for k, le in enumerate(les):
            add("http_request_duration_seconds_bucket", np.round(buckets[:, k]), job="api", instance=inst, le=le)
        avail = 40e9 + rng.normal(0, 5e7, n)
        if i == disk[0]:
            avail[disk[1]:] -= np.linspace(0, 39.5e9, n - disk[1])
        add("node_filesystem_avail_bytes", np.maximum(avail, 0), job="node", instance=inst, mountpoint="/")
        up = np.ones(n)
        if i == down[0]:
            up[down[1]:down[2]] = 0
        add("up", up, job="api", instance=inst)
    frame = pd.concat(rows, ignore_index=True)
    for col in ("job", "instance", "code", "le", "mountpoint"):
        frame[col] = frame[col].fillna("").astype("str")
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame["timestamp"] = frame["timestamp"].dt.as_unit("ns")
    incidents = pd.DataFrame([
        (times[err[1]], times[err[2] - 1], names[err[0]], "errors", times[err[1]]),
        (times[disk[1]], times[-1], names[disk[0]], "disk", times[disk[1]]),
        (times[lat[1]], times[lat[2] - 1], names[lat[0]], "latency", times[lat[1]]),
        (times[down[1]], times[down[2] - 1], names[down[0]], "up", times[down[1]]),
    ], columns=["start", "end", "source", "metric", "point"])
    for c in ("start", "end", "point"):
        incidents[c] = pd.to_datetime(incidents[c], utc=True).dt.as_unit("ns")
    return frame, incidents.sort_values("start", kind="stable").reset_index(drop=True)


def slo_spec_path() -> Path:
    """The bundled sloth spec for :func:`slo_history`: 99.9 % of the api's requests without a 5xx over 30 days."""
    return data_dir() / "slo" / "api-availability.sloth.yml"


def slo_history(days: int = 28, *, start: str = "2026-02-02T00:00:00Z", seed: int = 0
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four weeks of an api's request counters as Prometheus scrapes them every minute, with the
    kinds of trouble burn-rate alerts are judged by, and the incidents a team labelled.

    ``http_requests_total{job="api", code="200"|"500"}`` (a day-shaped 300-900 requests a minute,
    0.02-0.04 % errors). On top: an *outage* (30 % errors for 20 minutes, day 3), a *degradation*
    (0.9 % for 5 hours, day 9), a *slow leak* (0.25 % for 3 days from day 16): the three labelled
    incidents; and, unlabelled, a 5-minute *spike* (50 %, day 22) and daily 1-3 minute *blips* of 1-2 %.
    Returns the long frame and the incidents (``start``, ``end``, ``metric`` = the kind).

    >>> frame, incidents = slo_history(days=20)
    >>> list(incidents["metric"]), sorted(frame["code"].unique())
    (['outage', 'degradation', 'leak'], ['200', '500'])
    """
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    n = int(days) * 1440
    minutes = np.arange(n, dtype=np.float64)
    per_min = (600 + 300 * np.sin(2 * np.pi * (minutes / 1440.0 - 0.25))) * rng.gamma(50, 1 / 50, n)
    ratio = rng.uniform(0.0002, 0.0004, n)
    for day in range(days):  # short blips nobody calls an incident
        a = day * 1440 + int(rng.integers(0, 1440 - 5))
        ratio[a:a + int(rng.integers(1, 4))] = rng.uniform(0.01, 0.02)
    incidents = []

    def trouble(day: float, minutes_long: int, level: float, kind: str | None) -> None:
        a = int(day * 1440)
        if a >= n:
            return
        b = min(a + minutes_long, n)
        ratio[a:b] = level
        if kind:
            incidents.append({"start": t0 + pd.Timedelta(minutes=a), "end": t0 + pd.Timedelta(minutes=b - 1),
                              "metric": kind})

    trouble(3 + 10 / 24, 20, 0.30, "outage")
    trouble(9 + 14 / 24, 300, 0.009, "degradation")
    trouble(16, 3 * 1440, 0.0025, "leak")
    trouble(22 + 3 / 24, 5, 0.5, None)
    errors = rng.binomial(np.round(per_min).astype(np.int64), ratio).astype(np.float64)
    ok = np.round(per_min) - errors
    times = t0 + pd.to_timedelta(minutes, unit="min")
    frame = pd.concat([pd.DataFrame({"timestamp": times, "metric": "http_requests_total", "value": np.cumsum(v),
                                     "job": "api", "code": code}) for code, v in (("200", ok), ("500", errors))],
                      ignore_index=True)
    return frame, pd.DataFrame(incidents, columns=["start", "end", "metric"])

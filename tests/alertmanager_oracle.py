"""Random Alertmanager route trees and label sets, and amtool's routing of them."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

AMTOOL = shutil.which("amtool")
VALUES = {"alertname": ["A", "B", "C"], "severity": ["page", "ticket", "info"], "team": ["db", "web", "ops"],
          "service": ["mysql", "pg", "nginx"], "env": ["prod", "dev"]}
RECEIVERS = [f"r{i}" for i in range(5)]


def need_amtool() -> str:
    if AMTOOL is None:
        if os.environ.get("PERFALERT_REQUIRE_PROMTOOL"):
            pytest.fail("amtool is required here (apt-get install prometheus-alertmanager)")
        pytest.skip("amtool not installed (Debian package 'prometheus-alertmanager')")
    return AMTOOL


def _matcher(rng: random.Random) -> str:
    name = rng.choice(list(VALUES))
    op = rng.choice(["=", "=", "!=", "=~", "!~"])
    if op in ("=~", "!~"):
        value = "|".join(rng.sample(VALUES[name], rng.randint(1, 2))) if rng.random() < 0.8 else ".*"
    else:
        value = rng.choice(VALUES[name] + [""])
    return f'{name}{op}"{value}"'


def _route(rng: random.Random, depth: int) -> dict:
    r: dict = {}
    kind = rng.random()
    if kind < 0.5:
        r["matchers"] = [_matcher(rng) for _ in range(rng.randint(1, 2))]
    elif kind < 0.7:
        name = rng.choice(list(VALUES))
        r["match"] = {name: rng.choice(VALUES[name])}
    elif kind < 0.85:
        name = rng.choice(list(VALUES))
        r["match_re"] = {name: "|".join(rng.sample(VALUES[name], 2))}
    if rng.random() < 0.7:
        r["receiver"] = rng.choice(RECEIVERS)
    if rng.random() < 0.35:
        r["continue"] = True
    if rng.random() < 0.3:
        r["group_by"] = rng.choice([["alertname"], ["..."], ["team", "service"]])
    if depth > 0 and rng.random() < 0.5:
        r["routes"] = [_route(rng, depth - 1) for _ in range(rng.randint(1, 3))]
    return r


def random_config(rng: random.Random) -> dict:
    return {
        "route": {"receiver": rng.choice(RECEIVERS), "group_by": ["alertname"],
                  "routes": [_route(rng, 2) for _ in range(rng.randint(1, 4))]},
        "receivers": [{"name": r} for r in RECEIVERS],
    }


def random_labels(rng: random.Random) -> dict[str, str]:
    return {k: rng.choice(v) for k, v in VALUES.items() if rng.random() < 0.8}


def amtool_routes(tmp: Path, config: dict, label_sets: list[dict[str, str]]) -> list[list[str]]:
    amtool = need_amtool()
    path = tmp / "am.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))

    def one(labels: dict[str, str]) -> list[str]:
        args = [amtool, "config", "routes", "test", f"--config.file={path}"] + [f"{k}={v}" for k, v in labels.items()]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60).stdout.strip()
        return out.split(",") if out else []

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, label_sets))


def random_full_config(rng: random.Random) -> dict:
    """A route tree with random timers, receivers with integrations, inhibition and a time interval."""
    config = random_config(rng)

    def timers(route: dict) -> None:
        if rng.random() < 0.5:
            route["group_wait"] = rng.choice(["0s", "30s", "1m", "2m"])
        if rng.random() < 0.5:
            route["group_interval"] = rng.choice(["1m", "5m", "10m"])
        if rng.random() < 0.5:
            route["repeat_interval"] = rng.choice(["10m", "1h", "4h"])
        for child in route.get("routes", []):
            timers(child)

    timers(config["route"])
    config["receivers"] = [
        {"name": "r0", "webhook_configs": [{"url": "http://127.0.0.1:9/a"}]},
        {"name": "r1", "email_configs": [{"to": "a@b.c", "from": "x@y.z", "smarthost": "localhost:25"}]},
        {"name": "r2", "pagerduty_configs": [{"routing_key": "k"}], "webhook_configs": [
            {"url": "http://127.0.0.1:9/b", "send_resolved": False}]},
        {"name": "r3", "slack_configs": [{"api_url": "http://127.0.0.1:9/s", "send_resolved": True}]},
        {"name": "r4"},
    ]
    if rng.random() < 0.6:
        config["inhibit_rules"] = [{"source_matchers": ['severity="page"'],
                                    "target_matchers": ['severity=~"ticket|info"'],
                                    "equal": rng.choice([["team"], ["alertname"], []])}]
    if rng.random() < 0.3:
        config["time_intervals"] = [{"name": "quiet", "time_intervals": [{"times": [
            {"start_time": "01:00", "end_time": "03:00"}]}]}]
        config["route"]["routes"].append({"matchers": ['env="dev"'], "receiver": "r0",
                                          "mute_time_intervals": ["quiet"]})
    return config


def random_alerts(rng: random.Random, n: int, hours: int = 8) -> list:
    """Alert episodes as Prometheus sends them: one label set is never firing twice at once."""
    from perfalert_lab.alertmanager.simulate import Alert

    alerts = []
    busy_until: dict[tuple, float] = {}
    for i in range(n):
        labels = random_labels(rng)
        labels.setdefault("alertname", rng.choice(VALUES["alertname"]))
        key = tuple(sorted(labels.items()))
        start = rng.randrange(0, hours * 60) * 60_000 + rng.choice([0, 0, 15_000])
        if start < busy_until.get(key, -1):
            continue
        end = None if rng.random() < 0.2 else start + rng.randrange(1, 120) * 60_000
        if any(a.labels == key and a.starts_at > start for a in alerts):
            continue  # a later episode of the same alert exists: keep the history in order
        busy_until[key] = float("inf") if end is None else end
        alerts.append(Alert(f"a{i}", key, start, end))
    return alerts

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

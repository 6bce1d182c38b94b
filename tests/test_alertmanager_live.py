"""The real Alertmanager (Debian's prometheus-alertmanager 0.25) against the simulation.

Second-scale timers, a webhook receiver on 127.0.0.1, and a scripted alert timeline fed
to Alertmanager's API in real time (alerts re-sent every second while firing, as
Prometheus does, and sent resolved when they end). The notifications it sends must be
the simulation's: the same sequence of (firing alerts, resolved alerts) per group.
Timing is compared loosely (real timers drift); content and order exactly. No alert
changes state exactly on a flush: Alertmanager learns of a change when the message
arrives, a moment after, where the simulation orders same-instant events arrivals first.
Runs a few seconds; ``PERFALERT_SKIP_LIVE_ALERTMANAGER=1`` skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from perfalert_lab.alertmanager import parse_alertmanager
from perfalert_lab.alertmanager.simulate import Alert, simulate

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"at": time.monotonic(), **json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


SCENARIOS = {
    # one group: group_wait 2s, group_interval 4s, repeat 10s; a new alert, resolutions, repeats
    "grouping": ("""
route:
  receiver: hook
  group_by: [job]
  group_wait: 2s
  group_interval: 4s
  repeat_interval: 10s
receivers:
  - name: hook
    webhook_configs: [{url: "http://127.0.0.1:PORT/", send_resolved: true}]
""", [("A", {"job": "api"}, 0.0, 9.0), ("B", {"job": "api"}, 1.0, None), ("C", {"job": "api"}, 5.0, 7.0)]),
    # per-alert groups, a second route by continue, and inhibition while the source fires
    "inhibition": ("""
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 3s
  repeat_interval: 1h
  routes:
    - {matchers: ['severity="critical"'], receiver: hook, continue: true, group_by: [severity]}
receivers:
  - name: hook
    webhook_configs: [{url: "http://127.0.0.1:PORT/", send_resolved: true}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [host]
""", [("Down", {"severity": "critical", "host": "h1"}, 0.0, 8.0),
      ("Slow", {"severity": "warning", "host": "h1"}, 2.0, None),
      ("Busy", {"severity": "warning", "host": "h2"}, 2.0, 11.5)]),
}
DURATION = 20.0


@pytest.mark.skipif(os.environ.get("PERFALERT_SKIP_LIVE_ALERTMANAGER") == "1", reason="asked to skip")
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_real_alertmanager_sends_what_the_simulation_says(tmp_path, scenario):
    if BINARY is None:
        if os.environ.get("PERFALERT_REQUIRE_PROMTOOL"):
            pytest.fail("prometheus-alertmanager is required here")
        pytest.skip("prometheus-alertmanager not installed")
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    template, timeline = SCENARIOS[scenario]
    config = template.replace("PORT", str(hook.server_port))
    (tmp_path / "am.yml").write_text(config)
    port = _free_port()
    proc = subprocess.Popen([BINARY, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                             "--log.level=warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/v2/alerts"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        t0 = time.monotonic()
        wall0 = time.time()

        def iso(s: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall0 + s)) + f".{int((wall0 + s) % 1 * 1000):03d}Z"

        while (now := time.monotonic() - t0) < DURATION:
            batch = []
            for name, labels, start, end in timeline:
                if now < start:
                    continue
                alert = {"labels": {"alertname": name, **labels}, "startsAt": iso(start)}
                if end is not None and now >= end:
                    if now > end + 2:
                        continue  # sent resolved for a while, as Prometheus does
                    alert["endsAt"] = iso(end)
                else:
                    alert["endsAt"] = iso(now + 60)
                batch.append(alert)
            if batch:
                req = urllib.request.Request(url, json.dumps(batch).encode(), {"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=5):
                    pass
            time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        hook.shutdown()
        hook.server_close()
    real = sorted((round(n["at"] - t0), n["groupKey"],
                    tuple(sorted(a["labels"]["alertname"] for a in n["alerts"] if a["status"] == "firing")),
                    tuple(sorted(a["labels"]["alertname"] for a in n["alerts"] if a["status"] == "resolved")))
                   for n in _Hook.received)
    am = parse_alertmanager(config)
    alerts = [Alert(name, tuple(sorted({"alertname": name, **labels}.items())), int(start * 1000),
                    None if end is None else int(end * 1000)) for name, labels, start, end in timeline]
    notes = simulate(alerts, am, end_ms=int(DURATION * 1000))
    sim = sorted((round(n.at / 1000), n.group_key, tuple(sorted(n.firing)), tuple(sorted(n.resolved))) for n in notes)
    # the same notifications: group, firing and resolved alerts exactly; time within a second (real timers)
    assert [r[1:] for r in real] == [x[1:] for x in sim], (real, sim)
    for r, x in zip(real, sim, strict=True):
        assert abs(r[0] - x[0]) <= 1, (real, sim)

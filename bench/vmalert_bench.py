"""Issue 22: ``perfalert backtest`` against VictoriaMetrics' ``vmalert -replay`` on the same rule file and data.

One Prometheus rule file (``cpu > 80`` and ``avg_over_time(cpu[10m]) > 70``, interval 1m; no ``for``: vmalert
1.79's replay never fires a rule with ``for``) over N series x 1 week @1m. VictoriaMetrics is started on a free
port with a temporary storage path, the same data imported, ``vmalert -replay`` run (its data already loaded:
the import is timed apart), its ``ALERTS`` read back, VictoriaMetrics stopped. Printed side by side: whole-process
times (medians), peak memory (ours; vmalert's plus VictoriaMetrics'), and the firing episodes of both, with the
differences that are float ties at the threshold counted apart. The same two alerts written as our own rules
(SPEC 2) are timed and compared too.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RULES = """groups:
  - name: cpu
    interval: 1m
    rules:
      - alert: CPUHigh
        expr: cpu > 80
      - alert: CPUAvgHigh
        expr: avg_over_time(cpu[10m]) > 70
"""

# The same rules annotated as teams annotate theirs: labels, the value formatted, a summary and a description
ANNOTATED_RULES = """groups:
  - name: cpu
    interval: 1m
    rules:
      - alert: CPUHigh
        expr: cpu > 80
        labels: {severity: page}
        annotations:
          summary: "CPU high on {{ $labels.source }}"
          description: "{{ $labels.source }} CPU is {{ $value | printf \\"%.1f\\" }}% (threshold 80)"
      - alert: CPUAvgHigh
        expr: avg_over_time(cpu[10m]) > 70
        annotations:
          summary: "10m CPU average high on {{ $labels.source }}: {{ $value | humanize }}"
"""

# The same two alerts as our own rules (SPEC 2): the sample clock evaluates at each 1m sample, as the
# group's 1m interval does, and a 10m mean window is (t - 10m, t], as Prometheus 3's range.
OWN_RULES = """version: 1
rules:
  - id: CPUHigh
    metric: cpu
    op: ">"
    threshold: 80
  - id: CPUAvgHigh
    metric: cpu
    op: ">"
    threshold: 70
    window: 10m
    aggregate: mean
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, data: bytes | None = None, timeout: float = 600) -> bytes:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 only
        return bytes(r.read())


def _peak_kb(pid: int) -> int:
    """VmHWM of a running process, in KiB (0 when unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _timed(cmd: list[str], cwd: Path, timer: str | None) -> tuple[float, int]:
    """Wall seconds and peak KiB (via /usr/bin/time) of one run of ``cmd``. A run that says it dropped
    data (vmalert when a remote write is refused) fails the benchmark: its episodes would be short."""
    t = time.perf_counter()
    out = subprocess.run([timer, "-f", "%M", *cmd] if timer else cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {out.stderr[-2000:]}")
    if "dropping" in out.stderr or "failed" in out.stderr:
        raise RuntimeError(f"{cmd[0]} lost data: {out.stderr[-2000:]}")
    return elapsed, int(out.stderr.strip().splitlines()[-1]) if timer else 0


# One more run of ours with marks at each stage (a wrapper around the functions the command calls, run as
# the command runs): where the whole-process time and memory go, printed beside the ratio it explains.
_STAGES = r"""
import sys, time, threading
T0 = time.perf_counter()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 >> 20
peak = [0]
def sample():
    while True:
        peak[0] = max(peak[0], rss())
        time.sleep(0.01)
threading.Thread(target=sample, daemon=True).start()
marks = [("start", 0.0, rss())]
import perfalert_lab.cli as cli
marks.append(("imports", time.perf_counter() - T0, rss()))
import perfalert_lab.reading.files as files
import perfalert_lab.prometheus.backtest as pb
import perfalert_lab.backtesting as bt
def mark(mod, name, label):
    fn = getattr(mod, name)
    def wrapped(*a, **k):
        out = fn(*a, **k)
        marks.append((label, time.perf_counter() - T0, rss()))
        return out
    setattr(mod, name, wrapped)
mark(files, "read_series", "read")
mark(pb, "evaluate_rule_file", "store and rules (rule file)")
mark(pb, "_expression_series", "report series (rule file)")
mark(pb._AlertRows, "tables", "tables (rule file)")
mark(bt, "run", "rules and tables (our rules)")
cli.read_series = files.read_series  # the command's own reference to it
mark(cli, "write_outputs", "writing (report and CSVs)")
cli.run()  # as the console script runs it (its arguments are sys.argv[1:])
parts = []
for (_, t0, _), (label, t1, mb) in zip(marks, marks[1:]):
    parts.append(f"{label} {t1 - t0:.2f}s/{mb}MB")
print("STAGES " + "; ".join(parts) + f"; total {time.perf_counter() - T0:.2f}s, peak (sampled) {peak[0]}MB")
"""


def _stages(cmd: list[str], cwd: Path) -> str:
    """Our command's stages, one run: seconds each and the resident memory after it."""
    out = subprocess.run([sys.executable, "-c", _STAGES, *cmd[1:]], cwd=cwd, capture_output=True, text=True)
    line = [x for x in out.stdout.splitlines() if x.startswith("STAGES ")]
    return line[-1][len("STAGES "):] if line else f"(no stage marks: {out.stderr[-300:]})"


def _episodes_from_alerts(alerts: pd.DataFrame) -> set[tuple[str, str, int, int]]:
    """(alertname, source, first firing ms, last firing ms) of our alerts table."""
    out = set()
    for r in alerts.itertuples():
        fired = pd.Timestamp(r.fired_at).value // 1_000_000
        last = (pd.Timestamp(r.resolved_at).value // 1_000_000 - 60_000) if not pd.isna(r.resolved_at) else -1
        out.add((str(r.rule_id), str(r.source), fired, last))
    return out


def _episodes_from_vm(lines: bytes, end_ms: int) -> set[tuple[str, str, int, int]]:
    out = set()
    for line in lines.splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        m = row["metric"]
        if m.get("alertstate") != "firing":
            continue
        ts = np.array(sorted(row["timestamps"]), dtype=np.int64)
        if not len(ts):
            continue
        breaks = np.flatnonzero(np.diff(ts) > 60_000)
        starts = np.r_[ts[0], ts[breaks + 1]]
        ends = np.r_[ts[breaks], ts[-1]]
        for a, b in zip(starts, ends, strict=True):
            out.add((m["alertname"], m.get("source", ""), int(a), -1 if b >= end_ms else int(b)))
    return out


def bench_vs_vmalert(record: Callable[..., None], median_time: Callable[..., float], make_frame: Callable[..., Any],
                     series: int = 1000, quiet: bool = False) -> None:
    """``quiet``: the values 15 lower, so the rules fire about as often as in the issue's measurement
    (about 12k episodes per 100 series a week) rather than at every other walk across 80."""
    vm, vmalert = shutil.which("victoria-metrics"), shutil.which("vmalert")
    if vm is None or vmalert is None:
        print("victoria-metrics / vmalert not installed (Debian: apt-get install victoria-metrics): skipping the "
              "vmalert -replay comparison", flush=True)
        return
    timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    steps = 7 * 24 * 60
    frame = make_frame(series * steps, series=series, seed=3)
    if quiet:
        frame["value"] -= 15.0
    case = "quiet" if quiet else "busy"
    start_ms = int(frame["timestamp"].iloc[0].value // 1_000_000)
    end_ms = start_ms + (steps - 1) * 60_000
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        frame.to_parquet(d / "cpu.parquet")
        (d / "rules.yml").write_text(RULES)
        (d / "own.yml").write_text(OWN_RULES)
        (d / "annotated.yml").write_text(ANNOTATED_RULES)
        perfalert = str(Path(sys.executable).parent / "perfalert")
        ours_cmd = [perfalert, "backtest", "cpu.parquet", "--rules", "rules.yml", "--out", "out"]
        own_cmd = [perfalert, "backtest", "cpu.parquet", "--rules", "own.yml", "--out", "own"]
        t_ours = median_time(lambda: subprocess.run(ours_cmd, cwd=d, capture_output=True, check=True), 3)
        _, ours_kb = _timed(ours_cmd, d, timer)
        t_own = median_time(lambda: subprocess.run(own_cmd, cwd=d, capture_output=True, check=True), 3)
        _, own_kb = _timed(own_cmd, d, timer)
        noted_cmd = [perfalert, "backtest", "cpu.parquet", "--rules", "annotated.yml", "--out", "noted"]
        t_noted = median_time(lambda: subprocess.run(noted_cmd, cwd=d, capture_output=True, check=True), 3)
        _, noted_kb = _timed(noted_cmd, d, timer)
        import perfalert_lab as pal

        input_bytes = int(pal.read_metrics(d / "cpu.parquet", order="series").memory_usage(deep=True).sum())
        ours = _episodes_from_alerts(pd.read_csv(d / "out" / "alerts.csv", parse_dates=["fired_at", "resolved_at"]))
        stages = {"rule file": _stages(ours_cmd, d), "own rules": _stages(own_cmd, d)}
        own = _episodes_from_alerts(pd.read_csv(d / "own" / "alerts.csv", parse_dates=["fired_at", "resolved_at"]))
        noted = _episodes_from_alerts(pd.read_csv(d / "noted" / "alerts.csv",
                                                  parse_dates=["fired_at", "resolved_at"]))

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        # vmalert writes its ALERTS in batches larger than VictoriaMetrics' default 32 MB request limit:
        # refused, they are retried for seconds and then dropped (its replay then lacks the last hours)
        proc = subprocess.Popen([vm, f"-storageDataPath={d / 'vm'}", "-retentionPeriod=100y",
                                 f"-httpListenAddr=127.0.0.1:{port}", "-loggerLevel=ERROR",
                                 "-maxInsertRequestSize=1073741824"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    _get(f"{base}/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            vals = frame["value"].to_numpy().reshape(series, steps)
            stamps = (start_ms + np.arange(steps, dtype=np.int64) * 60_000).tolist()
            body = "\n".join(json.dumps({"metric": {"__name__": "cpu", "source": f"host-{i:04d}"},
                                         "values": vals[i].tolist(), "timestamps": stamps})
                             for i in range(series)).encode()
            t = time.perf_counter()
            _get(f"{base}/api/v1/import", body)
            _get(f"{base}/internal/force_flush")
            t_import = time.perf_counter() - t
            span = [f"-replay.timeFrom={pd.Timestamp(start_ms, unit='ms', tz='UTC'):%Y-%m-%dT%H:%M:%SZ}",
                    f"-replay.timeTo={pd.Timestamp(end_ms + 60_000, unit='ms', tz='UTC'):%Y-%m-%dT%H:%M:%SZ}"]
            vm_cmd = [vmalert, "-rule=rules.yml", f"-datasource.url={base}", f"-remoteWrite.url={base}",
                      "-datasource.queryStep=0s", "-remoteWrite.maxQueueSize=10000000", "-replay.disableProgressBar",
                      "-replay.rulesDelay=0s", "-loggerLevel=ERROR", *span]
            runs: dict[str, tuple[float, int, bytes]] = {}
            for rules_file in ("rules.yml", "annotated.yml"):
                times = []
                theirs_kb = 0
                for _ in range(3):  # a fresh ALERTS series for each run: the previous replay's deleted
                    _get(f"{base}/api/v1/admin/tsdb/delete_series?match[]=ALERTS", b"")
                    _get(f"{base}/api/v1/admin/tsdb/delete_series?match[]=ALERTS_FOR_STATE", b"")
                    elapsed, kb = _timed([vm_cmd[0], f"-rule={rules_file}", *vm_cmd[2:]], d, timer)
                    times.append(elapsed)
                    theirs_kb = max(theirs_kb, kb)
                _get(f"{base}/internal/force_flush")
                time.sleep(1)
                runs[rules_file] = (float(np.median(times)), theirs_kb, _get(
                    f"{base}/api/v1/export?match[]=ALERTS&start={start_ms // 1000}&end={end_ms // 1000 + 60}"))
            t_theirs, theirs_kb, exported = runs["rules.yml"]
            t_theirs_noted, _, exported_noted = runs["annotated.yml"]
            vm_kb = _peak_kb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        theirs = _episodes_from_vm(exported, end_ms)
        # vmalert also evaluates at -replay.timeTo, one interval after the last sample; we stop at the last
        # sample (SPEC 3: ticks run to the latest sample), so what first fires there is counted apart
        after_end = {e for e in theirs if e[2] > end_ms}
        theirs -= after_end
        only_ours, only_theirs = ours - theirs, theirs - ours
        ties = _ties(frame, series, steps, start_ms, only_ours | only_theirs)
        record(f"perfalert backtest, rule file (2 rules) {series} {case} series x 1w, Parquet in, all outputs",
               seconds=t_ours, peak_mb=ours_kb / 1024, peak_over_input=ours_kb * 1024 / input_bytes)
        record(f"perfalert backtest, the same 2 alerts as our own rules, {series} {case} series, all outputs",
               seconds=t_own, peak_mb=own_kb / 1024, peak_over_input=own_kb * 1024 / input_bytes)
        record(f"vmalert -replay, same rules and data (imported apart: {t_import:.2f} s)", seconds=t_theirs,
               vmalert_peak_mb=theirs_kb / 1024, victoriametrics_peak_mb=vm_kb / 1024,
               speedup=t_theirs / t_ours, speedup_own_rules=t_theirs / t_own)
        theirs_noted = _episodes_from_vm(exported_noted, end_ms) - after_end
        record("the rule file annotated (labels, summary, description with $value formatted): ours / vmalert -replay",
               seconds=t_noted, peak_mb=noted_kb / 1024, vmalert_seconds=t_theirs_noted,
               speedup=t_theirs_noted / t_noted, episodes_unlike_unannotated=len(noted ^ ours),
               vmalert_episodes_unlike_unannotated=len(theirs_noted ^ theirs))
        for kind, text in stages.items():
            print(f"  where our time goes ({kind}, one run): {text}", flush=True)
        record("firing episodes: ours / vmalert / differing / of them float ties", ours=len(ours), vmalert=len(theirs),
               differing=len(only_ours) + len(only_theirs), float_ties=ties, vmalert_after_the_data=len(after_end))
        own_only, theirs_only = own - theirs, theirs - own
        record("firing episodes, our own rules: ours / vmalert / differing / of them float ties / not the rule "
               "file's", ours=len(own), vmalert=len(theirs), differing=len(own_only) + len(theirs_only),
               float_ties=_ties(frame, series, steps, start_ms, own_only | theirs_only),
               unlike_rule_file=len(own ^ ours))


def _ties(frame: pd.DataFrame, series: int, steps: int, start_ms: int,
          differing: set[tuple[str, str, int, int]]) -> int:
    """Differing episodes whose edge has the compared value within 1e-9 of its threshold (a float tie:
    the engines sum windows in other orders)."""
    vals = frame["value"].to_numpy().reshape(series, steps)
    avg = pd.DataFrame(vals.T).rolling(10, min_periods=1).mean().to_numpy().T  # (t-10m, t] at 1m samples
    n = 0
    for name, source, first, _last in differing:
        i = int(source.rsplit("-", 1)[1])
        j = (first - start_ms) // 60_000
        near = range(max(j - 2, 0), min(j + 3, steps))
        v, thr = (vals, 80.0) if name == "CPUHigh" else (avg, 70.0)
        if any(abs(v[i, k] - thr) < 1e-9 for k in near):
            n += 1
    return n


if __name__ == "__main__":  # python bench/vmalert_bench.py [SERIES]
    sys.path.insert(0, os.path.dirname(__file__))
    from run import make_frame, median_time, record  # type: ignore[import-not-found]

    bench_vs_vmalert(record, median_time, make_frame, int(sys.argv[1]) if len(sys.argv) > 1 else 100,
                     quiet="--quiet" in sys.argv)

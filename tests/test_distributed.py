"""The dask path gives the same tables as pandas, on a 2-worker distributed.LocalCluster."""

from __future__ import annotations

import pandas as pd
import pytest

import perfalert_lab as pal

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

RULES = pal.parse_rules("""
version: 1
rules:
  - {id: cpu, metric: cpu, threshold: 85, for: 3m, cooldown: 20m, notify: [log, sms], repeat_interval: 30m,
     escalation: {delay: 10m, max: 2, check_every: 5m}}
  - {id: lat, metric: latency_ms, op: ">", threshold: 350, window: 5m, aggregate: p90, clear: 300}
  - {id: spikes, metric: cpu, mode: sample, threshold: 95, cooldown: 10m, notify: [console]}
channels: {sms: {max_per_hour: 3}}
responders: {ack_after: {distribution: lognormal, median: 8m, sigma: 0.7, seed: 2}, resolve_after: 30m}
""")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                       silence_logs=50)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.parametrize("clock", [pal.SampleClock(), pal.IntervalClock("2m", lookback="5m")], ids=str)
def test_dask_equals_pandas_on_a_fleet(client, clock) -> None:
    frame, incidents = pal.datasets.synthetic_fleet(hosts=5, days=3, seed=11)
    expected = pal.backtest(frame, RULES, clock=clock, incidents=incidents)
    # partitions cut across series on purpose: the dask path must regroup them
    ddf = dd.from_pandas(frame.sample(frac=1.0, random_state=1), npartitions=4)
    got = pal.backtest(ddf, RULES, clock=clock, incidents=incidents)
    assert len(expected.alerts) > 10
    pd.testing.assert_frame_equal(got.alerts, expected.alerts)
    pd.testing.assert_frame_equal(got.notifications, expected.notifications)
    pd.testing.assert_frame_equal(got.stats, expected.stats)


def test_cli_backtest_with_workers_equals_pandas(tmp_path) -> None:
    from conftest import NAB

    from perfalert_lab.cli import main

    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - {id: lat, metric: ec2_request_latency_system_failure, threshold: 55}\n"
                     "  - {id: temp, metric: machine_temperature_system_failure, op: '<', threshold: 50, for: 10m}\n")
    files = [str(NAB / "realKnownCause" / f) for f in ("ec2_request_latency_system_failure.csv",
                                                        "machine_temperature_system_failure.csv")]
    assert main(["backtest", *files, "--rules", str(rules), "--out", str(tmp_path / "a")]) == 0
    assert main(["backtest", *files, "--rules", str(rules), "--workers", "2", "--out", str(tmp_path / "b")]) == 0
    for name in ("alerts.csv", "notifications.csv", "stats.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_parquet_dataset_partitioned_by_source(client, tmp_path) -> None:
    from perfalert_lab.cli import main

    frame, _ = pal.datasets.synthetic_fleet(hosts=3, days=2, seed=5)
    dataset = tmp_path / "fleet"
    frame.to_parquet(dataset, partition_cols=["source"])
    # pandas reads the dataset whole, partition column included
    loaded = pal.read_metrics(dataset)
    pd.testing.assert_frame_equal(loaded[["timestamp", "source", "metric", "value"]].sort_values(
        ["source", "metric", "timestamp"]).reset_index(drop=True),
        frame.sort_values(["source", "metric", "timestamp"]).reset_index(drop=True), check_dtype=False)
    expected = pal.backtest(frame, RULES)
    got = pal.backtest(dd.read_parquet(dataset), RULES)
    pd.testing.assert_frame_equal(got.alerts, expected.alerts)
    pd.testing.assert_frame_equal(got.stats, expected.stats)
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules:\n  - {id: cpu, metric: cpu, threshold: 85, for: 3m}\n")
    assert main(["backtest", str(dataset), "--rules", str(rules), "--out", str(tmp_path / "a")]) == 0
    assert main(["backtest", str(dataset), "--rules", str(rules), "--workers", "2", "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "alerts.csv").read_text() == (tmp_path / "b" / "alerts.csv").read_text()


def test_dask_says_so_when_a_rule_matches_no_series(client) -> None:
    frame, _ = pal.datasets.synthetic_fleet(hosts=2, days=1, seed=3)
    typo = pal.Rule(id="cpu", metric="cpuu", threshold=80)
    ddf = dd.from_pandas(frame, npartitions=2)
    with pytest.warns(pal.errors.NoSeriesWarning, match="did you mean 'cpu'"):
        pal.backtest(ddf, typo)
    with pytest.raises(pal.RulesError, match="rule 'cpu': metric 'cpuu' matches no series"):
        pal.backtest(ddf, typo, strict=True)

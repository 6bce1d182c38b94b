"""Reading what users bring: metric files (CSV, Parquet, NAB, Prometheus's exposition and JSON
formats) and incident files, into the frames of :mod:`perfalert_lab.frames`."""

from .files import is_parquet_dataset, iter_files, read_incidents, read_metrics, read_series
from .prometheus import is_prometheus_file, read_prometheus

__all__ = ["is_parquet_dataset", "is_prometheus_file", "iter_files", "read_incidents", "read_metrics",
           "read_prometheus", "read_series"]

"""Reading SLO specifications as teams keep them: sloth's ``prometheus/v1`` spec, its Kubernetes
``PrometheusServiceLevel`` resource, and OpenSLO ``kind: SLO`` (``openslo/v1alpha`` as sloth reads it,
and ``openslo/v1``). Every problem names the file and line; nothing half-read is returned."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._time import format_duration, parse_duration
from ..errors import InputFileNotFound, RulesError
from ..rules.yaml_io import MAX_BYTES, LocatedDoc, compose_documents
from .model import SLO, SLOTH_WINDOWS

__all__ = ["load_slos", "parse_slos"]

_UNITS = {"minute": "m", "hour": "h", "day": "d", "week": "w"}


def load_slos(path: str | os.PathLike[str], *, default_window: str = "30d") -> list[SLO]:
    """The SLOs of a spec file (sloth ``prometheus/v1``, ``PrometheusServiceLevel``, OpenSLO ``SLO``)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileNotFound(f"{p}: SLO spec file not found")
    if p.stat().st_size > MAX_BYTES:
        raise RulesError(f"{p}: larger than {MAX_BYTES} bytes; an SLO spec is small")
    return parse_slos(p.read_text(encoding="utf-8"), name=str(p), default_window=default_window)


def parse_slos(text: str, *, name: str = "<slo spec>", default_window: str = "30d") -> list[SLO]:
    """The SLOs of spec text (see :func:`load_slos`); several YAML documents may each hold specs."""
    docs = compose_documents(text, name)
    problems: list[str] = []
    slos: list[SLO] = []
    for data, doc in docs:
        problems += [f"{name}:{line}: {msg}" if line else f"{name}: {msg}" for line, msg in doc.problems]
        reader = _Reader(name, doc, problems)
        if not isinstance(data, dict):
            problems.append(f"{name}:1: expected a mapping (a sloth or OpenSLO spec), got {type(data).__name__}")
            continue
        kind, version = data.get("kind"), data.get("version") or data.get("apiVersion")
        if version == "prometheus/v1":
            slos += reader.sloth(data, (), camel=False, default_window=default_window)
        elif kind == "PrometheusServiceLevel":
            spec = data.get("spec")
            if not isinstance(spec, dict):
                reader.add(("kind",), "a PrometheusServiceLevel needs 'spec:' with service and slos")
                continue
            slos += reader.sloth(spec, ("spec",), camel=True, default_window=default_window)
        elif kind == "SLO" and str(version).startswith("openslo/"):
            slos += reader.openslo(data, str(version))
        else:
            reader.add((), "not an SLO spec: expected sloth's 'version: prometheus/v1', a 'kind: "
                           "PrometheusServiceLevel' or an OpenSLO 'apiVersion: openslo/v1' with 'kind: SLO'")
    if not docs:
        problems.append(f"{name}: the file holds no SLO spec")
    if problems:
        raise RulesError(problems)
    seen: set[str] = set()
    for slo in slos:
        if slo.id in seen:
            raise RulesError(f"{name}: SLO {slo.id!r} is defined twice")
        seen.add(slo.id)
    return slos


class _Reader:
    def __init__(self, name: str, doc: LocatedDoc, problems: list[str]) -> None:
        self.name, self.doc, self.problems = name, doc, problems

    def add(self, path: tuple[Any, ...], msg: str) -> None:
        line = self.doc.line(path)
        self.problems.append(f"{self.name}:{line}: {msg}" if line else f"{self.name}: {msg}")

    def mapping(self, d: Any, path: tuple[Any, ...], key: str) -> dict[str, Any]:
        value = d.get(key) if isinstance(d, dict) else None
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add((*path, key), f"'{key}' must be a mapping")
            return {}
        return value

    def labels(self, d: Any, path: tuple[Any, ...], key: str) -> dict[str, str]:
        out = {}
        for k, v in self.mapping(d, path, key).items():
            if isinstance(v, dict | list) or v is None:
                self.add((*path, key, k), f"label {k!r} must be a plain value")
                continue
            out[str(k)] = str(v) if not isinstance(v, bool) else str(v).lower()
        return out

    def known(self, d: dict[str, Any], path: tuple[Any, ...], keys: set[str], what: str) -> None:
        for k in d:
            if k not in keys:
                self.add((*path, k), f"unknown key {k!r} in {what} (known: {', '.join(sorted(keys))})")

    def sloth(self, spec: dict[str, Any], path: tuple[Any, ...], *, camel: bool,
              default_window: str) -> list[SLO]:
        def k(snake: str) -> str:
            if not camel:
                return snake
            head, *rest = snake.split("_")
            return head + "".join(p.title() for p in rest)

        top = {"service", "labels", "slos", *(() if camel else ("version", "slo_plugins"))}
        self.known(spec, path, top | ({k("slo_plugins")} if camel else set()), "the spec")
        service = spec.get("service")
        if not isinstance(service, str) or not service:
            self.add((*path, "service") if "service" in spec else path, "the spec needs 'service: <name>'")
            service = ""
        common = self.labels(spec, path, "labels")
        raw = spec.get("slos")
        if not isinstance(raw, list) or not raw:
            self.add((*path, "slos") if "slos" in spec else path, "the spec needs 'slos:', a list of SLOs")
            return []
        out = []
        for i, s in enumerate(raw):
            where = (*path, "slos", i)
            if not isinstance(s, dict):
                self.add(where, "an SLO must be a mapping with name, objective, sli and alerting")
                continue
            self.known(s, where, {"name", "objective", "description", "labels", "sli", "alerting",
                                  k("slo_plugins")}, "an SLO")
            sli = self.mapping(s, where, "sli")
            errors = total = ratio = None
            if "plugin" in sli:
                plugin = sli["plugin"].get("id") if isinstance(sli["plugin"], dict) else sli["plugin"]
                self.add((*where, "sli", "plugin"), f"SLI plugin {plugin!r} is not supported; write the SLI as "
                                                    f"'events' ({k('error_query')}, {k('total_query')}) or 'raw'")
            elif "events" in sli:
                ev = self.mapping(sli, (*where, "sli"), "events")
                errors, total = ev.get(k("error_query")), ev.get(k("total_query"))
                for key, q in ((k("error_query"), errors), (k("total_query"), total)):
                    if not isinstance(q, str) or not q.strip():
                        self.add((*where, "sli", "events", key) if key in ev else (*where, "sli", "events"),
                                 f"'{key}' must be a PromQL query with {{{{.window}}}}")
            elif "raw" in sli:
                ratio = self.mapping(sli, (*where, "sli"), "raw").get(k("error_ratio_query"))
                if not isinstance(ratio, str) or not ratio.strip():
                    self.add((*where, "sli", "raw"), f"'{k('error_ratio_query')}' must be a PromQL query")
            else:
                self.add((*where, "sli") if "sli" in s else where, "the SLO needs 'sli:' with 'events' or 'raw'")
            alerting = self.mapping(s, where, "alerting")
            page = self.mapping(alerting, (*where, "alerting"), k("page_alert"))
            ticket = self.mapping(alerting, (*where, "alerting"), k("ticket_alert"))
            page_on, ticket_on = not page.get("disable", False), not ticket.get("disable", False)
            if (page_on or ticket_on) and not alerting.get("name"):
                self.add((*where, "alerting") if alerting else where,
                         "alerting needs 'name:' (the alert's name), or disable both page and ticket alerts")
            try:
                slo = SLO(
                    name=str(s.get("name") or ""), objective=s.get("objective"),  # type: ignore[arg-type]
                    errors=errors, total=total, error_ratio=ratio, window=default_window, service=service,
                    labels={**common, **self.labels(s, where, "labels")},
                    alert_name=str(alerting.get("name") or ""),
                    alert_labels=self.labels(alerting, (*where, "alerting"), "labels"),
                    annotations=self.labels(alerting, (*where, "alerting"), "annotations"),
                    page_labels=self.labels(page, (*where, "alerting", k("page_alert")), "labels"),
                    ticket_labels=self.labels(ticket, (*where, "alerting", k("ticket_alert")), "labels"),
                    page_annotations=self.labels(page, (*where, "alerting", k("page_alert")), "annotations"),
                    ticket_annotations=self.labels(ticket, (*where, "alerting", k("ticket_alert")), "annotations"),
                    page_for=str(page.get("for") or "0s"), ticket_for=str(ticket.get("for") or "0s"),
                    windows=SLOTH_WINDOWS, page_alert=page_on, ticket_alert=ticket_on,
                    description=str(s.get("description") or ""))
            except RulesError as exc:
                for p in exc.problems:
                    self.add(where, p)
                continue
            out.append(slo)
        return out

    def openslo(self, data: dict[str, Any], version: str) -> list[SLO]:
        meta = self.mapping(data, (), "metadata")
        spec = self.mapping(data, (), "spec")
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            self.add(("metadata",), "an OpenSLO SLO needs 'metadata: {name: ...}'")
            return []
        window = self._openslo_window(spec)
        objectives = spec.get("objectives")
        if not isinstance(objectives, list) or not objectives:
            self.add(("spec",), "an OpenSLO SLO needs 'spec.objectives', a list with a target")
            return []
        indicator = self.mapping(self.mapping(spec, ("spec",), "indicator"), ("spec", "indicator"), "spec")
        out = []
        for i, o in enumerate(objectives):
            where = ("spec", "objectives", i)
            if not isinstance(o, dict):
                self.add(where, "an objective must be a mapping with a target")
                continue
            ratio_metric = o.get("ratioMetrics") or indicator.get("ratioMetric") or spec.get("ratioMetric")
            target = o.get("target")
            if target is None and o.get("targetPercent") is not None:
                target = float(o["targetPercent"]) / 100
            if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < float(target) < 1:
                self.add((*where, "target") if "target" in o else where,
                         f"target {target!r} must be a ratio between 0 and 1 (e.g. 0.999)")
                continue
            if not isinstance(ratio_metric, dict):
                self.add(where, "only ratio SLIs are supported: 'ratioMetrics' (v1alpha) or "
                                "'indicator.spec.ratioMetric' (v1) with good or bad, and total")
                continue
            queries = {}
            for key in ("good", "bad", "total"):
                q = ratio_metric.get(key)
                text = None
                if isinstance(q, dict):
                    text = q.get("query") or (self.mapping(q.get("metricSource") or {}, (), "spec").get("query"))
                if text is not None:
                    queries[key] = str(text)
            if "total" not in queries or not ({"good", "bad"} & set(queries)):
                self.add(where, "the ratio SLI needs a PromQL 'total' query and a 'good' or 'bad' one")
                continue
            errors: str | None = None
            total: str | None = None
            ratio: str | None = None
            if "bad" in queries:
                errors, total = queries["bad"], queries["total"]
            else:
                ratio = f"\n  1 - (\n    (\n      {queries['good'].strip()}\n    )\n    /\n    (\n" \
                        f"      {queries['total'].strip()}\n    )\n  )\n"
            try:
                out.append(SLO(name=f"{name}-{i}", objective=round(float(target) * 100, 10), errors=errors,
                               total=total, error_ratio=ratio, window=window, service=str(spec.get("service") or ""),
                               page_alert=False, ticket_alert=False, windows=SLOTH_WINDOWS,
                               description=str(spec.get("description") or "")))
            except RulesError as exc:
                for p in exc.problems:
                    self.add(where, p)
        return out

    def _openslo_window(self, spec: dict[str, Any]) -> str:
        windows = spec.get("timeWindows") or spec.get("timeWindow")
        if not windows:
            return "30d"
        w = windows[0] if isinstance(windows, list) else windows
        if not isinstance(w, dict):
            self.add(("spec",), "timeWindow must be a list of mappings with a duration")
            return "30d"
        if "duration" in w:
            return format_duration(parse_duration(str(w["duration"])))
        unit = _UNITS.get(str(w.get("unit", "")).lower())
        if unit is None or not isinstance(w.get("count"), int):
            self.add(("spec", "timeWindows"), "timeWindows needs 'count' and 'unit' (Minute, Hour, Day, Week)")
            return "30d"
        return f"{w['count']}{unit}"

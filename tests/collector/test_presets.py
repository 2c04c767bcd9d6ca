"""Diff the kit's collector pipelines against the dated facts of Coralogix's presets.

collector/presets/coralogix-presets.yaml holds names and settings read from Coralogix's Helm
chart (commit and date inside). Every preset fact must hold in collector/config.yaml; the kit
may add to it (extra dimensions, kept keys), never drop. A drift test shows the differ fails.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.collector.conftest import COLLECTOR_DIR, CONFIG

FACTS = COLLECTOR_DIR / "presets" / "coralogix-presets.yaml"
# v0.158 canonical type names for the preset's older spellings
RENAME = {
    "spanmetrics": "span_metrics",
    "hostmetrics": "host_metrics",
    "resourcedetection": "resource_detection",
}


def kit_name(preset_name: str) -> str:
    kind, _, name = preset_name.partition("/")
    kind = RENAME.get(kind, kind)
    return f"{kind}/{name}" if name else kind


def _dims(conn: dict[str, Any]) -> set[str]:
    return {d["name"] for d in conn.get("dimensions") or []}


def _statements(proc: dict[str, Any], signal: str, context: str) -> list[str]:
    out: list[str] = []
    for block in proc.get(f"{signal}_statements") or []:
        if block.get("context") == context:
            out += block.get("statements") or []
    return out


def _keep_keys(statements: list[str]) -> set[str]:
    for st in statements:
        if m := re.match(r"keep_keys\(attributes, \[(.*)\]\)", st):
            return set(re.findall(r'"([^"]*)"', m.group(1)))
    return set()


def diff(config: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """Every preset fact the config does not satisfy, as a readable line."""
    problems: list[str] = []
    conns = config.get("connectors") or {}
    procs = config.get("processors") or {}
    pipes = (config.get("service") or {}).get("pipelines") or {}
    extra = facts["spanmetricsConnectorV0158"]

    sm = facts["spanMetrics"]
    for pname, want in sm["connectors"].items():
        name = kit_name(pname)
        have = conns.get(name)
        if have is None:
            problems.append(f"connector {name} (preset {pname}) missing")
            continue
        if str(have.get("namespace", "")) != str(want["namespace"]):
            problems.append(f"{name}: namespace {have.get('namespace')!r} != {want['namespace']!r}")
        if missing := set(want.get("dimensions", [])) - _dims(have):
            problems.append(f"{name}: dimensions missing {sorted(missing)}")
        excluded = set(have.get("exclude_dimensions") or [])
        if missing := set(want.get("exclude_dimensions", [])) - excluded:
            problems.append(f"{name}: exclude_dimensions missing {sorted(missing)}")
        if str(have.get("metrics_flush_interval")) != str(want["metrics_flush_interval"]):
            problems.append(f"{name}: metrics_flush_interval {have.get('metrics_flush_interval')}")
        if "histogram_buckets" in want:
            buckets = ((have.get("histogram") or {}).get("explicit") or {}).get("buckets")
            if [str(b) for b in buckets or []] != [str(b) for b in want["histogram_buckets"]]:
                problems.append(
                    f"{name}: histogram buckets {buckets} != {want['histogram_buckets']}"
                )
        if have.get("add_resource_attributes") is not extra["add_resource_attributes"]:
            problems.append(f"{name}: add_resource_attributes must be true")
        if missing := set(extra["exclude_dimensions"]) - excluded:
            problems.append(f"{name}: must exclude {sorted(missing)}")

    traces = pipes.get("traces") or {}
    if "span_metrics" not in (traces.get("exporters") or []):
        problems.append("traces pipeline does not feed span_metrics")
    for variant, want in sm["variant_pipelines"].items():
        receiver, exporter = kit_name(want["receiver"]), kit_name(want["exporter"])
        if receiver not in (traces.get("exporters") or []):
            problems.append(f"traces pipeline does not export to {receiver}")
        p = pipes.get(f"traces/{variant}")
        if p is None:
            problems.append(f"pipeline traces/{variant} missing")
            continue
        if p.get("receivers") != [receiver] or p.get("exporters") != [exporter]:
            problems.append(f"traces/{variant}: {p.get('receivers')} -> {p.get('exporters')}")
        chain = [x for x in p.get("processors") or [] if x not in ("memory_limiter", "batch")]
        if chain != [kit_name(x) for x in want["processors"]]:
            problems.append(f"traces/{variant}: processors {chain} != {want['processors']}")
    to_cx = [p for p in pipes.values() if any(e == "coralogix" for e in p.get("exporters") or [])]
    for pname in sm["connectors"]:
        if not any(kit_name(pname) in (p.get("receivers") or []) for p in to_cx):
            problems.append(f"{kit_name(pname)} output reaches no pipeline exporting to coralogix")

    for pname, want in sm["processors"].items():
        have = procs.get(kit_name(pname))
        if have is None:
            problems.append(f"processor {pname} missing")
            continue
        if (
            "traces.span" in want
            and ((have.get("traces") or {}).get("span") or []) != want["traces.span"]
        ):
            problems.append(f"{pname}: filter {have.get('traces')} != {want['traces.span']}")
        if "resource_keep_keys" in want:
            kept = _keep_keys(_statements(have, "trace", "resource"))
            if missing := set(want["resource_keep_keys"]) - kept:
                problems.append(f"{pname}: resource keep_keys lacks {sorted(missing)}")
        if "span_keep_keys" in want:
            kept = _keep_keys(_statements(have, "trace", "span"))
            if kept != set(want["span_keep_keys"]):
                problems.append(f"{pname}: span keep_keys {sorted(kept)}")

    hm = facts["hostMetrics"]
    receiver = (config.get("receivers") or {}).get(kit_name(hm["receiver"])) or {}
    scrapers = receiver.get("scrapers") or {}
    if missing := set(hm["scrapers"]) - set(scrapers):
        problems.append(f"host_metrics: scrapers missing {sorted(missing)}")
    for scraper, metrics in hm["enabled_metrics"].items():
        for metric in metrics:
            cfg = ((scrapers.get(scraper) or {}).get("metrics") or {}).get(metric) or {}
            if cfg.get("enabled") is not True:
                problems.append(f"host_metrics/{scraper}: {metric} not enabled")
    metric_receivers = (pipes.get("metrics") or {}).get("receivers") or []
    # The process scraper may run on a host_metrics receiver of its own (a longer interval).
    process: dict[str, Any] = {}
    for name in metric_receivers:
        if name.split("/")[0] == "host_metrics":
            own_scrapers = ((config.get("receivers") or {}).get(name) or {}).get("scrapers") or {}
            process = own_scrapers.get("process") or process
    for metric in hm["process_metrics"]:
        cfg = ((process.get("metrics") or {}).get(metric)) or {}
        if cfg.get("enabled") is not True:
            problems.append(f"host_metrics/process: {metric} not enabled")
    if "host_metrics" not in metric_receivers:
        problems.append("metrics pipeline does not receive host_metrics")
    own = (config.get("receivers") or {}).get("host_metrics/process") or {}
    interval = str(own.get("collection_interval", "")).rsplit(":-", 1)[-1].rstrip("}")
    if own and interval != facts["linuxStandalone"]["collection_interval"]:
        problems.append(f"host_metrics/process: interval {interval} is not the standalone one")

    ml = procs.get("memory_limiter") or {}
    for key, want in facts["memoryLimiter"].items():
        if str(ml.get(key)) != str(want):
            problems.append(f"memory_limiter: {key} {ml.get(key)} != {want}")

    rd = procs.get("resource_detection") or {}
    attrs = (rd.get("system") or {}).get("resource_attributes") or {}
    for a in facts["resourceDetection"]["env"]["system_resource_attributes"]:
        if (attrs.get(a) or {}).get("enabled") is not True:
            problems.append(f"resource_detection: system {a} not enabled")
    if rd.get("override") is not facts["resourceDetection"]["env"]["override"]:
        problems.append("resource_detection: override must be false")

    he = facts["hostEntityEvents"]
    pipe = pipes.get(he["pipeline"]) or {}
    if pipe.get("receivers") != [kit_name(he["receiver"])]:
        problems.append(f"{he['pipeline']}: receivers {pipe.get('receivers')}")
    chain = [x for x in pipe.get("processors") or [] if x != "batch"]
    if chain != [kit_name(x) for x in he["processors"]]:
        problems.append(f"{he['pipeline']}: processors {chain} != {he['processors']}")
    ent = procs.get(kit_name("resourcedetection/entity")) or {}
    eattrs = (ent.get("system") or {}).get("resource_attributes") or {}
    for a in he["resourcedetection/entity"]["system_resource_attributes"]:
        if (eattrs.get(a) or {}).get("enabled") is not True:
            problems.append(f"resource_detection/entity: {a} not enabled")
    tf = procs.get("transform/entity-event") or {}
    want_t = he["transform/entity-event"]
    if _statements(tf, "log", "log") != want_t["log_statements"]:
        problems.append(f"transform/entity-event log statements {_statements(tf, 'log', 'log')}")
    if _statements(tf, "log", "resource") != want_t["resource_statements"]:
        problems.append("transform/entity-event resource statements differ")
    exp_name = he["exporter"]["name"]
    exp = (config.get("exporters") or {}).get(exp_name) or {}
    if exp_name not in (pipe.get("exporters") or []):
        problems.append(f"{he['pipeline']} does not export to {exp_name}")
    if (exp.get("application_name"), exp.get("subsystem_name")) != (
        he["exporter"]["application_name"],
        he["exporter"]["subsystem_name"],
    ):
        problems.append(f"{exp_name}: application/subsystem")
    headers = ((exp.get("logs") or {}).get("headers")) or {}
    for k, v in he["exporter"]["logs_headers"].items():
        if headers.get(k) != v:
            problems.append(f"{exp_name}: header {k} != {v}")
    return problems


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    return yaml.safe_load(FACTS.read_text())


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


def test_facts_are_dated_and_sourced(facts: dict[str, Any]) -> None:
    src = facts["source"]
    assert src["repository"] == "coralogix/opentelemetry-helm-charts"
    assert re.fullmatch(r"[0-9a-f]{40}", src["commit"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(src["read"]))
    readme = (COLLECTOR_DIR / "README.md").read_text()
    assert src["commit"] in readme and "coralogix-presets.yaml" in readme


def test_config_follows_the_presets(config: dict[str, Any], facts: dict[str, Any]) -> None:
    assert diff(config, facts) == []


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda c: c["connectors"]["span_metrics/db"]["dimensions"].pop(0), "dimensions missing"),
        (lambda c: c["connectors"]["span_metrics/compact"].update(namespace="c"), "namespace"),
        (
            lambda c: c["connectors"]["span_metrics"].pop("add_resource_attributes"),
            "add_resource_attributes",
        ),
        (
            lambda c: c["connectors"]["span_metrics/db_compact"]["exclude_dimensions"].remove(
                "collector.instance.id"
            ),
            "collector.instance.id",
        ),
        (lambda c: c["service"]["pipelines"].pop("traces/db"), "traces/db missing"),
        (
            lambda c: c["receivers"]["host_metrics"]["scrapers"]["cpu"].pop("metrics"),
            "system.cpu.utilization",
        ),
        (
            lambda c: c["processors"]["transform/entity-event"]["log_statements"][0][
                "statements"
            ].pop(0),
            "log statements",
        ),
        (
            lambda c: c["processors"]["resource_detection"]["system"].pop("resource_attributes"),
            "host.id",
        ),
        (lambda c: c["processors"]["memory_limiter"].update(check_interval="1s"), "check_interval"),
        (
            lambda c: c["receivers"]["host_metrics/process"].update(collection_interval="10s"),
            "standalone",
        ),
        (
            lambda c: c["receivers"]["host_metrics/process"]["scrapers"]["process"]["metrics"].pop(
                "process.threads"
            ),
            "process.threads",
        ),
        (
            lambda c: c["service"]["pipelines"]["logs/resource_catalog"]["processors"].remove(
                "transform/entity-event"
            ),
            "processors",
        ),
    ],
)
def test_differ_catches_drift(
    config: dict[str, Any], facts: dict[str, Any], mutate, expect
) -> None:
    broken = copy.deepcopy(config)
    mutate(broken)
    problems = diff(broken, facts)
    assert any(expect in p for p in problems), problems


def test_offline_overlay_keeps_every_variant(facts: dict[str, Any]) -> None:
    """offline.yaml replaces the traces exporters list: it must keep the forward fan-out."""
    overlay = yaml.safe_load((COLLECTOR_DIR / "offline.yaml").read_text())
    exporters = overlay["service"]["pipelines"]["traces"]["exporters"]
    for want in facts["spanMetrics"]["variant_pipelines"].values():
        assert kit_name(want["receiver"]) in exporters
    assert "span_metrics" in exporters


def test_manifest_has_what_the_presets_use() -> None:
    manifest = (COLLECTOR_DIR / "builder-config.yaml").read_text()
    for module in (
        "processor/transformprocessor",
        "processor/filterprocessor",
        "connector/forwardconnector",
        "connector/spanmetricsconnector",
        "receiver/hostmetricsreceiver",
        "processor/resourcedetectionprocessor",
    ):
        assert module in manifest, module
    assert Path(FACTS).exists()

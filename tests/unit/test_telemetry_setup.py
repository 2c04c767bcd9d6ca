"""OTEL_SDK_DISABLED turns telemetry off cleanly; resource attributes follow the conventions
in docs/architecture.md."""

from __future__ import annotations

from stack.common.settings import ServiceName, Settings
from stack.common.telemetry import resource_attributes, setup_telemetry


def test_disabled_sdk_sets_nothing_up(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    telemetry = setup_telemetry(ServiceName.QUERY, Settings(), "1.0.0")
    assert telemetry.enabled is False
    telemetry.shutdown()  # a no-op, never an error


def test_resource_attributes() -> None:
    attrs = resource_attributes(ServiceName.STORAGE, Settings(), "1.2.3")
    assert attrs["service.name"] == "storage-service"
    assert attrs["cx.subsystem.name"] == "storage-service"
    assert attrs["service.namespace"] == "dataprime"
    assert attrs["service.version"] == "1.2.3"
    assert attrs["cx.application.name"] == "dataprime-workshop"
    assert attrs["deployment.environment.name"] == "workshop"

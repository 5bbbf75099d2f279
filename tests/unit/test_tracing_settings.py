"""Which OTEL_* variables turn tracing on, and to which exporters."""

from __future__ import annotations

import pytest

from config.settings import Settings


def exporters(**env: str) -> tuple[str, ...]:
    return Settings.from_env(env).traces_exporters


def test_tracing_is_off_without_any_otel_variable() -> None:
    assert exporters() == ()
    assert exporters(OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod") == ()


@pytest.mark.parametrize(
    "variable",
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SERVICE_NAME",
        "OTEL_TRACES_SAMPLER",
    ],
)
def test_any_tracing_variable_turns_it_on_exporting_otlp(variable: str) -> None:
    assert exporters(**{variable: "x"}) == ("otlp",)


def test_the_exporters_are_named_by_otel_traces_exporter() -> None:
    assert exporters(OTEL_TRACES_EXPORTER="console") == ("console",)
    assert exporters(OTEL_TRACES_EXPORTER="otlp, console,otlp") == ("otlp", "console")
    assert exporters(OTEL_TRACES_EXPORTER="none", OTEL_SERVICE_NAME="shop") == ()


def test_otel_sdk_disabled_turns_everything_off() -> None:
    assert exporters(OTEL_SDK_DISABLED="true", OTEL_TRACES_EXPORTER="otlp") == ()
    assert exporters(OTEL_SDK_DISABLED="false", OTEL_TRACES_EXPORTER="otlp") == ("otlp",)


def test_an_exporter_or_protocol_the_shop_lacks_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        exporters(OTEL_TRACES_EXPORTER="zipkin")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        exporters(OTEL_TRACES_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    # The traces-specific variable wins over the general one.
    assert exporters(
        OTEL_SERVICE_NAME="shop",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
    ) == ("otlp",)

"""ship-logs' configuration: the built-in destination's sink and limits."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from shared.config import ConfigError, Key, Keys, unknown_member_error

ENV_SHIP_LOGS = "GOVERNOR_SHIP_LOGS"
ENV_SHIP_LOGS_DLQ_URL = "GOVERNOR_SHIP_LOGS_DLQ_URL"
#: Namespace of the usage metrics (duration, memory, cold starts) ship-logs derives from REPORT lines.
USAGE_METRICS_NAMESPACE = "LogGroupGovernor/Lambda"
#: The usage metrics of one function, each with one dimension set (FunctionName; with Account on the
#: central archive): what a function costs when shipLogs.metrics.usage is on (tests count them from MetricSet).
USAGE_METRIC_NAMES = ("Invocations", "Duration", "BilledDuration", "MemorySize", "MaxMemoryUsed", "ColdStarts", "InitDuration")
#: CloudWatch's list price of a custom metric a month, for the first 10,000 metrics (us-east-1;
#: https://aws.amazon.com/cloudwatch/pricing/), prorated by the hour a metric gets data.
METRIC_MONTH_USD = 0.30
#: CloudWatch's list price of 1,000 PutMetricData requests (us-east-1).
PUT_METRIC_DATA_USD_PER_1000 = 0.01
DEFAULT_MAX_DIMENSION_VALUES = 100
MAX_MAX_DIMENSION_VALUES = 10_000
#: Metric lines (REPORT, MONITORING) of functions beyond metrics.maxDimensionValues, not published:
#: one metric of ship-logs' own, without a function dimension, so a flood of new names costs one metric.
METRIC_LINES_CAPPED_METRIC = "MetricLinesCapped"
DEFAULT_MAX_BATCH_BYTES = 5 * 1024 * 1024
MIN_MAX_BATCH_BYTES = 64 * 1024
MAX_MAX_BATCH_BYTES = 100 * 1024 * 1024
#: Batches of ship-logs' own log group, dropped: whatever subscribed it (a missed guard, a hand-made
#: filter, an account policy), shipping them would feed the function its own output, for ever.
OWN_LOG_GROUP_METRIC = "OwnLogGroupBatchesDropped"


class SinkKind(str, Enum):
    OPENSEARCH = "opensearch"
    HTTP = "http"
    FIREHOSE = "firehose"


class SinkAuth(str, Enum):
    NONE = "none"
    BASIC = "basic"
    SIGV4 = "sigv4"
    HEADER = "header"


_AUTH_BY_SINK = {
    SinkKind.OPENSEARCH: (SinkAuth.NONE, SinkAuth.BASIC, SinkAuth.SIGV4),
    SinkKind.HTTP: (SinkAuth.NONE, SinkAuth.BASIC, SinkAuth.HEADER),
    SinkKind.FIREHOSE: (SinkAuth.NONE,),
}
_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+|ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9/_.-]+)$"
)
_DOMAIN_ARN = re.compile(r"^arn:aws[a-z-]*:es:(?P<region>[a-z0-9-]+):\d{12}:domain/[a-z][a-z0-9-]{2,27}$")
_DELIVERY_STREAM_ARN = re.compile(r"^arn:aws[a-z-]*:firehose:[a-z0-9-]+:\d{12}:deliverystream/[A-Za-z0-9_.-]{1,64}$")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Set to "1" only where ship-logs runs locally (tests, the demo): lets it post to http://127.0.0.1.
#: The stack never sets it, and synth refuses a plain http:// endpoint.
ENV_ALLOW_LOOPBACK_HTTP = "GOVERNOR_ALLOW_LOOPBACK_HTTP"
#: The keys of the ``shipLogs`` object (governor:shipLogs, archive:shipLogs).
SHIP_LOGS = Keys(
    "shipLogs.", "shipLogs: the built-in destination's sink",
    Key("sink", str, SinkKind.FIREHOSE.value, "Where ship-logs delivers: firehose (the stack's encrypted S3 archive through Amazon "
        "Data Firehose, or deliveryStreamArn), opensearch (the _bulk API of a domain or cluster), or http (a JSON lines endpoint).",
        example="opensearch", schema={"enum": [k.value for k in SinkKind]}),
    Key("endpoint", str, "", "opensearch and http sinks: the https:// URL to deliver to.", example="https://search.example.com",
        schema={"pattern": "^(|https://.+)$"}),
    Key("index", str, "logs-%Y.%m.%d", "opensearch: the index name; strftime codes are filled in from each event's time.",
        example="cloudwatch-%Y.%m"),
    Key("auth", str, SinkAuth.NONE.value, "none, basic or header (opensearch, http: credentials from secretArn), or sigv4 "
        "(opensearch: the domain in domainArn).", example="sigv4", schema={"enum": [a.value for a in SinkAuth]}),
    Key("secretArn", str, "", "basic and header auth: a Secrets Manager secret or SSM SecureString parameter holding the credentials.",
        example="arn:aws:secretsmanager:eu-west-1:123456789012:secret:ship-logs-credentials"),
    Key("domainArn", str, "", "sigv4 auth: the OpenSearch Service domain ARN.", example="arn:aws:es:eu-west-1:123456789012:domain/logs"),
    Key("deliveryStreamArn", str, "", "firehose: an existing Firehose stream; empty: the stack builds its own archive.",
        example="arn:aws:firehose:eu-west-1:123456789012:deliverystream/central-logs"),
    Key("compress", bool, True, "Gzip what ship-logs sends (opensearch, http).", example=False),
    Key("metrics", dict, {"usage": False, "custom": False, "maxDimensionValues": DEFAULT_MAX_DIMENSION_VALUES},
        "The metric families ship-logs publishes to CloudWatch with PutMetricData; none by default, since each costs money "
        f"(list price, us-east-1: ${METRIC_MONTH_USD:.2f} a metric-month for the first 10,000 metrics, prorated by the hour a "
        f"metric gets data, and ${PUT_METRIC_DATA_USD_PER_1000:.2f} per 1,000 PutMetricData calls). "
        f"usage (true/false): from REPORT lines, {len(USAGE_METRIC_NAMES)} metrics per function ({', '.join(USAGE_METRIC_NAMES)}; "
        f"dimension FunctionName, and Account on the central archive, so per function and account there), "
        f"about ${len(USAGE_METRIC_NAMES) * METRIC_MONTH_USD:.2f} a month per function, "
        f"${100 * len(USAGE_METRIC_NAMES) * METRIC_MONTH_USD:.0f} per 100 functions. "
        "custom (true/false): from MONITORING|<value>|<unit>|<name>|<namespace> lines, 1 metric per namespace, name and "
        f"function (and account) a line names, ${METRIC_MONTH_USD:.2f} a month each: 5 names in 100 functions, about "
        f"${5 * 100 * METRIC_MONTH_USD:.0f} a month; customMetricNamespaces narrows the namespaces. "
        f"maxDimensionValues (1 to {MAX_MAX_DIMENSION_VALUES}): the most dimension sets each family publishes for per ship-logs "
        "container (usage: functions, with their account on the archive; custom: a function's namespace and name, each one "
        "metric) (an instance, kept warm between invocations; an invocation holds one "
        "log group, so a cap per invocation would never bind); the lines beyond them are dropped and counted "
        f"({METRIC_LINES_CAPPED_METRIC}, one metric) and named in a warning. Containers do not share what they admitted: about "
        "maxDimensionValues x reservedConcurrency functions a family at a time, at most.",
        example={"usage": True, "custom": True, "maxDimensionValues": 50},
        schema={"properties": {"usage": {"type": "boolean"}, "custom": {"type": "boolean"},
                               "maxDimensionValues": {"type": "integer", "minimum": 1, "maximum": MAX_MAX_DIMENSION_VALUES}},
                "additionalProperties": False}),
    Key("customMetricNamespaces", list, [], "With metrics.custom: the only CloudWatch namespaces MONITORING lines may publish to "
        "(1 to 255 characters each, not AWS/...); empty: any but AWS/. Naming some without metrics.custom is refused (they "
        "would publish nothing).", example=["Orders"], schema={"items": {"type": "string", "minLength": 1, "maxLength": 255}}),
    Key("maxBatchBytes", int, DEFAULT_MAX_BATCH_BYTES, f"The most bytes per request to the sink ({MIN_MAX_BATCH_BYTES} to "
        f"{MAX_MAX_BATCH_BYTES}).", example=1048576, schema={"minimum": MIN_MAX_BATCH_BYTES, "maximum": MAX_MAX_BATCH_BYTES}),
    Key("reservedConcurrency", int, 10, "The most ship-logs invocations at once (1 to 1000): a cap on what a burst can cost and on "
        "the load on the sink.", example=20, schema={"minimum": 1, "maximum": 1000}),
)
SHIP_LOGS_KEYS = SHIP_LOGS.names


@dataclass(frozen=True)
class MetricsConfig:
    """Which metric families ship-logs publishes (none unless asked: each costs money), and the cap on
    the functions each publishes for in one container."""

    usage: bool = False
    custom: bool = False
    max_dimension_values: int = DEFAULT_MAX_DIMENSION_VALUES

    @property
    def any(self) -> bool:
        return self.usage or self.custom

    def to_json_dict(self) -> dict[str, Any]:
        return {"usage": self.usage, "custom": self.custom, "maxDimensionValues": self.max_dimension_values}


@dataclass(frozen=True)
class ShipLogsConfig:
    """Where ship-logs forwards records, and how."""

    sink: SinkKind = SinkKind.FIREHOSE
    #: OpenSearch: the domain's base URL; HTTP: the URL records are POSTed to.
    endpoint: str = ""
    #: OpenSearch index, strftime-formatted with each record's UTC time.
    index: str = "logs-%Y.%m.%d"
    auth: SinkAuth = SinkAuth.NONE
    #: Secrets Manager secret or SSM SecureString parameter: {"username", "password"} (basic) or {"name", "value"} (header).
    secret_arn: str = ""
    #: The OpenSearch Service domain, for SigV4 (its ARN scopes the function's es:ESHttpPost).
    domain_arn: str = ""
    #: Firehose stream; empty: the stack's built-in archive (Firehose to an S3 bucket).
    delivery_stream_arn: str = ""
    compress: bool = True
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES
    reserved_concurrency: int = 10
    #: Namespaces MONITORING lines may publish to (with metrics.custom); empty: any but AWS/ (always refused).
    custom_metric_namespaces: tuple[str, ...] = ()
    metrics: MetricsConfig = MetricsConfig()

    @property
    def region(self) -> str | None:
        match = _DOMAIN_ARN.match(self.domain_arn)
        return match["region"] if match else None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "sink": self.sink.value, "endpoint": self.endpoint, "index": self.index, "auth": self.auth.value,
            "secretArn": self.secret_arn, "domainArn": self.domain_arn, "deliveryStreamArn": self.delivery_stream_arn,
            "compress": self.compress, "maxBatchBytes": self.max_batch_bytes, "reservedConcurrency": self.reserved_concurrency,
            "customMetricNamespaces": list(self.custom_metric_namespaces), "metrics": self.metrics.to_json_dict(),
        }


def parse_ship_logs_config(raw: Any, *, key: str = "shipLogs", require_stream: bool = True,
                           allow_loopback_http: bool = False) -> ShipLogsConfig:
    """``require_stream=False`` lets a Firehose sink without a stream through: the stack builds its archive."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            raise ConfigError(f"{key}: {raw!r} is not valid JSON; expected an object with keys {', '.join(SHIP_LOGS_KEYS)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{key}: expected an object with keys {', '.join(SHIP_LOGS_KEYS)}; got {raw!r}")
    unknown = sorted(set(raw) - set(SHIP_LOGS_KEYS))
    if unknown:
        raise unknown_member_error(key, unknown, tuple(SHIP_LOGS_KEYS), "shipLogs")

    def choice(name: str, enum: type[Enum], default: Enum) -> Any:
        value = raw.get(name, default.value)
        try:
            return enum(value)
        except ValueError:
            raise ConfigError(f"{key}.{name}: {value!r} is not one of {', '.join(e.value for e in enum)}") from None

    sink = choice("sink", SinkKind, SinkKind.FIREHOSE)
    auth = choice("auth", SinkAuth, SinkAuth.NONE)
    if auth not in _AUTH_BY_SINK[sink]:
        raise ConfigError(f"{key}.auth: a {sink.value} sink takes {', '.join(a.value for a in _AUTH_BY_SINK[sink])}; got {auth.value!r}")
    endpoint = SHIP_LOGS.read(raw, "endpoint")
    if sink in (SinkKind.OPENSEARCH, SinkKind.HTTP):
        _check_endpoint(endpoint, f"{key}.endpoint", sink, allow_loopback_http)
    elif endpoint:
        raise ConfigError(f"{key}.endpoint: a firehose sink takes deliveryStreamArn, not an endpoint")
    secret_arn = SHIP_LOGS.read(raw, "secretArn")
    if auth in (SinkAuth.BASIC, SinkAuth.HEADER) and not _SECRET_ARN.match(secret_arn):
        raise ConfigError(
            f"{key}.secretArn: {auth.value} auth reads its credentials from a Secrets Manager secret or SSM SecureString "
            f"parameter; expected its ARN, got {secret_arn!r}"
        )
    domain_arn = SHIP_LOGS.read(raw, "domainArn")
    if auth is SinkAuth.SIGV4 and not _DOMAIN_ARN.match(domain_arn):
        raise ConfigError(f"{key}.domainArn: sigv4 auth needs the OpenSearch Service domain ARN (arn:aws:es:<region>:<account>:domain/<name>); got {domain_arn!r}")
    stream = SHIP_LOGS.read(raw, "deliveryStreamArn")
    if stream and not _DELIVERY_STREAM_ARN.match(stream):
        raise ConfigError(f"{key}.deliveryStreamArn: expected arn:aws:firehose:<region>:<account>:deliverystream/<name>; got {stream!r}")
    if sink is SinkKind.FIREHOSE and require_stream and not stream:
        raise ConfigError(f"{key}.deliveryStreamArn: the firehose sink needs the stream's ARN (the stack sets it for its built-in archive)")
    index = SHIP_LOGS.read(raw, "index")
    sample = _strftime_sample(index)
    if not sample or sample != sample.lower() or sample.startswith(("-", "_", "+")) or any(c in sample for c in ' "*\\<|,>/?#:'):
        raise ConfigError(f"{key}.index: expected a lowercase OpenSearch index name (strftime codes allowed) without spaces or \\\"*<|,>/?#:; got {index!r}")
    max_batch = SHIP_LOGS.read(raw, "maxBatchBytes")
    if not MIN_MAX_BATCH_BYTES <= max_batch <= MAX_MAX_BATCH_BYTES:
        raise ConfigError(f"{key}.maxBatchBytes: expected {MIN_MAX_BATCH_BYTES} to {MAX_MAX_BATCH_BYTES}; got {max_batch}")
    metrics = _metrics(raw, key)
    namespaces = _namespaces(raw, key)
    if namespaces and not metrics.custom:
        raise ConfigError(f"{key}.customMetricNamespaces: names namespaces, but {key}.metrics.custom is false, so no custom "
                          f"metric is published; set metrics.custom to true to publish them (it costs money), or remove the key")
    concurrency = SHIP_LOGS.read(raw, "reservedConcurrency")
    if not 1 <= concurrency <= 1000:
        raise ConfigError(f"{key}.reservedConcurrency: expected 1 to 1000 (the most ship-logs may run at once); got {concurrency}")
    return ShipLogsConfig(
        sink=sink, endpoint=endpoint, index=index, auth=auth, secret_arn=secret_arn, domain_arn=domain_arn,
        delivery_stream_arn=stream, compress=SHIP_LOGS.read(raw, "compress"), max_batch_bytes=max_batch,
        reserved_concurrency=concurrency,
        custom_metric_namespaces=namespaces, metrics=metrics,
    )


def _strftime_sample(pattern: str) -> str:
    from datetime import datetime

    try:
        return datetime(2026, 1, 31, 23).strftime(pattern)
    except ValueError:
        return ""


def _check_endpoint(endpoint: str, key: str, sink: SinkKind, allow_loopback_http: bool) -> None:
    parts = urlsplit(endpoint)
    loopback = allow_loopback_http and parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
    if not parts.hostname or not (parts.scheme == "https" or loopback):
        raise ConfigError(f"{key}: a {sink.value} sink needs an https:// URL (records and credentials never travel "
                          f"in plain text); got {endpoint!r}")


def _namespaces(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = SHIP_LOGS.read(raw, "customMetricNamespaces")
    for value in values:
        if not isinstance(value, str) or not 1 <= len(value) <= 255 or value.startswith("AWS/"):
            raise ConfigError(f"{key}.customMetricNamespaces: expected CloudWatch namespaces (1-255 characters, not AWS/...); got {value!r}")
    return tuple(values)


_METRICS_MEMBERS = ("usage", "custom", "maxDimensionValues")


def _metrics(raw: Mapping[str, Any], key: str) -> MetricsConfig:
    value = SHIP_LOGS.read(raw, "metrics")
    unknown = sorted(set(value) - set(_METRICS_MEMBERS))
    if unknown:
        raise unknown_member_error(f"{key}.metrics", unknown, _METRICS_MEMBERS, "metrics")
    for family in ("usage", "custom"):
        if not isinstance(value.get(family, False), bool):
            raise ConfigError(f"{key}.metrics.{family}: expected true or false; got {value[family]!r}")
    cap = value.get("maxDimensionValues", DEFAULT_MAX_DIMENSION_VALUES)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_MAX_DIMENSION_VALUES:
        raise ConfigError(f"{key}.metrics.maxDimensionValues: expected 1 to {MAX_MAX_DIMENSION_VALUES} (the most functions a "
                          f"metric family publishes for per ship-logs container); got {cap!r}")
    return MetricsConfig(usage=value.get("usage", False), custom=value.get("custom", False), max_dimension_values=cap)

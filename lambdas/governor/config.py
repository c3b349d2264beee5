"""The governor's configuration: one parser for cdk.json context, the Lambda environment and the CLI.

Values may arrive as JSON types (cdk.json) or as strings (``cdk synth -c key=value``); a string is
decoded as JSON where the key expects a number, boolean, list or object. Every error names the key
and what it accepts, so a wrong value stops synth (or a cold start) with a message that says what to set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from urllib.parse import urlsplit
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

#: The values PutRetentionPolicy accepts, in days.
VALID_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)
#: Default quota of subscription filters per log group (AWS-FACTS: 2; a raised quota can be configured).
DEFAULT_MAX_FILTERS_PER_LOG_GROUP = 2
MAX_FILTER_NAME_LENGTH = 512
MAX_FILTER_PATTERN_LENGTH = 1024
#: Published default CloudWatch Logs quotas, requests per second per account and region.
DEFAULT_API_QUOTAS_TPS: Mapping[str, float] = {
    "DescribeLogGroups": 10.0,
    "DescribeSubscriptionFilters": 5.0,
    "PutSubscriptionFilter": 5.0,
    "PutRetentionPolicy": 5.0,
    "ListTagsForResource": 5.0,
}
#: Prefix of every context key the governor reads from cdk.json.
CONTEXT_PREFIX = "governor:"
#: What the stack sets in the functions' environment.
ENV_CONFIG = "GOVERNOR_CONFIG"
ENV_PROTECTED_LOG_GROUPS = "GOVERNOR_PROTECTED_LOG_GROUPS"
ENV_REPORTS_BUCKET = "GOVERNOR_REPORTS_BUCKET"
SERVICE_NAME = "log-group-governor"
METRICS_NAMESPACE = "LogGroupGovernor"


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key and the valid values."""


class DestinationKind(str, Enum):
    LAMBDA = "lambda"
    KINESIS = "kinesis"
    FIREHOSE = "firehose"
    LOGS_DESTINATION = "logs-destination"


_ARN = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov|aws-iso(?:-[a-z])?):(?P<service>[a-z]+):"
    r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):(?P<account>\d{12}):(?P<resource>.+)$"
)
_RESOURCE_BY_SERVICE = {
    "lambda": (DestinationKind.LAMBDA, re.compile(r"^function:(?P<name>[A-Za-z0-9_-]{1,64})(?::[A-Za-z0-9$_-]+)?$")),
    "kinesis": (DestinationKind.KINESIS, re.compile(r"^stream/(?P<name>[A-Za-z0-9_.-]{1,128})$")),
    "firehose": (DestinationKind.FIREHOSE, re.compile(r"^deliverystream/(?P<name>[A-Za-z0-9_.-]{1,64})$")),
    "logs": (DestinationKind.LOGS_DESTINATION, re.compile(r"^destination:(?P<name>[^:*]{1,512})$")),
}
_ROLE_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov|aws-iso(?:-[a-z])?):iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_DESTINATION_FORMS = (
    "arn:<partition>:lambda:<region>:<account>:function:<name>, "
    "arn:<partition>:kinesis:<region>:<account>:stream/<name>, "
    "arn:<partition>:firehose:<region>:<account>:deliverystream/<name> or "
    "arn:<partition>:logs:<region>:<account>:destination:<name>"
)


@dataclass(frozen=True)
class Destination:
    """Where subscribed log groups ship to."""

    arn: str
    kind: DestinationKind
    name: str
    account: str
    region: str
    partition: str
    role_arn: str | None = None

    @property
    def default_log_group(self) -> str | None:
        """The log group Lambda writes the destination function's own logs to unless LoggingConfig says otherwise."""
        return f"/aws/lambda/{self.name}" if self.kind is DestinationKind.LAMBDA else None


def parse_destination(arn: Any, role_arn: Any, *, key: str = "destinationArn", role_key: str = "destinationRoleArn") -> Destination:
    if not isinstance(arn, str) or not arn:
        raise ConfigError(f"{key}: expected the ARN of the log destination, one of {_DESTINATION_FORMS}; got {arn!r}")
    match = _ARN.match(arn)
    known = _RESOURCE_BY_SERVICE.get(match["service"]) if match else None
    resource = known[1].match(match["resource"]) if match and known else None
    if not match or not known or not resource:
        raise ConfigError(f"{key}: {arn!r} is not a supported destination; use {_DESTINATION_FORMS}")
    kind = known[0]
    role = role_arn or None
    if role is not None and (not isinstance(role, str) or not _ROLE_ARN.match(role)):
        raise ConfigError(f"{role_key}: expected an IAM role ARN (arn:<partition>:iam::<account>:role/<name>); got {role_arn!r}")
    if kind in (DestinationKind.KINESIS, DestinationKind.FIREHOSE) and role is None:
        raise ConfigError(
            f"{role_key}: a {kind.value} destination needs the ARN of a role that CloudWatch Logs "
            f"(logs.amazonaws.com) may assume to write to {arn}"
        )
    if kind in (DestinationKind.LAMBDA, DestinationKind.LOGS_DESTINATION) and role is not None:
        raise ConfigError(f"{role_key}: only Kinesis and Firehose destinations take a role; remove it for {kind.value} destination {arn}")
    return Destination(
        arn=arn, kind=kind, name=resource["name"], account=match["account"], region=match["region"],
        partition=match["partition"], role_arn=role,
    )


@dataclass(frozen=True)
class PolicyConfig:
    """What a governed log group should look like. The policy core reads nothing else."""

    #: None only while the stack has yet to create its built-in destination; a Policy needs one.
    destination: Destination | None
    filter_name: str = "log-group-governor"
    filter_pattern: str = ""
    default_retention_days: int | None = 30
    #: Longest matching prefix wins; ``None`` leaves retention of matching groups alone.
    retention_overrides: Mapping[str, int | None] = field(default_factory=dict)
    shorten_retention: bool = False
    exclude_prefixes: tuple[str, ...] = ()
    exclude_patterns: tuple[re.Pattern[str], ...] = ()
    #: Tag key -> value; ``"*"`` matches any value.
    exclude_tags: Mapping[str, str] = field(default_factory=dict)
    #: Names (or prefixes, written with a trailing ``*``) of log groups that carry the shipping path's own logs.
    shipping_path_log_groups: tuple[str, ...] = ()
    max_filters_per_log_group: int = DEFAULT_MAX_FILTERS_PER_LOG_GROUP
    #: Requests per second the backfill allows itself per CloudWatch Logs operation (raised quotas).
    api_quotas_tps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_API_QUOTAS_TPS))

    def to_json_dict(self) -> dict[str, Any]:
        """The canonical form, as the Lambda environment and the CLI carry it (keys as in cdk.json)."""
        destination = self.destination
        return {
            "destinationArn": destination.arn if destination else "",
            "destinationRoleArn": (destination.role_arn or "") if destination else "",
            "filterName": self.filter_name,
            "filterPattern": self.filter_pattern,
            "defaultRetentionDays": self.default_retention_days,
            "retentionOverrides": dict(self.retention_overrides),
            "shortenRetention": self.shorten_retention,
            "excludePrefixes": list(self.exclude_prefixes),
            "excludePatterns": [p.pattern for p in self.exclude_patterns],
            "excludeTags": dict(self.exclude_tags),
            "shippingPathLogGroups": list(self.shipping_path_log_groups),
            "maxFiltersPerLogGroup": self.max_filters_per_log_group,
            "apiQuotasTps": dict(self.api_quotas_tps),
        }


POLICY_KEYS = (
    "destinationArn", "destinationRoleArn", "filterName", "filterPattern", "defaultRetentionDays",
    "retentionOverrides", "shortenRetention", "excludePrefixes", "excludePatterns", "excludeTags",
    "shippingPathLogGroups", "maxFiltersPerLogGroup", "apiQuotasTps",
)


def decode(raw: Mapping[str, Any], key: str, default: Any, expected: type | tuple[type, ...]) -> Any:
    """Read ``key`` from ``raw``; a string where another JSON type is expected is decoded as JSON (``-c`` overrides)."""
    value = raw.get(key, default)
    if isinstance(value, str) and str not in _as_tuple(expected):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"{key}: {value!r} is not valid JSON; expected {_describe(expected)}") from None
    if value is None and type(None) in _as_tuple(expected):
        return None
    # bool is an int in Python; a retention of True is a mistake, not one day.
    if isinstance(value, bool) and bool not in _as_tuple(expected):
        raise ConfigError(f"{key}: expected {_describe(expected)}; got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{key}: expected {_describe(expected)}; got {value!r}")
    return value


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _describe(expected: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", bool: "true or false", list: "a list", dict: "an object", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(expected))


def retention_days(value: Any, key: str, *, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or value not in VALID_RETENTION_DAYS:
        valid = ", ".join(map(str, VALID_RETENTION_DAYS))
        never = " or null (leave retention alone)" if allow_none else ""
        raise ConfigError(f"{key}: {value!r} is not a retention CloudWatch Logs accepts; valid values (days): {valid}{never}")
    return int(value)


def string_list(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = decode(raw, key, [], list)
    for item in values:
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{key}: expected a list of non-empty strings; got item {item!r}")
    return tuple(values)


def parse_policy_config(raw: Mapping[str, Any], *, require_destination: bool = True) -> PolicyConfig:
    """Validate the policy keys of ``raw`` (cdk.json context keys without the ``governor:`` prefix).

    ``require_destination=False`` lets an empty ``destinationArn`` through: the stack then deploys
    its built-in destination and fills it in.
    """
    destination = None
    if require_destination or raw.get("destinationArn") or raw.get("destinationRoleArn"):
        destination = parse_destination(raw.get("destinationArn"), raw.get("destinationRoleArn"))

    filter_name = decode(raw, "filterName", "log-group-governor", str)
    if not 1 <= len(filter_name) <= MAX_FILTER_NAME_LENGTH or ":" in filter_name or "*" in filter_name:
        raise ConfigError(f"filterName: expected 1 to {MAX_FILTER_NAME_LENGTH} characters without ':' or '*'; got {filter_name!r}")
    filter_pattern = decode(raw, "filterPattern", "", str)
    if len(filter_pattern) > MAX_FILTER_PATTERN_LENGTH:
        raise ConfigError(f"filterPattern: at most {MAX_FILTER_PATTERN_LENGTH} characters; got {len(filter_pattern)}")

    default_retention = retention_days(decode(raw, "defaultRetentionDays", 30, (int, type(None))), "defaultRetentionDays", allow_none=True)
    overrides_raw = decode(raw, "retentionOverrides", {}, dict)
    overrides: dict[str, int | None] = {}
    for prefix, days in overrides_raw.items():
        if not prefix:
            raise ConfigError("retentionOverrides: a prefix must not be empty (use defaultRetentionDays for every group)")
        overrides[prefix] = retention_days(days, f"retentionOverrides[{prefix!r}]", allow_none=True)

    patterns = []
    for pattern in string_list(raw, "excludePatterns"):
        try:
            patterns.append(re.compile(pattern))
        except re.error as err:
            raise ConfigError(f"excludePatterns: {pattern!r} is not a valid regular expression ({err})") from None

    exclude_tags = decode(raw, "excludeTags", {}, dict)
    for tag_key, tag_value in exclude_tags.items():
        if not tag_key or not isinstance(tag_value, str) or not tag_value:
            raise ConfigError(f"excludeTags: expected tag key -> value (\"*\" for any value); got {tag_key!r}: {tag_value!r}")

    max_filters = decode(raw, "maxFiltersPerLogGroup", DEFAULT_MAX_FILTERS_PER_LOG_GROUP, int)
    if not 1 <= max_filters <= 10:
        raise ConfigError(f"maxFiltersPerLogGroup: expected 1 to 10 (the account's subscription filter quota per log group, default 2); got {max_filters}")

    quotas = decode(raw, "apiQuotasTps", {}, dict)
    for operation, tps in quotas.items():
        if operation not in DEFAULT_API_QUOTAS_TPS:
            raise ConfigError(f"apiQuotasTps: unknown operation {operation!r}; valid: {', '.join(DEFAULT_API_QUOTAS_TPS)}")
        if isinstance(tps, bool) or not isinstance(tps, (int, float)) or not 0 < tps <= 10_000:
            raise ConfigError(f"apiQuotasTps[{operation!r}]: expected requests per second, more than 0 and at most 10000; got {tps!r}")

    return PolicyConfig(
        destination=destination,
        filter_name=filter_name,
        filter_pattern=filter_pattern,
        default_retention_days=default_retention,
        retention_overrides=overrides,
        shorten_retention=decode(raw, "shortenRetention", False, bool),
        exclude_prefixes=string_list(raw, "excludePrefixes"),
        exclude_patterns=tuple(patterns),
        exclude_tags=dict(exclude_tags),
        shipping_path_log_groups=string_list(raw, "shippingPathLogGroups"),
        max_filters_per_log_group=max_filters,
        api_quotas_tps={**DEFAULT_API_QUOTAS_TPS, **{op: float(tps) for op, tps in quotas.items()}},
    )


def strip_context_prefix(context: Mapping[str, Any], known_keys: tuple[str, ...]) -> dict[str, Any]:
    """The ``governor:*`` entries of a CDK context, without the prefix; an unknown ``governor:`` key is a typo."""
    found = {key[len(CONTEXT_PREFIX):]: value for key, value in context.items() if key.startswith(CONTEXT_PREFIX)}
    unknown = sorted(set(found) - set(known_keys))
    if unknown:
        raise ConfigError(
            f"unknown context key(s) {', '.join(CONTEXT_PREFIX + k for k in unknown)}; "
            f"valid keys: {', '.join(CONTEXT_PREFIX + k for k in known_keys)}"
        )
    return found


# --- ship-logs: the built-in destination -----------------------------------------------------------

ENV_SHIP_LOGS = "GOVERNOR_SHIP_LOGS"
ENV_SHIP_LOGS_DLQ_URL = "GOVERNOR_SHIP_LOGS_DLQ_URL"
#: Namespace of the usage metrics (duration, memory, cold starts) ship-logs derives from REPORT lines.
USAGE_METRICS_NAMESPACE = "LogGroupGovernor/Lambda"
DEFAULT_MAX_BATCH_BYTES = 5 * 1024 * 1024
MIN_MAX_BATCH_BYTES = 64 * 1024
MAX_MAX_BATCH_BYTES = 100 * 1024 * 1024


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
SHIP_LOGS_KEYS = ("sink", "endpoint", "index", "auth", "secretArn", "domainArn", "deliveryStreamArn", "compress",
                  "maxBatchBytes", "reservedConcurrency")


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

    @property
    def region(self) -> str | None:
        match = _DOMAIN_ARN.match(self.domain_arn)
        return match["region"] if match else None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "sink": self.sink.value, "endpoint": self.endpoint, "index": self.index, "auth": self.auth.value,
            "secretArn": self.secret_arn, "domainArn": self.domain_arn, "deliveryStreamArn": self.delivery_stream_arn,
            "compress": self.compress, "maxBatchBytes": self.max_batch_bytes, "reservedConcurrency": self.reserved_concurrency,
        }


def parse_ship_logs_config(raw: Any, *, key: str = "shipLogs", require_stream: bool = True) -> ShipLogsConfig:
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
        raise ConfigError(f"{key}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SHIP_LOGS_KEYS)}")

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
    endpoint = decode(raw, "endpoint", "", str)
    if sink in (SinkKind.OPENSEARCH, SinkKind.HTTP):
        _check_endpoint(endpoint, f"{key}.endpoint", sink)
    elif endpoint:
        raise ConfigError(f"{key}.endpoint: a firehose sink takes deliveryStreamArn, not an endpoint")
    secret_arn = decode(raw, "secretArn", "", str)
    if auth in (SinkAuth.BASIC, SinkAuth.HEADER) and not _SECRET_ARN.match(secret_arn):
        raise ConfigError(
            f"{key}.secretArn: {auth.value} auth reads its credentials from a Secrets Manager secret or SSM SecureString "
            f"parameter; expected its ARN, got {secret_arn!r}"
        )
    domain_arn = decode(raw, "domainArn", "", str)
    if auth is SinkAuth.SIGV4 and not _DOMAIN_ARN.match(domain_arn):
        raise ConfigError(f"{key}.domainArn: sigv4 auth needs the OpenSearch Service domain ARN (arn:aws:es:<region>:<account>:domain/<name>); got {domain_arn!r}")
    stream = decode(raw, "deliveryStreamArn", "", str)
    if stream and not _DELIVERY_STREAM_ARN.match(stream):
        raise ConfigError(f"{key}.deliveryStreamArn: expected arn:aws:firehose:<region>:<account>:deliverystream/<name>; got {stream!r}")
    if sink is SinkKind.FIREHOSE and require_stream and not stream:
        raise ConfigError(f"{key}.deliveryStreamArn: the firehose sink needs the stream's ARN (the stack sets it for its built-in archive)")
    index = decode(raw, "index", "logs-%Y.%m.%d", str)
    sample = _strftime_sample(index)
    if not sample or sample != sample.lower() or sample.startswith(("-", "_", "+")) or any(c in sample for c in ' "*\\<|,>/?#:'):
        raise ConfigError(f"{key}.index: expected a lowercase OpenSearch index name (strftime codes allowed) without spaces or \\\"*<|,>/?#:; got {index!r}")
    max_batch = decode(raw, "maxBatchBytes", DEFAULT_MAX_BATCH_BYTES, int)
    if not MIN_MAX_BATCH_BYTES <= max_batch <= MAX_MAX_BATCH_BYTES:
        raise ConfigError(f"{key}.maxBatchBytes: expected {MIN_MAX_BATCH_BYTES} to {MAX_MAX_BATCH_BYTES}; got {max_batch}")
    concurrency = decode(raw, "reservedConcurrency", 10, int)
    if not 1 <= concurrency <= 1000:
        raise ConfigError(f"{key}.reservedConcurrency: expected 1 to 1000 (the most ship-logs may run at once); got {concurrency}")
    return ShipLogsConfig(
        sink=sink, endpoint=endpoint, index=index, auth=auth, secret_arn=secret_arn, domain_arn=domain_arn,
        delivery_stream_arn=stream, compress=decode(raw, "compress", True, bool), max_batch_bytes=max_batch,
        reserved_concurrency=concurrency,
    )


def _strftime_sample(pattern: str) -> str:
    from datetime import datetime

    try:
        return datetime(2026, 1, 31, 23).strftime(pattern)
    except ValueError:
        return ""


def _check_endpoint(endpoint: str, key: str, sink: SinkKind) -> None:
    parts = urlsplit(endpoint)
    loopback = parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
    if not parts.hostname or not (parts.scheme == "https" or loopback):
        raise ConfigError(f"{key}: a {sink.value} sink needs an https:// URL (plain http only on loopback, for tests); got {endpoint!r}")

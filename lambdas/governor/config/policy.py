"""The policy configuration: what a governed log group should look like, and where it ships."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from shared.config import ConfigError, decode

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
    "DeleteSubscriptionFilter": 5.0,
    "PutRetentionPolicy": 5.0,
    "ListTagsForResource": 5.0,
}
#: Shares of each quota the governor allows itself, so the account's other callers keep the rest:
#: the event handlers together, and a backfill or reconcile run (which also gives way when throttled).
DEFAULT_EVENT_QUOTA_SHARE = 0.3
DEFAULT_BACKFILL_QUOTA_SHARE = 0.5
#: What the stack sets in the functions' environment.
ENV_CONFIG = "GOVERNOR_CONFIG"
ENV_PROTECTED_LOG_GROUPS = "GOVERNOR_PROTECTED_LOG_GROUPS"
ENV_REPORTS_BUCKET = "GOVERNOR_REPORTS_BUCKET"
#: The event queues' maximum concurrency, which the handlers' pacing divides by.
ENV_EVENT_CONCURRENCY = "GOVERNOR_EVENT_CONCURRENCY"
#: The DynamoDB table of drift fights, conflicts and the reconcile lock.
ENV_STATE_TABLE = "GOVERNOR_STATE_TABLE"
#: The governor's own roles (JSON list of ARNs): their calls never trigger drift repair.
ENV_OWN_PRINCIPALS = "GOVERNOR_OWN_PRINCIPALS"
#: The organization's fleet bus (an EventBridge bus ARN in the central account): finished runs report there.
ENV_FLEET_BUS = "GOVERNOR_FLEET_BUS"


class RetentionMode(str, Enum):
    """How a group's retention is judged against the configured one."""

    #: Set where none, raise where shorter, keep a longer one (a team may keep more).
    MINIMUM = "minimum"
    #: Exactly the configured value: raise or shorten.
    EXACT = "exact"
    #: Between ``retentionMinDays`` and ``retentionMaxDays``: raise below, shorten above, leave between.
    CLAMP = "clamp"


class Via(str, Enum):
    """Where an aspect is enforced: a write per log group, or a native account-level policy (issue #9)."""

    PER_GROUP = "per-group"
    ACCOUNT_POLICY = "account-policy"


#: Drift repair stops fighting a principal that changed a group back more than this many times...
DEFAULT_DRIFT_FIGHT_LIMIT = 3
#: ...within this window, and leaves the group alone for this long (the conflict is reported and alarms).
DEFAULT_DRIFT_FIGHT_WINDOW_MINUTES = 60
DEFAULT_DRIFT_CONFLICT_HOLD_HOURS = 24


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
    if kind is DestinationKind.LAMBDA and role is not None:
        raise ConfigError(f"{role_key}: a Lambda destination takes no role (CloudWatch Logs invokes it through its resource policy); "
                          f"remove it for {arn}")
    # A CloudWatch Logs destination whose access policy admits an organization (aws:PrincipalOrgID) needs
    # the sender's role here (CloudWatch Logs guide, "Step 2: (Only if using an organization) Create an IAM
    # role"); one whose policy lists accounts needs none, so the role is optional for that kind.
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
    retention_mode: RetentionMode = RetentionMode.MINIMUM
    #: The bounds of ``RetentionMode.CLAMP`` (None in the other modes).
    retention_min_days: int | None = None
    retention_max_days: int | None = None
    #: True: a group that never expires is compliant and left alone.
    never_expire_compliant: bool = False
    #: Retention for ``/aws/lambda/<name>`` groups whose function no longer exists (None: report only).
    orphan_retention_days: int | None = None
    exclude_prefixes: tuple[str, ...] = ()
    exclude_patterns: tuple[re.Pattern[str], ...] = ()
    #: Tag key -> value; ``"*"`` matches any value.
    exclude_tags: Mapping[str, str] = field(default_factory=dict)
    #: Names (or prefixes, written with a trailing ``*``) of log groups that carry the shipping path's own logs.
    shipping_path_log_groups: tuple[str, ...] = ()
    max_filters_per_log_group: int = DEFAULT_MAX_FILTERS_PER_LOG_GROUP
    #: Requests per second the backfill allows itself per CloudWatch Logs operation (raised quotas).
    api_quotas_tps: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_API_QUOTAS_TPS))
    #: Fraction of each quota the event handlers use together.
    event_quota_share: float = DEFAULT_EVENT_QUOTA_SHARE
    #: Fraction of each quota a backfill run aims at (it halves its rate on a throttle).
    backfill_quota_share: float = DEFAULT_BACKFILL_QUOTA_SHARE
    #: Drift repair gives up on a group changed back more than ``drift_fight_limit`` times in the window.
    drift_fight_limit: int = DEFAULT_DRIFT_FIGHT_LIMIT
    drift_fight_window_minutes: int = DEFAULT_DRIFT_FIGHT_WINDOW_MINUTES
    drift_conflict_hold_hours: int = DEFAULT_DRIFT_CONFLICT_HOLD_HOURS
    #: ``subscriptionMode``: a filter per group, or the account's subscription filter policy whose
    #: ``NOT IN`` list the governor keeps.
    subscription_mode: Via = Via.PER_GROUP
    #: ``retentionVia``: PutRetentionPolicy per group, or native retention policies (``cli plan``/``apply``).
    retention_via: Via = Via.PER_GROUP

    @property
    def shorten_retention(self) -> bool:
        return self.retention_mode is RetentionMode.EXACT

    def backfill_rates_tps(self) -> dict[str, float]:
        return {op: tps * self.backfill_quota_share for op, tps in self.api_quotas_tps.items()}

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
            "retentionMode": self.retention_mode.value,
            "retentionMinDays": self.retention_min_days,
            "retentionMaxDays": self.retention_max_days,
            "neverExpireCompliant": self.never_expire_compliant,
            "orphanRetentionDays": self.orphan_retention_days,
            "excludePrefixes": list(self.exclude_prefixes),
            "excludePatterns": [p.pattern for p in self.exclude_patterns],
            "excludeTags": dict(self.exclude_tags),
            "shippingPathLogGroups": list(self.shipping_path_log_groups),
            "maxFiltersPerLogGroup": self.max_filters_per_log_group,
            "apiQuotasTps": dict(self.api_quotas_tps),
            "eventQuotaShare": self.event_quota_share,
            "backfillQuotaShare": self.backfill_quota_share,
            "driftFightLimit": self.drift_fight_limit,
            "driftFightWindowMinutes": self.drift_fight_window_minutes,
            "driftConflictHoldHours": self.drift_conflict_hold_hours,
            "subscriptionMode": self.subscription_mode.value,
            "retentionVia": self.retention_via.value,
        }


POLICY_KEYS = (
    "destinationArn", "destinationRoleArn", "filterName", "filterPattern", "defaultRetentionDays",
    "retentionOverrides", "retentionMode", "shortenRetention", "retentionMinDays", "retentionMaxDays",
    "neverExpireCompliant", "orphanRetentionDays", "excludePrefixes", "excludePatterns", "excludeTags",
    "shippingPathLogGroups", "maxFiltersPerLogGroup", "apiQuotasTps", "eventQuotaShare", "backfillQuotaShare",
    "driftFightLimit", "driftFightWindowMinutes", "driftConflictHoldHours", "subscriptionMode", "retentionVia",
)


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
    # ':' and '*' CloudWatch Logs refuses (the model's pattern); a quote would break the DeliveryErrors alarm's query.
    if not 1 <= len(filter_name) <= MAX_FILTER_NAME_LENGTH or any(c in filter_name for c in ":*'\""):
        raise ConfigError(f"filterName: expected 1 to {MAX_FILTER_NAME_LENGTH} characters without ':', '*' or quotes; got {filter_name!r}")
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

    mode, bounds = _retention_mode(raw, default_retention, overrides)

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

    shares = {}
    for key, default in (("eventQuotaShare", DEFAULT_EVENT_QUOTA_SHARE), ("backfillQuotaShare", DEFAULT_BACKFILL_QUOTA_SHARE)):
        share = decode(raw, key, default, (int, float))
        if not 0 < share <= 1:
            raise ConfigError(f"{key}: expected a fraction of each CloudWatch Logs quota, more than 0 and at most 1 (default {default}); got {share!r}")
        shares[key] = float(share)

    drift = {}
    for key, default, low, high, unit in (
        ("driftFightLimit", DEFAULT_DRIFT_FIGHT_LIMIT, 1, 100, "changes back"),
        ("driftFightWindowMinutes", DEFAULT_DRIFT_FIGHT_WINDOW_MINUTES, 1, 7 * 24 * 60, "minutes"),
        ("driftConflictHoldHours", DEFAULT_DRIFT_CONFLICT_HOLD_HOURS, 1, 90 * 24, "hours"),
    ):
        value = decode(raw, key, default, int)
        if not low <= value <= high:
            raise ConfigError(f"{key}: expected {low} to {high} {unit} (default {default}); got {value}")
        drift[key] = value

    return PolicyConfig(
        subscription_mode=_via(raw, "subscriptionMode"),
        retention_via=_via(raw, "retentionVia"),
        retention_mode=mode,
        retention_min_days=bounds[0],
        retention_max_days=bounds[1],
        never_expire_compliant=decode(raw, "neverExpireCompliant", False, bool),
        orphan_retention_days=retention_days(decode(raw, "orphanRetentionDays", None, (int, type(None))), "orphanRetentionDays", allow_none=True),
        drift_fight_limit=drift["driftFightLimit"],
        drift_fight_window_minutes=drift["driftFightWindowMinutes"],
        drift_conflict_hold_hours=drift["driftConflictHoldHours"],
        event_quota_share=shares["eventQuotaShare"],
        backfill_quota_share=shares["backfillQuotaShare"],
        destination=destination,
        filter_name=filter_name,
        filter_pattern=filter_pattern,
        default_retention_days=default_retention,
        retention_overrides=overrides,
        exclude_prefixes=string_list(raw, "excludePrefixes"),
        exclude_patterns=tuple(patterns),
        exclude_tags=dict(exclude_tags),
        shipping_path_log_groups=string_list(raw, "shippingPathLogGroups"),
        max_filters_per_log_group=max_filters,
        api_quotas_tps={**DEFAULT_API_QUOTAS_TPS, **{op: float(tps) for op, tps in quotas.items()}},
    )


def _via(raw: Mapping[str, Any], key: str) -> Via:
    name = decode(raw, key, Via.PER_GROUP.value, str)
    try:
        return Via(name)
    except ValueError:
        raise ConfigError(f"{key}: expected {' or '.join(repr(v.value) for v in Via)} (default {Via.PER_GROUP.value!r}); got {name!r}") from None


def _retention_mode(raw: Mapping[str, Any], default_days: int | None,
                    overrides: Mapping[str, int | None]) -> tuple[RetentionMode, tuple[int | None, int | None]]:
    """``retentionMode`` and, for clamp, its bounds. ``shortenRetention: true`` is the older spelling of ``exact``."""
    modes = ", ".join(m.value for m in RetentionMode)
    name = decode(raw, "retentionMode", RetentionMode.MINIMUM.value, str)
    try:
        mode = RetentionMode(name)
    except ValueError:
        raise ConfigError(f"retentionMode: expected one of {modes}; got {name!r}") from None
    if decode(raw, "shortenRetention", False, bool):
        if "retentionMode" in raw and mode is not RetentionMode.EXACT:
            raise ConfigError(f"shortenRetention: true means retentionMode \"exact\", but retentionMode is {mode.value!r}; set only retentionMode")
        mode = RetentionMode.EXACT
    low = retention_days(decode(raw, "retentionMinDays", None, (int, type(None))), "retentionMinDays", allow_none=True)
    high = retention_days(decode(raw, "retentionMaxDays", None, (int, type(None))), "retentionMaxDays", allow_none=True)
    if mode is not RetentionMode.CLAMP:
        if low is not None or high is not None:
            raise ConfigError(f"retentionMinDays / retentionMaxDays: only retentionMode \"clamp\" uses them; retentionMode is {mode.value!r}")
        return mode, (None, None)
    if low is None or high is None or low > high:
        raise ConfigError(f"retentionMinDays / retentionMaxDays: retentionMode \"clamp\" needs both, minimum <= maximum; got {low!r} and {high!r}")
    targets = {"defaultRetentionDays": default_days, **{f"retentionOverrides[{k!r}]": v for k, v in overrides.items()}}
    for key, days in targets.items():
        if days is not None and not low <= days <= high:
            raise ConfigError(f"{key}: {days} days lies outside retentionMinDays..retentionMaxDays ({low}..{high}); "
                              f"a group without retention gets it, so it must be within the bounds")
    return mode, (low, high)

"""The policy configuration: what a governed log group should look like, and where it ships."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.config import ConfigError, Key, Keys

from ..primitives import (  # noqa: F401  (importers of the policy's names keep them)
    MAX_PATTERN_BACKTRACKING,
    RULE_CLASSES,
    RULE_RETENTION_MODES,
    VALID_RETENTION_DAYS,
    _DAYS,
    Destination,
    DestinationKind,
    RetentionMode,
    Via,
    parse_destination,
    refuse_backtracking,
    retention_days,
)
from ..controls import PLUGGED, REGISTRY
from ..rules import SHIPPING, compile_flat, parse_rules, uses

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
    # Not in AWS-FACTS' table: the Service Quotas default is *assumed* here (apiQuotasTps sets the account's);
    # the replay's pacer also gives way on every throttle, and console users share this quota.
    "FilterLogEvents": 5.0,
    # Not in AWS-FACTS' table either: *assumed* like the other per-group writes (apiQuotasTps sets the account's).
    # The calls of the controls that plug in whole, as their modules give them.
    **{operation: tps for control in PLUGGED for operation, tps in control.quotas_tps.items()},
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
#: The control a function of the generic entry (governor.handlers.create_log_group.govern) governs: its aspect.
ENV_ASPECT = "GOVERNOR_ASPECT"
#: The organization's fleet bus (an EventBridge bus ARN in the central account): finished runs report there.
ENV_FLEET_BUS = "GOVERNOR_FLEET_BUS"


#: Replay (#20): a group created at most this long before the governor's filter gets what it held before the filter,
#: delivered as the subscription would have. An hour covers a burst's worst wait (the bench: 5,000 groups in under
#: two hours at the default share is the outlier) and keeps the replay of one group small.
DEFAULT_REPLAY_WINDOW_MINUTES = 60
#: At most this much of one group is replayed (the rest is counted as truncated and reported): a new function's first
#: hour is a few hundred lines; 10,000 events is one FilterLogEvents page, 5 MiB a few dozen records.
DEFAULT_REPLAY_MAX_EVENTS = 10_000
DEFAULT_REPLAY_MAX_BYTES = 5 * 1024 * 1024

#: Drift repair stops fighting a principal that changed a group back more than this many times...
DEFAULT_DRIFT_FIGHT_LIMIT = 3
#: ...within this window, and leaves the group alone for this long (the conflict is reported and alarms).
DEFAULT_DRIFT_FIGHT_WINDOW_MINUTES = 60
DEFAULT_DRIFT_CONFLICT_HOLD_HOURS = 24


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
    #: Replay what a group held before the governor's filter when it was created at most this many minutes
    #: before it (None: never).
    replay_window_minutes: int | None = DEFAULT_REPLAY_WINDOW_MINUTES
    replay_max_events: int = DEFAULT_REPLAY_MAX_EVENTS
    replay_max_bytes: int = DEFAULT_REPLAY_MAX_BYTES
    #: ``<control>Via`` of each control that plugs in whole with an account-level form (absent: per-group).
    plugged_via: Mapping[str, Via] = field(default_factory=dict)
    #: ``governor:rules`` (governor.rules.Rule), in order; the flat keys' rules follow them (``all_rules``).
    rules: tuple[Any, ...] = ()
    #: The same, as configured (the canonical form carries them back).
    rules_raw: tuple[Any, ...] = ()

    @property
    def all_rules(self) -> tuple[Any, ...]:
        """The configured rules, then today's flat keys compiled into rules (governor.rules.compile_flat)."""
        return (*self.rules, *compile_flat(filter_pattern=self.filter_pattern, default_retention_days=self.default_retention_days,
                                           retention_overrides=self.retention_overrides, retention_mode=self.retention_mode))

    @property
    def event_aspects(self) -> tuple[str, ...]:
        """The event handlers this configuration deploys: a control's only when a rule sets it."""
        per_group = {c.name: self.via(c.name) is Via.PER_GROUP for c in PLUGGED}
        return ("subscription", "retention", *(c.aspect for c in REGISTRY if per_group.get(c.name) and any(r.value(c.name) is not None
                                                                                                          for r in self.rules)))

    def via(self, control: str) -> Via:
        """Where a control that plugs in whole is enforced: a write per group, or its account-level form."""
        return self.plugged_via.get(control, Via.PER_GROUP)

    @property
    def tag_keys(self) -> frozenset[str]:
        """Tag keys any decision reads: the exclusion tags' and the rules' selectors' (tags are read only if there are any)."""
        return frozenset(self.exclude_tags) | frozenset(k for rule in self.rules for k in rule.match.tags)

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
            "replayWindowMinutes": self.replay_window_minutes,
            "replayMaxEvents": self.replay_max_events,
            "replayMaxBytes": self.replay_max_bytes,
            **{c.via_key: self.via(c.name).value for c in PLUGGED if c.via_key},
            "rules": list(self.rules_raw),
        }


#: The JSON Schema of one ``governor:rules`` entry (docs/cdk.json.schema.json, editors); governor.rules is its parser.
RULE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "anyOf": [{"required": [c.name]} for c in REGISTRY],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "match": {"type": "object", "additionalProperties": False, "properties": {
            "namePrefixes": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "namePatterns": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "tags": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
            "logGroupClasses": {"type": "array", "items": {"enum": list(RULE_CLASSES)}}}},
        "retention": {"type": "object", "additionalProperties": False, "required": ["days"], "properties": {
            "days": {"enum": [*VALID_RETENTION_DAYS, None]}, "mode": {"enum": list(RULE_RETENTION_MODES)}}},
        "shipping": {"type": "object", "additionalProperties": False, "required": ["enabled"], "properties": {
            "enabled": {"type": "boolean"}, "filterPattern": {"type": "string", "maxLength": MAX_FILTER_PATTERN_LENGTH},
            "destinationArn": {"type": "string", "minLength": 1}, "destinationRoleArn": {"type": "string"}}},
        "exact": {"type": "array", "items": {"enum": [c.name for c in REGISTRY if c.exact]}},
        **{c.name: dict(c.rule_schema or {}) for c in PLUGGED},
    },
}
_RETENTION_SCHEMA = {"enum": [*VALID_RETENTION_DAYS, None]}
#: The policy keys (``governor:`` prefix): what a governed log group should look like, and where it ships.
POLICY = Keys(
    "governor:", "Policy: what a governed log group looks like",
    Key("destinationArn", str, "", "ARN of a Lambda function, Kinesis stream, Firehose stream, or (cross-account) CloudWatch Logs "
        "destination, in the stack's region. Empty: the stack deploys its built-in destination, ship-logs (docs/ship-logs.md).",
        example="arn:aws:logs:eu-west-1:111111111111:destination:central-log-archive"),
    Key("destinationRoleArn", str, "", "Role CloudWatch Logs assumes to write to a Kinesis or Firehose destination (required for those); "
        "for a CloudWatch Logs destination whose access policy admits an organization, the sender role (or set senderRole); "
        "refused for a Lambda destination.", example="arn:aws:iam::123456789012:role/CWLtoKinesisRole"),
    Key("filterName", str, "log-group-governor", "Name of the governor's subscription filter; a filter of this name is the "
        "governor's and is updated in place. 1 to 512 characters without ':', '*' or quotes.", example="org-log-shipping",
        schema={"minLength": 1, "maxLength": MAX_FILTER_NAME_LENGTH, "pattern": "^[^:*'\"]+$"}),
    Key("filterPattern", str, "", "CloudWatch Logs filter pattern of the subscription; empty ships every event.",
        example="?ERROR ?WARN", schema={"maxLength": MAX_FILTER_PATTERN_LENGTH}),
    Key("defaultRetentionDays", (int, type(None)), 30, f"Retention for every governed group, in days: one of {_DAYS}; null "
        "leaves retention alone.", example=90, schema=_RETENTION_SCHEMA),
    Key("retentionOverrides", dict, {}, "Log group name prefix -> retention in days (or null: leave alone). The longest matching "
        "prefix wins.", example={"/aws/lambda/prod-": 365, "/aws/lambda/dev-": 7},
        schema={"additionalProperties": _RETENTION_SCHEMA, "propertyNames": {"minLength": 1}}),
    Key("retentionMode", str, RetentionMode.MINIMUM.value, "How a group's retention is judged: minimum sets it where none is and "
        "raises a shorter one (a team keeps a longer one); exact also shortens a longer one; clamp raises below retentionMinDays, "
        "shortens above retentionMaxDays and leaves anything between. A group without retention gets defaultRetentionDays "
        "(or its override) in every mode.", example="exact", schema={"enum": [m.value for m in RetentionMode]}),
    Key("shortenRetention", bool, False, "The older spelling of retentionMode \"exact\" (kept so existing cdk.json files work); "
        "true with another retentionMode is refused.", example=True),
    Key("retentionMinDays", (int, type(None)), None, "retentionMode clamp only: the shortest retention allowed. "
        "defaultRetentionDays and every override must lie within the bounds.", example=7, schema=_RETENTION_SCHEMA),
    Key("retentionMaxDays", (int, type(None)), None, "retentionMode clamp only: the longest retention allowed.", example=365,
        schema=_RETENTION_SCHEMA),
    Key("neverExpireCompliant", bool, False, "true: a group that never expires counts as compliant and is left alone. By default "
        "never-expire is non-compliant and gets the configured retention.", example=True),
    Key("orphanRetentionDays", (int, type(None)), None, "A retention for /aws/lambda/<name> groups whose function no longer exists "
        "(found by one listing of functions per reconcile run). null: orphans are only reported. Orphaned groups are never deleted.",
        example=14, schema=_RETENTION_SCHEMA),
    Key("excludePrefixes", list, [], "Groups whose names start with one of these are left alone (no filter, no retention).",
        example=["/aws/vendedlogs/"], schema={"items": {"type": "string", "minLength": 1}}),
    Key("excludePatterns", list, [], "Python regular expressions; a group whose name matches one (re.search) is left alone. One that "
        "can take longer than the function's timeout to match a 512-character name is refused (a quantifier or an alternation inside a "
        "quantified group, a backreference, a lookaround, more than two unbounded quantifiers in a row; docs/rules.md).",
        example=["-sandbox-\\d+$"], schema={"items": {"type": "string", "minLength": 1}}),
    Key("excludeTags", dict, {}, "Tag key -> value (\"*\": any value); a group carrying one is left alone. Teams opt out by "
        "tagging (the shipped cdk.json sets log-group-governor:opt-out = true).", example={"log-group-governor:opt-out": "true"},
        schema={"additionalProperties": {"type": "string", "minLength": 1}}),
    Key("shippingPathLogGroups", list, [], "Log groups that carry the shipping path's own logs (a stream consumer, a Firehose "
        "transform, a second shipper); a trailing * makes an entry a prefix. Never subscribed.",
        example=["/aws/lambda/central-shipper", "/aws/kinesisfirehose/*"], schema={"items": {"type": "string", "minLength": 1}}),
    Key("maxFiltersPerLogGroup", int, DEFAULT_MAX_FILTERS_PER_LOG_GROUP, "Subscription filter quota per log group in your account "
        "(2 by default in AWS; 1 to 10).", example=3, schema={"minimum": 1, "maximum": 10}),
    Key("apiQuotasTps", dict, {}, "The account's quotas, requests per second per CloudWatch Logs operation, for accounts with raised "
        "quotas: " + ", ".join(f"{op} ({tps:g})" for op, tps in DEFAULT_API_QUOTAS_TPS.items()) + ". The governor takes only a "
        "share of them (eventQuotaShare, backfillQuotaShare).", example={"PutSubscriptionFilter": 20},
        schema={"propertyNames": {"enum": list(DEFAULT_API_QUOTAS_TPS)},
                "additionalProperties": {"type": "number", "exclusiveMinimum": 0, "maximum": 10_000}}),
    Key("eventQuotaShare", (int, float), DEFAULT_EVENT_QUOTA_SHARE, "Fraction of each CloudWatch Logs quota the two event handlers "
        "use together, however many groups are created at once.", example=0.2, schema={"exclusiveMinimum": 0, "maximum": 1}),
    Key("backfillQuotaShare", (int, float), DEFAULT_BACKFILL_QUOTA_SHARE, "Fraction of each quota a backfill run (the state machine "
        "or the CLI) aims at; it halves its rate on every throttle and climbs back slowly.", example=0.8,
        schema={"exclusiveMinimum": 0, "maximum": 1}),
    Key("driftFightLimit", int, DEFAULT_DRIFT_FIGHT_LIMIT, "Drift repair stops fighting: a group changed back by another principal "
        "more than this many times within the window is left alone, reported as a conflict naming that principal, and alarms "
        "(1 to 100).", example=5, schema={"minimum": 1, "maximum": 100}),
    Key("driftFightWindowMinutes", int, DEFAULT_DRIFT_FIGHT_WINDOW_MINUTES, "The window driftFightLimit counts in, in minutes "
        "(1 to 10080).", example=120, schema={"minimum": 1, "maximum": 7 * 24 * 60}),
    Key("driftConflictHoldHours", int, DEFAULT_DRIFT_CONFLICT_HOLD_HOURS, "How long the governor leaves a contested group alone, "
        "in hours (1 to 2160); afterwards it repairs it again.", example=48, schema={"minimum": 1, "maximum": 90 * 24}),
    Key("subscriptionMode", str, Via.PER_GROUP.value, "per-group: a subscription filter on each group. account-policy: the "
        "account's one subscription filter policy ships every group, and the governor keeps its NOT IN list "
        "(docs/account-policies.md); switch with log-group-governor migrate.", example="account-policy",
        schema={"enum": [v.value for v in Via]}),
    Key("retentionVia", str, Via.PER_GROUP.value, "per-group: PutRetentionPolicy on each group. account-policy: native retention "
        "policies compiled from the configuration, written by log-group-governor apply; refused at synth where they cannot say "
        "the same thing.", example="account-policy", schema={"enum": [v.value for v in Via]}),
    Key("replayWindowMinutes", (int, type(None)), DEFAULT_REPLAY_WINDOW_MINUTES, "A subscription delivers only what is ingested "
        "after its filter exists: when the governor subscribes a group created at most this many minutes before (1 to 1440), "
        "it replays what the group held before the filter to the destination, as the subscription would have, each event "
        "once. null: no replay. Same-account Lambda, Kinesis and Firehose destinations (docs/design.md); for the organization's "
        "CloudWatch Logs destination the archive pulls it, within these bounds (docs/organization.md).", example=120,
        schema={"minimum": 1, "maximum": 1440}),
    Key("replayMaxEvents", int, DEFAULT_REPLAY_MAX_EVENTS, "The most events replayed for one group (1 to 1000000); the rest are "
        "counted as truncated and reported.", example=50_000, schema={"minimum": 1, "maximum": 1_000_000}),
    Key("replayMaxBytes", int, DEFAULT_REPLAY_MAX_BYTES, "The most message bytes replayed for one group (1024 to 104857600).",
        example=20 * 1024 * 1024, schema={"minimum": 1024, "maximum": 100 * 1024 * 1024}),
    *(Key(c.via_key, str, Via.PER_GROUP.value, f"per-group: {c.summary} on each group a {c.name} rule matches (its handler). "
          f"account-policy: the account's {c.native_form.policy_type} policies, written by log-group-governor apply; refused at synth "
          "where they cannot say what the rules say.", example="account-policy", schema={"enum": [v.value for v in Via]})
      for c in PLUGGED if c.via_key and c.native_form),
    Key("rules", list, [], "Governance rules, in order (docs/rules.md): each has a match (namePrefixes, namePatterns, tags, "
        "logGroupClasses; all given must hold) and sets any of the controls (retention ({days, mode}), shipping ({enabled, "
        "filterPattern}) and the others docs/rules.md lists). Per control, the first matching rule that sets it decides; the flat keys above follow as the last "
        "rules. log-group-governor plan --explain GROUP names the rule behind each control; log-group-governor rules prints "
        "them for a cdk.json.",
        example=[{"name": "production", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "retention": {"days": 365},
                  **{c.name: c.example for c in PLUGGED}},
                 {"name": "noisy batch", "match": {"tags": {"workload": "batch"}}, "retention": {"days": 7},
                  "shipping": {"enabled": True, "filterPattern": "ERROR"}}],
        schema={"items": RULE_SCHEMA}),
)
POLICY_KEYS = POLICY.names


def string_list(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = POLICY.read(raw, key)
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

    filter_name = POLICY.read(raw, "filterName")
    # ':' and '*' CloudWatch Logs refuses (the model's pattern); a quote would break the DeliveryErrors alarm's query.
    if not 1 <= len(filter_name) <= MAX_FILTER_NAME_LENGTH or any(c in filter_name for c in ":*'\""):
        raise ConfigError(f"filterName: expected 1 to {MAX_FILTER_NAME_LENGTH} characters without ':', '*' or quotes; got {filter_name!r}")
    filter_pattern = POLICY.read(raw, "filterPattern")
    if len(filter_pattern) > MAX_FILTER_PATTERN_LENGTH:
        raise ConfigError(f"filterPattern: at most {MAX_FILTER_PATTERN_LENGTH} characters; got {len(filter_pattern)}")

    default_retention = retention_days(POLICY.read(raw, "defaultRetentionDays"), "defaultRetentionDays", allow_none=True)
    overrides_raw = POLICY.read(raw, "retentionOverrides")
    overrides: dict[str, int | None] = {}
    for prefix, days in overrides_raw.items():
        if not prefix:
            raise ConfigError("retentionOverrides: a prefix must not be empty (use defaultRetentionDays for every group)")
        overrides[prefix] = retention_days(days, f"retentionOverrides[{prefix!r}]", allow_none=True)

    mode, bounds = _retention_mode(raw, default_retention, overrides)

    patterns = []
    for index, pattern in enumerate(string_list(raw, "excludePatterns")):
        try:
            patterns.append(re.compile(pattern))
        except re.error as err:
            raise ConfigError(f"excludePatterns: {pattern!r} is not a valid regular expression ({err})") from None
        refuse_backtracking(pattern, f"excludePatterns[{index}]")

    exclude_tags = POLICY.read(raw, "excludeTags")
    for tag_key, tag_value in exclude_tags.items():
        if not tag_key or not isinstance(tag_value, str) or not tag_value:
            raise ConfigError(f"excludeTags: expected tag key -> value (\"*\" for any value); got {tag_key!r}: {tag_value!r}")

    max_filters = POLICY.read(raw, "maxFiltersPerLogGroup")
    if not 1 <= max_filters <= 10:
        raise ConfigError(f"maxFiltersPerLogGroup: expected 1 to 10 (the account's subscription filter quota per log group, default 2); got {max_filters}")

    quotas = POLICY.read(raw, "apiQuotasTps")
    for operation, tps in quotas.items():
        if operation not in DEFAULT_API_QUOTAS_TPS:
            raise ConfigError(f"apiQuotasTps: unknown operation {operation!r}; valid: {', '.join(DEFAULT_API_QUOTAS_TPS)}")
        if isinstance(tps, bool) or not isinstance(tps, (int, float)) or not 0 < tps <= 10_000:
            raise ConfigError(f"apiQuotasTps[{operation!r}]: expected requests per second, more than 0 and at most 10000; got {tps!r}")

    shares = {}
    for key, default in (("eventQuotaShare", DEFAULT_EVENT_QUOTA_SHARE), ("backfillQuotaShare", DEFAULT_BACKFILL_QUOTA_SHARE)):
        share = POLICY.read(raw, key)
        if not 0 < share <= 1:
            raise ConfigError(f"{key}: expected a fraction of each CloudWatch Logs quota, more than 0 and at most 1 (default {default}); got {share!r}")
        shares[key] = float(share)

    drift = {}
    for key, default, low, high, unit in (
        ("driftFightLimit", DEFAULT_DRIFT_FIGHT_LIMIT, 1, 100, "changes back"),
        ("driftFightWindowMinutes", DEFAULT_DRIFT_FIGHT_WINDOW_MINUTES, 1, 7 * 24 * 60, "minutes"),
        ("driftConflictHoldHours", DEFAULT_DRIFT_CONFLICT_HOLD_HOURS, 1, 90 * 24, "hours"),
    ):
        value = POLICY.read(raw, key)
        if not low <= value <= high:
            raise ConfigError(f"{key}: expected {low} to {high} {unit} (default {default}); got {value}")
        drift[key] = value

    replay_window = POLICY.read(raw, "replayWindowMinutes")
    if replay_window is not None and not 1 <= replay_window <= 1440:
        raise ConfigError(f"replayWindowMinutes: expected 1 to 1440 minutes, or null for no replay; got {replay_window}")
    replay_events, replay_bytes = POLICY.read(raw, "replayMaxEvents"), POLICY.read(raw, "replayMaxBytes")
    if not 1 <= replay_events <= 1_000_000:
        raise ConfigError(f"replayMaxEvents: expected 1 to 1000000 events per group; got {replay_events}")
    if not 1024 <= replay_bytes <= 100 * 1024 * 1024:
        raise ConfigError(f"replayMaxBytes: expected 1024 to 104857600 bytes per group; got {replay_bytes}")

    rules_raw = POLICY.read(raw, "rules")
    rules = parse_rules(rules_raw, max_pattern_length=MAX_FILTER_PATTERN_LENGTH)
    if mode is RetentionMode.CLAMP:  # #26: the same bounds as the flat keys', for a rule that inherits clamp
        for rule in rules:
            days = rule.retention.days if rule.retention is not None and rule.retention.mode is None else None
            if days is not None and not bounds[0] <= days <= bounds[1]:
                raise ConfigError(f"{rule.source}.retention.days: {days} days lies outside retentionMinDays..retentionMaxDays "
                                  f"({bounds[0]}..{bounds[1]}); the rule has no mode, so retentionMode clamp applies to its groups "
                                  "and a group without retention gets its days: they must be within the bounds (the group would "
                                  "get them, then be clamped). Give the rule its own mode (minimum or exact), which the bounds do "
                                  "not limit, or days within them")
    via_subscription, via_retention = _via(raw, "subscriptionMode"), _via(raw, "retentionVia")
    if via_subscription is Via.ACCOUNT_POLICY and any(r.shipping is not None and r.shipping.destination is not None for r in rules):
        raise ConfigError("rules: a rule's shipping.destinationArn ships elsewhere than destinationArn, which subscriptionMode account-policy "
                          "cannot say (the account's one policy has one destination); use per-group filters")
    if via_subscription is Via.ACCOUNT_POLICY and any(r.shipping is not None and r.shipping.filter_pattern not in ("", filter_pattern)
                                                      for r in rules):
        raise ConfigError("rules: a rule's shipping.filterPattern differs from filterPattern, which subscriptionMode account-policy cannot "
                          "say (the account's one policy has one pattern); use per-group filters, or filterPattern alone")
    if via_subscription is Via.ACCOUNT_POLICY and uses(rules, SHIPPING) and any(r.match.tags for r in rules if r.shipping is not None):
        raise ConfigError("rules: shipping by tag is not expressible in subscriptionMode account-policy's NOT IN list of names "
                          "unless the governor lists each group; use excludeTags for opt-outs, or per-group filters")
    if via_retention is Via.ACCOUNT_POLICY and any(r.retention is not None for r in rules):
        raise ConfigError("rules: retentionVia account-policy compiles retention from defaultRetentionDays and retentionOverrides only "
                          "(native policies select by name prefix); move rules' retention there, or use retentionVia per-group")

    plugged_via = {c.name: _via(raw, c.via_key) for c in PLUGGED if c.via_key}
    config = PolicyConfig(
        plugged_via=plugged_via,
        rules=rules,
        rules_raw=tuple(rules_raw),
        replay_window_minutes=replay_window,
        replay_max_events=replay_events,
        replay_max_bytes=replay_bytes,
        subscription_mode=via_subscription,
        retention_via=via_retention,
        retention_mode=mode,
        retention_min_days=bounds[0],
        retention_max_days=bounds[1],
        never_expire_compliant=POLICY.read(raw, "neverExpireCompliant"),
        orphan_retention_days=retention_days(POLICY.read(raw, "orphanRetentionDays"), "orphanRetentionDays", allow_none=True),
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
    for control in PLUGGED:  # an account-level form that cannot say what the rules say stops synth, with why
        if control.native_form is not None and config.via(control.name) is Via.ACCOUNT_POLICY:
            control.native_form.compile(config)
    return config


def _via(raw: Mapping[str, Any], key: str) -> Via:
    name = POLICY.read(raw, key)
    try:
        return Via(name)
    except ValueError:
        raise ConfigError(f"{key}: expected {' or '.join(repr(v.value) for v in Via)} (default {Via.PER_GROUP.value!r}); got {name!r}") from None


def _retention_mode(raw: Mapping[str, Any], default_days: int | None,
                    overrides: Mapping[str, int | None]) -> tuple[RetentionMode, tuple[int | None, int | None]]:
    """``retentionMode`` and, for clamp, its bounds. ``shortenRetention: true`` is the older spelling of ``exact``."""
    modes = ", ".join(m.value for m in RetentionMode)
    name = POLICY.read(raw, "retentionMode")
    try:
        mode = RetentionMode(name)
    except ValueError:
        raise ConfigError(f"retentionMode: expected one of {modes}; got {name!r}") from None
    if POLICY.read(raw, "shortenRetention"):
        if "retentionMode" in raw and mode is not RetentionMode.EXACT:
            raise ConfigError(f"shortenRetention: true means retentionMode \"exact\", but retentionMode is {mode.value!r}; set only retentionMode")
        mode = RetentionMode.EXACT
    low = retention_days(POLICY.read(raw, "retentionMinDays"), "retentionMinDays", allow_none=True)
    high = retention_days(POLICY.read(raw, "retentionMaxDays"), "retentionMaxDays", allow_none=True)
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

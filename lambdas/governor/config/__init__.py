"""The governor's configuration: one parser for cdk.json context, the Lambda environment and the CLI.

Values may arrive as JSON types (cdk.json) or as strings (``cdk synth -c key=value``); a string is
decoded as JSON where the key expects a number, boolean, list or object. Every error names the key
and what it accepts, so a wrong value stops synth (or a cold start) with a message that says what to set.
"""

from shared.config import (
    CONTEXT_PREFIX,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    ConfigError,
    decode,
    strip_context_prefix,
)
from .policy import (
    DEFAULT_API_QUOTAS_TPS,
    DEFAULT_BACKFILL_QUOTA_SHARE,
    DEFAULT_DRIFT_CONFLICT_HOLD_HOURS,
    DEFAULT_DRIFT_FIGHT_LIMIT,
    DEFAULT_DRIFT_FIGHT_WINDOW_MINUTES,
    DEFAULT_EVENT_QUOTA_SHARE,
    DEFAULT_MAX_FILTERS_PER_LOG_GROUP,
    ENV_ASPECT,
    ENV_CONFIG,
    ENV_EVENT_CONCURRENCY,
    ENV_FLEET_BUS,
    ENV_OWN_PRINCIPALS,
    ENV_PROTECTED_LOG_GROUPS,
    ENV_REPORTS_BUCKET,
    ENV_STATE_TABLE,
    MAX_FILTER_NAME_LENGTH,
    MAX_FILTER_PATTERN_LENGTH,
    POLICY,
    POLICY_KEYS,
    VALID_RETENTION_DAYS,
    Destination,
    DestinationKind,
    PolicyConfig,
    RetentionMode,
    Via,
    parse_destination,
    parse_policy_config,
    retention_days,
    string_list,
)

__all__ = [
    "CONTEXT_PREFIX", "METRICS_NAMESPACE", "SERVICE_NAME", "ConfigError", "decode", "strip_context_prefix",
    "ENV_ASPECT", "DEFAULT_API_QUOTAS_TPS", "DEFAULT_BACKFILL_QUOTA_SHARE", "DEFAULT_DRIFT_CONFLICT_HOLD_HOURS", "DEFAULT_DRIFT_FIGHT_LIMIT",
    "DEFAULT_DRIFT_FIGHT_WINDOW_MINUTES", "DEFAULT_EVENT_QUOTA_SHARE", "DEFAULT_MAX_FILTERS_PER_LOG_GROUP", "ENV_CONFIG", "ENV_EVENT_CONCURRENCY", "ENV_FLEET_BUS", "ENV_OWN_PRINCIPALS", "ENV_PROTECTED_LOG_GROUPS",
    "ENV_REPORTS_BUCKET", "ENV_STATE_TABLE", "MAX_FILTER_NAME_LENGTH", "MAX_FILTER_PATTERN_LENGTH", "POLICY", "POLICY_KEYS", "VALID_RETENTION_DAYS",
    "Destination", "DestinationKind", "PolicyConfig", "RetentionMode", "Via", "parse_destination", "parse_policy_config", "retention_days",
    "string_list",
]

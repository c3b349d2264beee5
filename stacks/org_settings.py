"""The organization app's settings (``archive:`` and ``rollout:`` keys), without CDK: the CLI reads them
(its -c rule names the nearest key of every prefix) without starting Node."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.config import ConfigError, Key, Keys, unknown_keys_error
from ship_logs.config import ShipLogsConfig, parse_ship_logs_config

from .overrides import Override, StackSetGroup, parse_overrides, stack_set_groups

#: The organization's fleet bus in the central account of each region (stacks/fleet.py).
FLEET_BUS_NAME = "log-group-governor-fleet"
ARCHIVE_PREFIX = "archive:"
DEFAULT_DESTINATION_NAME = "log-group-governor-archive"
#: The organization app's archive keys (org_app.py, in the logging account).
ARCHIVE = Keys(
    ARCHIVE_PREFIX, "archive: the central log archive (org_app.py, logging account)",
    Key("organizationId", str, "", "The organization whose every account may send (the destination's access policy admits "
        "aws:PrincipalOrgID; members then pass a sender role, which the rollout creates). This or memberAccounts is required.",
        example="o-exampleorg1", schema={"pattern": "^(|o-[a-z0-9]{10,32})$"}),
    Key("memberAccounts", list, [], "Instead of organizationId: the accounts that may send, listed (at most {max_listed_accounts}: "
        "the destination policy's size limit).", example=["222222222222", "333333333333"],
        schema={"items": {"type": "string", "pattern": "^\\d{12}$"}}),
    Key("destinationName", str, DEFAULT_DESTINATION_NAME, "The CloudWatch Logs destination's name (members' destinationArn ends in it).",
        example="central-log-archive"),
    Key("shards", int, 1, "The archive stream's shards (1 MB/s of subscription data each; 1 to 500).", example=4,
        schema={"minimum": 1, "maximum": 500}),
    Key("streamRetentionHours", int, 24, "How long the stream keeps records, so a failed batch can be read again (24 to 8760).",
        example=72, schema={"minimum": 24, "maximum": 8760}),
    Key("regions", list, [], "One archive stack per region; empty: one stack, where the CLI's environment says.",
        example=["eu-west-1", "us-east-1"], schema={"items": {"type": "string"}}),
    Key("shipLogs", (dict, type(None)), {}, "The archive's ship-logs sink (the shipLogs keys).", example={"sink": "firehose"}),
    Key("alarmTopicArn", str, "", "SNS topic the archive's alarms notify; empty: a topic of its own.",
        example="arn:aws:sns:eu-west-1:111111111111:platform-alarms"),
    Key("alarmEmail", str, "", "An address to subscribe to the archive's own alarm topic.", example="platform-oncall@example.com"),
    Key("powertoolsLayerArn", str, "", "As governor:powertoolsLayerArn, for the archive's functions.",
        example="arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"),
)
ARCHIVE_KEYS = ARCHIVE.names
#: The archive's own log groups (ship-logs', the Firehose archive's errors, the fleet recorder's) are
#: named under this prefix, so every member's guard knows them before they exist: a member governor
#: running in the logging account itself (an OU that holds it) never subscribes them (the loop guard).
ARCHIVE_LOG_GROUP_PREFIX = "/log-group-governor/archive/"
#: Every log group the archive stack names under the prefix, exactly: an account policy's NOT IN list
#: takes exact names only (the rollout lists them for every member; a test checks the template holds no other).
ARCHIVE_LOG_GROUPS = tuple(ARCHIVE_LOG_GROUP_PREFIX + n for n in ("ship-logs", "firehose-errors", "fleet-recorder", "archive-replay"))
_ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_DESTINATION_NAME = re.compile(r"^[^:*]{1,512}$")
#: What a member may do with the destination: a subscription filter per group, or its account policy.
DESTINATION_ACTIONS = ["logs:PutSubscriptionFilter", "logs:PutAccountPolicy"]


@dataclass(frozen=True)
class ArchiveSettings:
    """The ``archive:*`` context keys of the organization app."""

    organization_id: str | None = None
    member_accounts: tuple[str, ...] = ()
    destination_name: str = DEFAULT_DESTINATION_NAME
    shards: int = 1
    stream_retention_hours: int = 24
    ship_logs: ShipLogsConfig = field(default_factory=ShipLogsConfig)
    alarm_topic_arn: str | None = None
    alarm_email: str | None = None
    powertools_layer_arn: str | None = None
    #: One archive stack per region (empty: one stack, deployed wherever the CLI's environment says).
    regions: tuple[str, ...] = ()

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> ArchiveSettings:
        raw = {k[len(ARCHIVE_PREFIX):]: v for k, v in context.items() if k.startswith(ARCHIVE_PREFIX)}
        unknown = sorted(set(raw) - set(ARCHIVE_KEYS))
        if unknown:
            raise unknown_keys_error(ARCHIVE_PREFIX, unknown, ARCHIVE_KEYS)
        org = ARCHIVE.read(raw, "organizationId") or None
        if org is not None and not _ORG_ID.match(org):
            raise ConfigError(f"archive:organizationId: expected an AWS Organizations id (o-xxxxxxxxxx); got {org!r}")
        members = ARCHIVE.read(raw, "memberAccounts")
        if any(not isinstance(a, str) or not _ACCOUNT.match(a) for a in members):
            raise ConfigError(f"archive:memberAccounts: expected a list of 12-digit account ids; got {members!r}")
        if org is None and not members:
            raise ConfigError("archive:organizationId / archive:memberAccounts: the destination must admit someone: set the "
                              "organization's id (every account of it), or list the member accounts")
        name = ARCHIVE.read(raw, "destinationName")
        if not _DESTINATION_NAME.match(name):
            raise ConfigError(f"archive:destinationName: 1 to 512 characters without ':' or '*'; got {name!r}")
        shards = ARCHIVE.read(raw, "shards")
        if not 1 <= shards <= 500:
            raise ConfigError(f"archive:shards: expected 1 to 500 shards (1 MB/s of subscription data each); got {shards}")
        retention = ARCHIVE.read(raw, "streamRetentionHours")
        if not 24 <= retention <= 8760:
            raise ConfigError(f"archive:streamRetentionHours: expected 24 to 8760 (how long a failed batch can be read again); got {retention}")
        if members and not org:
            size = destination_policy_bytes(members)
            if size > DESTINATION_POLICY_LIMIT_BYTES:
                raise ConfigError(
                    f"archive:memberAccounts: {len(members)} accounts make the destination's access policy about {size:,} bytes; "
                    f"PutDestinationPolicy takes at most {DESTINATION_POLICY_LIMIT_BYTES:,}. Admit the organization instead "
                    f"(archive:organizationId: one condition for any number of accounts; members then pass a sender role, which the "
                    f"rollout creates), or list at most about {max_listed_accounts()} accounts")
        regions = ARCHIVE.read(raw, "regions")
        if any(not isinstance(r, str) or not re.match(r"^[a-z]{2}(-[a-z]+)+-\d$", r) for r in regions):
            raise ConfigError(f"archive:regions: a list of region names (e.g. [\"eu-west-1\", \"us-east-1\"]); got {regions!r}")
        return cls(organization_id=org, member_accounts=tuple(members), destination_name=name, shards=shards, regions=tuple(regions),
                   stream_retention_hours=retention,
                   ship_logs=parse_ship_logs_config(raw.get("shipLogs"), key="archive:shipLogs", require_stream=False),
                   alarm_topic_arn=ARCHIVE.read(raw, "alarmTopicArn") or None, alarm_email=ARCHIVE.read(raw, "alarmEmail") or None,
                   powertools_layer_arn=ARCHIVE.read(raw, "powertoolsLayerArn") or None)


#: PutDestinationPolicy's accessPolicy: at most 5,120 bytes (the PutDestinationPolicy API page; the model sets no maximum).
#: Checked at synth.
DESTINATION_POLICY_LIMIT_BYTES = 5120
#: The longest destination ARN a region and partition can give (for the size check before tokens resolve).
_LONGEST_DESTINATION_ARN = "arn:aws-us-gov:logs:ap-southeast-5:123456789012:destination:" + DEFAULT_DESTINATION_NAME


def destination_policy_bytes(member_accounts: Any, destination_name: str = DEFAULT_DESTINATION_NAME) -> int:
    """The access policy's size as AWS may store it: IAM writes an account principal as its root ARN
    (*assumed* for destination policies; the larger of the two forms is counted)."""
    arn = _LONGEST_DESTINATION_ARN.replace(DEFAULT_DESTINATION_NAME, destination_name)
    policy = destination_policy(ArchiveSettings(member_accounts=tuple(member_accounts), destination_name=destination_name), arn)
    policy["Statement"][0]["Principal"]["AWS"] = [f"arn:aws-us-gov:iam::{a}:root" for a in member_accounts]
    return len(json.dumps(policy))


def max_listed_accounts() -> int:
    """How many listed accounts fit the access policy."""
    low, high = 0, 1000
    while low < high:
        middle = (low + high + 1) // 2
        if destination_policy_bytes([f"{n:012d}" for n in range(middle)]) <= DESTINATION_POLICY_LIMIT_BYTES:
            low = middle
        else:
            high = middle - 1
    return low


def destination_policy(settings: ArchiveSettings, destination_arn: str) -> dict[str, Any]:
    """Who may subscribe to the destination: the organization's accounts, or the listed ones."""
    if settings.organization_id:
        statement = {"Sid": "OrganizationMembers", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": DESTINATION_ACTIONS,
                     "Resource": destination_arn, "Condition": {"StringEquals": {"aws:PrincipalOrgID": [settings.organization_id]}}}
    else:
        statement = {"Sid": "MemberAccounts", "Effect": "Allow", "Principal": {"AWS": list(settings.member_accounts)},
                     "Action": DESTINATION_ACTIONS, "Resource": destination_arn}
    return {"Version": "2012-10-17", "Statement": [statement]}


#: The figure in archive:memberAccounts' help is the code's (docs/configuration.md is generated from it), not typed.
ARCHIVE._keys["memberAccounts"] = replace(ARCHIVE["memberAccounts"],
                                          help=ARCHIVE["memberAccounts"].help.format(max_listed_accounts=max_listed_accounts()))


ROLLOUT_PREFIX = "rollout:"
#: The organization app's rollout keys (org_app.py, from the StackSet administrator).
ROLLOUT = Keys(
    ROLLOUT_PREFIX, "rollout: the StackSet rollout (org_app.py, StackSet administrator)",
    Key("centralAccount", str, "", "The logging account that holds the archive (12 digits).", example="111111111111",
        schema={"pattern": "^\\d{12}$"}, required=True),
    Key("regions", list, [], "The regions to govern, each with the archive deployed.", example=["eu-west-1"],
        schema={"items": {"type": "string"}, "minItems": 1}, required=True),
    Key("waves", list, [], "A list of waves, each a list of OU ids (ou-xxxx-xxxxxxxx, or the root r-xxxx), the first wave "
        "first.", example=[["ou-exam-11111111"], ["ou-exam-22222222"]], schema={"items": {"type": "array", "minItems": 1}, "minItems": 1},
        required=True),
    Key("wave", int, 0, "The last wave rolled out, an index into waves: 0 rolls out the first wave, 1 the first two, and so on; "
        "raise it by one per deploy to roll out wave by wave.", example=1,
        schema={"minimum": 0}),
    Key("destinationName", str, DEFAULT_DESTINATION_NAME, "The archive's destinationName (archive:destinationName).",
        example="central-log-archive"),
    Key("assetBucketPrefix", str, "log-group-governor-assets", "The code's staging buckets' name prefix (a region is appended; "
        "3 to 41 lowercase letters, digits and '-').", example="acme-lgg-assets", schema={"pattern": "^[a-z0-9-]{3,41}$"}),
    Key("failureTolerancePercentage", int, 0, "StackSets: the share of accounts per region that may fail before the region stops "
        "(0 to 100).", example=10, schema={"minimum": 0, "maximum": 100}),
    Key("maxConcurrentPercentage", int, 10, "StackSets: the share of accounts deployed at once per region (1 to 100).", example=25,
        schema={"minimum": 1, "maximum": 100}),
    Key("regionConcurrency", str, "SEQUENTIAL", "StackSets: SEQUENTIAL (a region at a time) or PARALLEL.", example="PARALLEL",
        schema={"enum": ["SEQUENTIAL", "PARALLEL"]}),
    Key("overrides", list, [], "Settings by organizational unit or account, on top of the governor: keys: a list of "
        "{name, organizationalUnits or accounts, governor: {key: value}}. A member gets its OU's overrides, then its account's, "
        "in the order listed (the most specific wins, key by key); each distinct result is a StackSet of its own "
        "(docs/organization.md).", example=[{"name": "sandbox", "organizationalUnits": ["ou-exam-11111111"],
                                             "governor": {"governor:defaultRetentionDays": 7}}],
        schema={"items": {"type": "object", "required": ["name", "governor"], "additionalProperties": False, "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9-]{0,31}$"}, "description": {"type": "string"},
            "organizationalUnits": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "accounts": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^\\d{12}$"}},
            "governor": {"type": "object", "minProperties": 1}}}}),
    Key("organizationTrail", bool, False, "true when an organization trail logs every member's management events: members then "
        "create no trail of their own (governor:createTrail false), which would be a paid second copy ($2.00 per 100,000 "
        "events, docs/cost.md).", example=True),
    Key("callAs", str, "DELEGATED_ADMIN", "DELEGATED_ADMIN: deploy from a delegated StackSet administrator (as AWS advises); SELF: "
        "from the management account.", example="SELF", schema={"enum": ["DELEGATED_ADMIN", "SELF"]}),
)
ROLLOUT_KEYS = ROLLOUT.names
_OU = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_BUCKET_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{2,40}$")


@dataclass(frozen=True)
class RolloutSettings:
    central_account: str
    regions: tuple[str, ...]
    waves: tuple[tuple[str, ...], ...]
    wave: int = 0
    destination_name: str = DEFAULT_DESTINATION_NAME
    asset_bucket_prefix: str = "log-group-governor-assets"
    failure_tolerance_percentage: int = 0
    max_concurrent_percentage: int = 10
    parallel_regions: bool = False
    #: Deployed from a delegated StackSet administrator (the default, as AWS advises), or from the management account.
    delegated_admin: bool = True
    #: Settings by OU and account (stacks/overrides.py), in the order listed.
    overrides: tuple[Override, ...] = ()
    #: An organization trail logs every member's management events: members create no trail.
    organization_trail: bool = False

    @property
    def organizational_units(self) -> tuple[str, ...]:
        """The OUs targeted so far: every wave up to ``wave``."""
        return tuple(ou for wave in self.waves[: self.wave + 1] for ou in wave)

    def stack_sets(self, *, every_wave: bool = False) -> list[StackSetGroup]:
        """The StackSets of each region: one per distinct resolved configuration of the targeted OUs (all waves'
        with ``every_wave``, to check configurations before their wave is out)."""
        ous = tuple(ou for wave in self.waves for ou in wave) if every_wave else self.organizational_units
        return stack_set_groups(self.overrides, ous)

    def destination_arn(self, region: str, partition: str = "aws") -> str:
        return f"arn:{partition}:logs:{region}:{self.central_account}:destination:{self.destination_name}"

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> RolloutSettings | None:
        """None when the context has no ``rollout:`` key (the organization app deploys the archive alone)."""
        raw = {k[len(ROLLOUT_PREFIX):]: v for k, v in context.items() if k.startswith(ROLLOUT_PREFIX)}
        if not raw:
            return None
        unknown = sorted(set(raw) - set(ROLLOUT_KEYS))
        if unknown:
            raise unknown_keys_error(ROLLOUT_PREFIX, unknown, ROLLOUT_KEYS)
        central = ROLLOUT.read(raw, "centralAccount")
        if not _ACCOUNT.match(central):
            raise ConfigError(f"rollout:centralAccount: the logging account that holds the archive (12 digits); got {central!r}")
        regions = ROLLOUT.read(raw, "regions")
        if not regions or any(not isinstance(r, str) or not _REGION.match(r) for r in regions):
            raise ConfigError(f"rollout:regions: the regions to govern, each with the archive deployed (e.g. [\"eu-west-1\"]); got {regions!r}")
        waves = ROLLOUT.read(raw, "waves")
        if not waves or any(not isinstance(w, list) or not w or any(not isinstance(o, str) or not _OU.match(o) for o in w) for w in waves):
            raise ConfigError("rollout:waves: a list of waves, each a list of OU ids (ou-xxxx-xxxxxxxx, or the root r-xxxx), "
                              f"the first wave first; got {waves!r}")
        wave = ROLLOUT.read(raw, "wave")
        if not 0 <= wave < len(waves):
            raise ConfigError(f"rollout:wave: the last wave rolled out, an index into rollout:waves (0: the first wave; 0 to {len(waves) - 1}); got {wave}")
        prefix = ROLLOUT.read(raw, "assetBucketPrefix")
        if not _BUCKET_PREFIX.match(prefix):
            raise ConfigError(f"rollout:assetBucketPrefix: 3 to 41 lowercase letters, digits and '-' (a region is appended); got {prefix!r}")
        tolerance = ROLLOUT.read(raw, "failureTolerancePercentage")
        concurrency = ROLLOUT.read(raw, "maxConcurrentPercentage")
        if not 0 <= tolerance <= 100 or not 1 <= concurrency <= 100:
            raise ConfigError(f"rollout:failureTolerancePercentage (0-100, default 0) / maxConcurrentPercentage (1-100, default 10); "
                              f"got {tolerance} and {concurrency}")
        parallel = ROLLOUT.read(raw, "regionConcurrency")
        if parallel not in ("SEQUENTIAL", "PARALLEL"):
            raise ConfigError(f"rollout:regionConcurrency: SEQUENTIAL (default) or PARALLEL; got {parallel!r}")
        call_as = ROLLOUT.read(raw, "callAs")
        if call_as not in ("DELEGATED_ADMIN", "SELF"):
            raise ConfigError(f"rollout:callAs: DELEGATED_ADMIN (default: deploy from a delegated StackSet administrator) or SELF "
                              f"(from the management account); got {call_as!r}")
        overrides = parse_overrides(ROLLOUT.read(raw, "overrides"), waves=waves)
        return cls(central_account=central, regions=tuple(regions), waves=tuple(tuple(w) for w in waves), wave=wave,
                   delegated_admin=call_as == "DELEGATED_ADMIN", overrides=overrides,
                   organization_trail=ROLLOUT.read(raw, "organizationTrail"),
                   destination_name=ROLLOUT.read(raw, "destinationName"), asset_bucket_prefix=prefix,
                   failure_tolerance_percentage=tolerance, max_concurrent_percentage=concurrency, parallel_regions=parallel == "PARALLEL")


def member_base(context: Mapping[str, Any], *, organization_trail: bool) -> dict[str, Any]:
    """The organization's context as every member starts from it, whatever cdk.json says for a single account: no dashboard
    (the fleet view is central), and no trail where the organization's already logs its management events (a second copy is
    paid). Overrides come after: one may ask for either."""
    return {**context, "governor:dashboard": False, **({"governor:createTrail": False} if organization_trail else {})}


def member_context(resolved: Mapping[str, Any], *, rollout: RolloutSettings | None = None, region: str | None = None,
                   organization_id: str | None = None, overridden: frozenset[str] = frozenset()) -> dict[str, Any]:
    """What the rollout sets itself on a member's resolved context: the archive's loop guard, and with ``region`` its region's
    archive, sender role and fleet bus, and no alarm topic of its own unless its configuration names one (its alarms reach the
    fleet view's MembersAlarming). The CLI's ``--member`` passes no region: of these, the guard alone decides groups."""
    out = dict(resolved)
    # The loop guard, for a member that is the logging account itself: the archive's exact names (what an account policy's
    # NOT IN takes), and in per-group mode its prefix too (whatever the archive adds later).
    guard = [*_as_list(out.get("governor:shippingPathLogGroups")), *ARCHIVE_LOG_GROUPS]
    if str(out.get("governor:subscriptionMode", "per-group")) != "account-policy":
        guard.append(ARCHIVE_LOG_GROUP_PREFIX + "*")
    out["governor:shippingPathLogGroups"] = list(dict.fromkeys(guard))
    if rollout is not None and region is not None:
        if "governor:alarmTopic" not in overridden:  # ``overridden``: the keys the member's overrides set
            out["governor:alarmTopic"] = bool(out.get("governor:alarmTopicArn") or out.get("governor:alarmEmail"))
        out.update({"governor:destinationArn": rollout.destination_arn(region), "governor:destinationRoleArn": "",
                    # An organization-wide destination checks each sender through a role of its own
                    # (CreateSubscriptionFilter-IAMrole); listed accounts need none.
                    "governor:senderRole": organization_id is not None,
                    "governor:fleetBusArn": f"arn:aws:events:{region}:{rollout.central_account}:event-bus/{FLEET_BUS_NAME}"})
    return out


def _as_list(value: Any) -> list[str]:
    """A context list, as cdk.json holds it or as `-c` passes it (JSON in a string)."""
    if isinstance(value, str):
        value = json.loads(value) if value else []
    return list(value or [])

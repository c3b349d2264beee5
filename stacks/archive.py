"""LogArchiveStack: the organization's central log archive, one per region in a logging account (#10).

A CloudWatch Logs destination (the cross-account kind PutSubscriptionFilter and PutAccountPolicy
accept) in front of an encrypted Kinesis data stream, whose policy admits the organization
(``aws:PrincipalOrgID``) or listed accounts only, and ship-logs consuming the stream: the same
parsing, metrics and sinks as the per-account destination, records keeping their source account and
region. Members' governors point ``destinationArn`` at the destination of their region (output
``DestinationArn``); a destination takes only log groups of its own region.

The loop guard: the archive's own log groups (ship-logs', the Firehose archive's error log, the fleet
recorder's) are in the central account, not in a member's, so no member's subscription can feed them
back; they are named under ``ARCHIVE_LOG_GROUP_PREFIX``, which the rollout adds to every member's
``shippingPathLogGroups``, so a member governor in the central account itself never subscribes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_logs as logs
from constructs import Construct

from fleet.rollup import REPORTING_METRIC
from shared.config import METRICS_NAMESPACE, SERVICE_NAME, ConfigError, Key, Keys, unknown_keys_error
from ship_logs.config import ShipLogsConfig, parse_ship_logs_config

from .alarms import ALARM_PERIOD, Alarms
from .buckets import private_bucket
from .fleet import FleetView
from .powertools_layer import powertools_layer
from .ship_logs import ShipLogsDestination

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
ARCHIVE_LOG_GROUPS = tuple(ARCHIVE_LOG_GROUP_PREFIX + n for n in ("ship-logs", "firehose-errors", "fleet-recorder"))
_ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_DESTINATION_NAME = re.compile(r"^[^:*]{1,512}$")
#: How far behind its stream the archive's consumer may fall before it alarms.
ARCHIVE_MAX_LAG = Duration.minutes(10)
#: The archive expects a delivery from reporting members at least this often.
DELIVERY_SILENCE = Duration.hours(1)
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


class LogArchiveStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: ArchiveSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        access_logs = private_bucket(self, "AccessLogs", expire_after=Duration.days(90))
        alarms = Alarms(self, "Alarms", topic_arn=settings.alarm_topic_arn, email=settings.alarm_email)
        layer = powertools_layer(self, "Powertools", override_arn=settings.powertools_layer_arn)

        self.stream = kinesis.Stream(self, "Stream", shard_count=settings.shards, encryption=kinesis.StreamEncryption.MANAGED,
                                     retention_period=Duration.hours(settings.stream_retention_hours))
        self.consumer = ShipLogsDestination(self, "ShipLogs", config=settings.ship_logs, powertools_layer=layer, access_logs=access_logs,
                                            alarms=alarms, stream=self.stream, log_group_prefix=ARCHIVE_LOG_GROUP_PREFIX)

        # Every failure loud: a consumer that falls behind its stream alarms before records age out of it.
        alarms.alarm(self, "ArchiveConsumerBehind", threshold=ARCHIVE_MAX_LAG.to_milliseconds(),
                     metric=self.consumer.function.function.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(5)),
                     description=f"the archive's ship-logs is more than {ARCHIVE_MAX_LAG.to_minutes():.0f} minutes behind its stream: "
                                 f"the sink is slow or failing (see its errors), or archive:shards is too low for the members' volume")

        # CloudWatch Logs writes into the stream with this role. Its trust names only the condition key AWS's
        # own example of a destination role uses (CreateDestination: aws:SourceArn, the senders' CloudWatch Logs
        # ARNs): the listed accounts, or for an organization every account of this region, since no AWS page
        # says CloudWatch Logs sends aws:SourceOrgID here. Who may send at all is the destination's access
        # policy's decision (aws:PrincipalOrgID, checked through each member's sender role).
        senders = settings.member_accounts if not settings.organization_id else ("*",)
        sources = {"StringLike": {"aws:SourceArn": [f"arn:{self.partition}:logs:{self.region}:{a}:*" for a in
                                                    dict.fromkeys((*senders, *(() if settings.organization_id else (self.account,))))]}}
        role = iam.Role(self, "DeliveryRole", assumed_by=iam.ServicePrincipal("logs.amazonaws.com", conditions=sources),
                        description="log-group-governor: lets CloudWatch Logs put the admitted accounts' log events into the archive stream")
        role.add_to_policy(iam.PolicyStatement(actions=["kinesis:PutRecord", "kinesis:PutRecords"], resources=[self.stream.stream_arn]))

        self.destination_arn = f"arn:{self.partition}:logs:{self.region}:{self.account}:destination:{settings.destination_name}"
        self.destination = logs.CfnDestination(
            self, "Destination", destination_name=settings.destination_name, role_arn=role.role_arn,
            target_arn=self.stream.stream_arn, destination_policy=self.to_json_string(destination_policy(settings, self.destination_arn)))
        self.destination.node.add_dependency(role)  # its policy too: CloudWatch Logs tests delivery on create

        self.fleet = FleetView(self, "Fleet", organization_id=settings.organization_id, member_accounts=settings.member_accounts,
                               powertools_layer=layer, alarms=alarms, log_group_prefix=ARCHIVE_LOG_GROUP_PREFIX)
        self._delivery_alarms(alarms)

        CfnOutput(self, "DestinationArn", value=self.destination_arn,
                  description="members' governor:destinationArn in this region (a destination takes its own region's groups only)")
        CfnOutput(self, "ShippingPathLogGroups", value=self.to_json_string(self.consumer.protected_log_groups),
                  description="a governor in this account must never subscribe these (governor:shippingPathLogGroups)")

    def _delivery_alarms(self, alarms: Alarms) -> None:
        """The destination side of delivery. A wrong trust (the sender role, this delivery role) or a refused
        policy shows nowhere in the members' governors: their filters exist and nothing arrives. So the
        archive alarms when its stream takes no record for an hour while the fleet view says members are
        reporting, and when the stream refuses writes (CloudWatch Logs retries throttled deliveries for
        24 hours, then drops them)."""
        incoming = self.stream.metric_incoming_records(statistic="Sum", period=DELIVERY_SILENCE)
        reporting = cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=REPORTING_METRIC, dimensions_map={"service": SERVICE_NAME},
                                      statistic="Maximum", period=DELIVERY_SILENCE)
        alarms.alarm(self, "ArchiveDeliveriesStopped", metric=cloudwatch.MathExpression(
            expression="IF(FILL(reporting, 0) >= 1 AND FILL(incoming, 0) < 1, 1, 0)", using_metrics={"incoming": incoming, "reporting": reporting},
            period=DELIVERY_SILENCE, label="no deliveries while members report"),
            description=f"the archive's stream took no record for {DELIVERY_SILENCE.to_hours():.0f} hour while members are reporting: "
                        f"CloudWatch Logs cannot deliver (a member's sender role, this stack's delivery role or the destination's access "
                        f"policy refuses); run python -m cli selftest in a member to see which step fails")
        alarms.alarm(self, "ArchiveWritesThrottled", metric=self.stream.metric("WriteProvisionedThroughputExceeded", statistic="Sum",
                                                                                period=ALARM_PERIOD),
                     description="the archive's stream refused writes for throughput: deliveries are delayed and dropped after 24 "
                                 "hours of retries; raise archive:shards")


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

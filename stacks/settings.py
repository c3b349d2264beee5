"""The deployment's settings: cdk.json context (``governor:*`` keys), validated when the app synthesizes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from governor.native_retention import compile_retention
from governor.pacing import DEFAULT_EVENT_CONCURRENCY
from governor.config import (
    POLICY_KEYS,
    ConfigError,
    DestinationKind,
    PolicyConfig,
    Via,
    POLICY,
    parse_policy_config,
    strip_context_prefix,
)
from shared.config import Key, Keys
from ship_logs.config import ShipLogsConfig, parse_ship_logs_config

_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EVENT_BUS_ARN = re.compile(r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9._-]{1,256}$")
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")

DEFAULT_RECONCILE_SCHEDULE = "rate(1 day)"
#: EventBridge Scheduler's expressions: rate(<n> <unit>) or cron(<six fields>).
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(\S+( \S+){5}\))$")
#: The deployment keys (``governor:`` prefix): what the stack deploys around the policy.
DEPLOYMENT = Keys(
    "governor:", "Deployment: what the stack deploys around the policy",
    Key("createTrail", bool, True, "Create a single-region CloudTrail trail for write management events (EventBridge sees "
        "CreateLogGroup only through one). Set false when the account already has one logging management events in this region "
        "(an organization trail counts): a second copy of management events is paid ($2.00 per 100,000, docs/cost.md).", example=False),
    Key("dashboard", bool, True, "Deploy the governor's CloudWatch dashboard ($3.00 a month beyond an account's 3 free ones, "
        "docs/cost.md). The organization rollout sets false for members: the fleet view is central.", example=False),
    Key("alarmTopicArn", str, "", "SNS topic every alarm notifies. Empty: the stack creates an encrypted topic (output AlarmTopicArn).",
        example="arn:aws:sns:eu-west-1:123456789012:platform-alarms", schema={"pattern": "^(|arn:aws[a-z-]*:sns:.+)$"}),
    Key("alarmTopic", bool, True, "false: no alarm topic in this account (no SNS topic, no KMS key: $1.00 a month less, "
        "docs/cost.md); only with fleetBusArn, whose forwarder carries each alarm's state change to the organization's fleet view, "
        "where MembersAlarming notifies the archive's topic. The rollout sets false for members that set neither alarmTopicArn "
        "nor alarmEmail.", example=False),
    Key("alarmEmail", str, "", "An address to subscribe to the stack's own alarm topic (it receives a confirmation mail first); "
        "not with alarmTopicArn.", example="platform-oncall@example.com"),
    Key("eventHandlerConcurrency", int, DEFAULT_EVENT_CONCURRENCY, "The most containers of each event handler draining its queue at "
        "once (2 to 1000). Their pacing divides eventQuotaShare between them, so raising it does not raise the share of the quotas "
        "the handlers take.", example=4, schema={"minimum": 2, "maximum": 1000}),
    Key("powertoolsLayerArn", str, "", "A Powertools for AWS Lambda (Python, arm64, 3.13) layer version for the functions. Empty: "
        "the stack builds the layer from the Powertools release the tests run, with the versions and hashes of "
        "requirements-dev.lock (stacks/powertools_layer.py). A layer named here runs untested code.",
        example="arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"),
    Key("backfillOnDeploy", bool, False, "Start a backfill apply run on the first deploy and on every deploy that changes the policy.",
        example=True),
    Key("reconcileSchedule", (str, type(None)), DEFAULT_RECONCILE_SCHEDULE, "When the reconcile runs: an EventBridge Scheduler "
        "expression (rate(12 hours), cron(0 3 * * ? *)), or null for none. A reconcile is a backfill apply run over every group "
        "that catches what events missed and publishes coverage.", example="cron(0 3 * * ? *)"),
    Key("removeFiltersOnDelete", bool, False, "true: deleting the stack removes the governor's own filters (by name) from every "
        "group first, paced and resumable (docs/operations.md); other tools' filters are never touched.", example=True),
    Key("shipLogs", (dict, type(None)), {}, "The built-in destination's sink and concurrency cap (the keys below, docs/ship-logs.md). "
        "Ignored when destinationArn is set.", example={"sink": "firehose", "reservedConcurrency": 10}),
    Key("fleetBusArn", str, "", "The organization's fleet bus (the archive stack's FleetBusArn output of this region): finished "
        "reconciles put their coverage there, and the governor's alarm state changes follow. The StackSet rollout sets it.",
        example="arn:aws:events:eu-west-1:111111111111:event-bus/log-group-governor-fleet"),
    Key("senderRole", bool, False, "true: the stack creates the sender role an organization-wide CloudWatch Logs destination needs "
        "(trusted by logs.amazonaws.com of this account and region) and passes it on every filter and in the account policy. "
        "The organization rollout sets it for every member when archive:organizationId is set.", example=True),
)
DEPLOYMENT_KEYS = DEPLOYMENT.names
ALL_KEYS = POLICY_KEYS + DEPLOYMENT_KEYS
#: Every governor: key, as synth reads them.
GOVERNOR = Keys("governor:", "governor", *(POLICY[k] for k in POLICY), *(DEPLOYMENT[k] for k in DEPLOYMENT))


@dataclass(frozen=True)
class DeploymentSettings:
    #: The policy; ``policy.destination`` is None when the stack deploys its built-in destination.
    policy: PolicyConfig
    create_trail: bool = True
    #: Deploy the governor's dashboard (an organization's members do not: the fleet view is central).
    dashboard: bool = True
    alarm_topic_arn: str | None = None
    #: False: no topic; the alarms' state changes reach the organization's fleet view (fleet_bus_arn) only.
    alarm_topic: bool = True
    #: Subscribe this address to the stack's own alarm topic (ignored with alarm_topic_arn).
    alarm_email: str | None = None
    #: The most containers of each event handler draining its queue at once (SQS allows 2 to 1000).
    event_handler_concurrency: int = DEFAULT_EVENT_CONCURRENCY
    #: None: the public Powertools layer of the stack's region.
    powertools_layer_arn: str | None = None
    #: Start a backfill apply run on the first deploy and on every deploy that changes the policy.
    backfill_on_deploy: bool = False
    #: When the reconcile runs (an EventBridge Scheduler expression); None: never.
    reconcile_schedule: str | None = DEFAULT_RECONCILE_SCHEDULE
    #: Deleting the stack removes the governor's own filters from every group.
    remove_filters_on_delete: bool = False
    #: The built-in destination's sink (used when the policy names no destination).
    ship_logs: ShipLogsConfig = field(default_factory=ShipLogsConfig)
    #: The organization's fleet bus: finished runs report their coverage there, alarms follow (None: on its own).
    fleet_bus_arn: str | None = None
    #: Create the sender role an organization-wide CloudWatch Logs destination needs and pass it as the
    #: filters' and the account policy's role (stacks.sender_role).
    sender_role: bool = False

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> DeploymentSettings:
        """``context``: the app's context (cdk.json plus ``-c`` overrides); only ``governor:*`` keys are read."""
        raw = strip_context_prefix(context, ALL_KEYS)
        policy = parse_policy_config(raw, require_destination=False)

        alarm_topic = DEPLOYMENT.read(raw, "alarmTopicArn") or None
        if alarm_topic and not _SNS_ARN.match(alarm_topic):
            raise ConfigError(f"alarmTopicArn: expected an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>) or \"\"; got {alarm_topic!r}")
        email = DEPLOYMENT.read(raw, "alarmEmail") or None
        if email and not _EMAIL.match(email):
            raise ConfigError(f"alarmEmail: expected an e-mail address to subscribe to the alarm topic, or \"\"; got {email!r}")
        if email and alarm_topic:
            raise ConfigError("alarmEmail: subscribes an address to the stack's own topic; with alarmTopicArn set, subscribe it to that topic instead")
        alarm_topic_wanted = DEPLOYMENT.read(raw, "alarmTopic")
        concurrency = DEPLOYMENT.read(raw, "eventHandlerConcurrency")
        if not 2 <= concurrency <= 1000:
            raise ConfigError(f"eventHandlerConcurrency: expected 2 to 1000 (the most containers of each event handler draining its queue, as SQS event sources allow); got {concurrency}")
        layer = DEPLOYMENT.read(raw, "powertoolsLayerArn") or None
        if layer and not _LAYER_ARN.match(layer):
            raise ConfigError(f"powertoolsLayerArn: expected a Lambda layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>) or \"\"; got {layer!r}")
        schedule = DEPLOYMENT.read(raw, "reconcileSchedule")
        if schedule in ("null", ""):  # `-c governor:reconcileSchedule=null` arrives as a string
            schedule = None
        if schedule is not None and not _SCHEDULE.match(schedule):
            raise ConfigError(f"reconcileSchedule: expected an EventBridge Scheduler expression such as \"rate(1 day)\" or "
                              f"\"cron(0 3 * * ? *)\", or null for no scheduled reconcile; got {schedule!r}")
        fleet_bus = DEPLOYMENT.read(raw, "fleetBusArn") or None
        if fleet_bus and not _EVENT_BUS_ARN.match(fleet_bus):
            raise ConfigError(f"fleetBusArn: expected the central account's fleet bus (arn:aws:events:<region>:<account>:event-bus/<name>, "
                              f"the archive stack's FleetBusArn output) or \"\"; got {fleet_bus!r}")
        if not alarm_topic_wanted and (alarm_topic or email):
            raise ConfigError("alarmTopic: false means no topic, yet alarmTopicArn or alarmEmail names one: set alarmTopic true, or "
                              "leave both empty")
        if not alarm_topic_wanted and not fleet_bus:
            raise ConfigError("alarmTopic: false leaves every alarm notifying nobody unless an organization's fleet view takes its "
                              "state changes: set fleetBusArn too (the rollout sets both), or alarmTopic true")
        backfill_on_deploy = DEPLOYMENT.read(raw, "backfillOnDeploy")
        if policy.subscription_mode is Via.ACCOUNT_POLICY and not backfill_on_deploy and schedule is None:
            raise ConfigError("subscriptionMode: \"account-policy\" is written by a finished run over every group, and neither "
                              "backfillOnDeploy nor reconcileSchedule starts one: set backfillOnDeploy true or a reconcileSchedule")
        prefixes = [n for n in policy.shipping_path_log_groups if n.endswith("*")]
        if policy.subscription_mode is Via.ACCOUNT_POLICY and prefixes:
            raise ConfigError(f"shippingPathLogGroups: {prefixes} are prefixes, and an account policy's NOT IN list holds exact names only "
                              f"(PutAccountPolicy: LogGroupName NOT IN [...]): a group created later under them would ship and could feed "
                              f"its destination. List the exact names (an organization's archive: its ShippingPathLogGroups output), "
                              f"or use subscriptionMode \"per-group\"")
        if policy.retention_via is Via.ACCOUNT_POLICY:
            compiled = compile_retention(policy)
            if not compiled.expressible:
                raise ConfigError("retentionVia: \"account-policy\" cannot say what this configuration says, and the governor never "
                                  "shortens silently: " + "; ".join(compiled.refusals) + ". Change those keys, or use retentionVia \"per-group\"")
        sender_role = DEPLOYMENT.read(raw, "senderRole")
        destination = policy.destination
        if sender_role and (destination is None or destination.kind is not DestinationKind.LOGS_DESTINATION):
            raise ConfigError("senderRole: only a CloudWatch Logs destination of another account (arn:<partition>:logs:<region>:<account>:"
                              "destination:<name>) whose access policy admits an organization takes a sender role; set it false")
        if sender_role and destination is not None and destination.role_arn:
            raise ConfigError("senderRole / destinationRoleArn: senderRole true creates the sender role; destinationRoleArn names "
                              "an existing one: set only one")
        return cls(
            sender_role=sender_role,
            remove_filters_on_delete=DEPLOYMENT.read(raw, "removeFiltersOnDelete"),
            reconcile_schedule=schedule,
            policy=policy,
            create_trail=DEPLOYMENT.read(raw, "createTrail"), dashboard=DEPLOYMENT.read(raw, "dashboard"),
            alarm_topic_arn=alarm_topic, alarm_topic=alarm_topic_wanted,
            alarm_email=email,
            event_handler_concurrency=concurrency,
            powertools_layer_arn=layer,
            backfill_on_deploy=backfill_on_deploy,
            fleet_bus_arn=fleet_bus,
            ship_logs=parse_ship_logs_config(raw.get("shipLogs"), require_stream=False),
        )

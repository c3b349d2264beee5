"""GovernorStack: the trail, the CreateLogGroup rule and its two functions, the backfill, the destination
(ship-logs unless one is configured), and their safety nets."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from governor.config import (
    ENV_ASPECT,
    ENV_CONFIG,
    ENV_EVENT_CONCURRENCY,
    ENV_FLEET_BUS,
    ENV_OWN_PRINCIPALS,
    ENV_PROTECTED_LOG_GROUPS,
    ENV_REPORTS_BUCKET,
    ENV_STATE_TABLE,
    METRICS_NAMESPACE,
    SERVICE_NAME,
    ConfigError,
    Destination,
    DestinationKind,
    PolicyConfig,
    Via,
)
from governor.account_policy import SELECTION_LIMIT_BYTES, SELECTION_WARN_SHARE
from governor.events import destination_pattern, event_pattern
from governor.controls.kms_key import CREATE_KEY, NAME as KMS_KEY

from governor import controls, metric_names
from governor.controls import Control
from governor.gap_settings import ENV_GAP_QUEUE_URL
from governor.pacing import EVENT_HANDLER_TIMEOUT_S
from governor.policy import Reason

from .alarms import ALARM_PERIOD, Alarms
from .backfill import BackfillRunner
from .buckets import private_bucket
from .dashboard import GovernorDashboard
from .dead_letters import DeadLetters
from .delivery_gaps import DeliveryGapReplay
from .event_queue import EventQueue
from .destination import grant_logs_invoke
from .fleet import FORWARDER_ROLE, GAP_REPLAY_ROLE, REPORTER_ROLE, SUBSCRIBER_ROLE
from .functions import GovernorFunction, acknowledge, log_groups_arn
from .powertools_layer import powertools_layer
from .replay_reader import ReplayReader
from .sender_role import SenderRole
from .settings import DeploymentSettings
from .ship_logs import ShipLogsDestination
from .state_table import EVENT_HANDLER_ACTIONS, RECONCILE_ACTIONS, StateTable
from .trail import ManagementEventsTrail
from .uninstall import FilterRemovalOnDelete

#: Lambda allows 4 KB for all environment variables of a function; keep room for the others.
MAX_CONFIG_JSON_BYTES = 3_300
#: How long EventBridge keeps trying to hand an event to a function, and how often, before its DLQ.
EVENT_MAX_AGE = Duration.hours(6)
EVENT_RETRY_ATTEMPTS = 8
#: Access logs of the governor's buckets, kept for a quarter.
ACCESS_LOG_EXPIRY = Duration.days(90)
EVENT_HANDLER_TIMEOUT = Duration.seconds(EVENT_HANDLER_TIMEOUT_S)

_WILDCARD_REASON = (
    "the governor acts on every log group of its account and region, whose names are unknown at deploy "
    "time; the resource is scoped to log-group:* of this account and region"
)


class GovernorComposition:
    """The governor's resources, composed into the stack that mixes this in: a stack deployed by
    `cdk deploy` (GovernorStack) or the template a StackSet rolls out to an organization
    (stacks.rollout.MemberGovernorStack). Its constructs are the stack's direct children, so their
    logical ids do not depend on which."""

    def _compose(self: Any, settings: DeploymentSettings) -> None:

        access_logs = private_bucket(self, "AccessLogs", expire_after=ACCESS_LOG_EXPIRY)
        if settings.create_trail:
            trail = ManagementEventsTrail(self, "ManagementEvents", access_logs=access_logs)
            CfnOutput(self, "TrailName", value=trail.trail.ref, description="the trail whose write management events wake the governor")

        layer = powertools_layer(self, "Powertools", override_arn=settings.powertools_layer_arn)
        destination = settings.policy.destination
        protected_log_groups: list[str] = []
        self.ship_logs: ShipLogsDestination | None = None
        alarms = Alarms(self, "Alarms", topic_arn=settings.alarm_topic_arn, email=settings.alarm_email, topic=settings.alarm_topic)
        if destination is None:
            self.ship_logs = ShipLogsDestination(self, "ShipLogs", config=settings.ship_logs, powertools_layer=layer,
                                                 access_logs=access_logs, alarms=alarms)
            destination = self.ship_logs.destination
            protected_log_groups = self.ship_logs.protected_log_groups
        elif destination.kind is DestinationKind.LAMBDA:
            grant_logs_invoke(self, destination)
        self.sender_role: SenderRole | None = None
        if settings.sender_role:
            # An organization-wide destination checks membership through this account's role: every filter
            # and the account policy name it (CreateSubscriptionFilter-IAMrole).
            self.sender_role = SenderRole(self, "SenderRole")
            destination = replace(destination, role_arn=self.sender_role.role_arn)
        policy = replace(settings.policy, destination=destination)
        if any(rule.value(KMS_KEY) == CREATE_KEY for rule in policy.rules):
            policy = self._create_rule_keys(policy)
        account_subscription = policy.subscription_mode is Via.ACCOUNT_POLICY
        if account_subscription:
            _check_account_policy_destination(self, destination)

        self.state = StateTable(self, "State")
        environment = {
            ENV_CONFIG: self._config_json(policy),
            ENV_PROTECTED_LOG_GROUPS: self.to_json_string(protected_log_groups),
            ENV_STATE_TABLE: self.state.table.table_name,
        }
        dead_letters = DeadLetters(self, "DeadLetters", alarms=alarms, what="CreateLogGroup and drift events")
        common = dict(
            environment={**environment, ENV_EVENT_CONCURRENCY: str(settings.event_handler_concurrency)},
            powertools_layer=layer,
            timeout=EVENT_HANDLER_TIMEOUT,
        )

        # #31: a member of an organization whose groups ship to the archive's CloudWatch Logs destination asks the archive,
        # over the fleet bus, to pull what each new group held before its filter, through a read-only role the archive alone
        # may assume (stacks/replay_reader.py).
        pulls = archive_pulls(settings, policy, destination)
        self.replay_reader: ReplayReader | None = None
        if pulls:
            self.replay_reader = ReplayReader(self, "ReplayReader", central_account=settings.fleet_bus_arn.split(":")[4])
        self.subscribe = GovernorFunction(
            self,
            "SubscribeLogGroup",
            handler="governor.handlers.create_log_group.subscribe_log_group",
            description="subscribes new log groups to the log destination",
            # In account-policy mode it also takes and releases the policy's lock (DeleteItem releases it).
            statements=[*subscription_statements(self, policy, destination),
                        *([iam.PolicyStatement(actions=["events:PutEvents"], resources=[settings.fleet_bus_arn])] if pulls else []),
                        self.state.statement((*EVENT_HANDLER_ACTIONS, "dynamodb:DeleteItem") if account_subscription else EVENT_HANDLER_ACTIONS)],
            # The fleet bus admits the members' governor roles by name (stacks.fleet.SUBSCRIBER_ROLE).
            role_name=SUBSCRIBER_ROLE.format(region=self.region) if pulls else None,
            **common,
        )
        if pulls:
            self.subscribe.function.add_environment(ENV_FLEET_BUS, settings.fleet_bus_arn)
        self.set_retention = GovernorFunction(
            self,
            "SetRetention",
            handler="governor.handlers.create_log_group.set_retention",
            description="gives new log groups the configured retention",
            statements=[*retention_statements(self, policy), self.state.statement(EVENT_HANDLER_ACTIONS)],
            **common,
        )
        # The controls a rule sets (#21): a handler of its own each, as its module declares it (governor.controls), deployed
        # only when a rule sets it, with only its calls.
        ruled = [c for c in controls.REGISTRY if c.handler is not None and c.aspect in policy.event_aspects]
        #: Each event handler and the aspect it governs.
        self.event_handlers = [(self.subscribe, "subscription"), (self.set_retention, "retention")]
        for control in ruled:
            construct_id, entry, description = control.handler  # type: ignore[misc]
            function = GovernorFunction(self, construct_id, handler=f"governor.handlers.create_log_group.{entry}", description=description,
                                        statements=[*ruled_statements(self, policy, control), self.state.statement(EVENT_HANDLER_ACTIONS)],
                                        **{**common, "environment": {**common["environment"], ENV_ASPECT: control.aspect}})
            self.event_handlers.append((function, control.aspect))
        self.queues = [
            EventQueue(self, f"{function.node.id}Queue", consumer=function.function,
                       dead_letter_queue=dead_letters.queue, max_concurrency=settings.event_handler_concurrency)
            for function, _ in self.event_handlers
        ]
        alarms.on_governor_metric("HandlerErrors", name=metric_names.ERRORS,
                                  description="an event handler failed on a log group; the event is retried (see the functions' logs)")
        alarms.on_governor_metric("DestinationErrors", name=metric_names.DESTINATION_ERRORS,
                                  description="the destination refused a subscription: it is missing or misconfigured, and new groups are not shipped until it is fixed")
        # CloudWatch Logs' own count of events it could not deliver for the governor's filters (and its account
        # policy, named like them): a destination refusing (a wrong role, trust or access policy) is not retried.
        # The metric's dimension set is *assumed* (localaws/FIDELITY.md D3); selftest's delivery step checks it.
        alarms.alarm(self, "DeliveryErrors", metric=cloudwatch.MathExpression(
            expression=(f"SELECT SUM(DeliveryErrors) FROM SCHEMA(\"AWS/Logs\", DestinationType, FilterName, LogGroupName) "
                        f"WHERE FilterName = '{policy.filter_name}'"),
            period=ALARM_PERIOD, label="events CloudWatch Logs could not deliver"),
            description="CloudWatch Logs could not deliver governed groups' events to the destination (AccessDenied and "
                        "ResourceNotFound are not retried; after such an error a filter can be off for up to 10 minutes and "
                        "the group's lines of that window are skipped): the dashboard's 'Delivery errors by log group' names the "
                        "groups; run log-group-governor selftest to see which step fails")
        alarms.on_governor_metric("Conflicts", name=metric_names.CONFLICTS, description=conflicts_description())
        alarms.on_governor_metric("DriftFights", name=metric_names.CONFLICTS, reason=Reason.DRIFT_FIGHT.value,
                                  description="another principal keeps changing a log group back; the governor stopped touching it "
                                              "(the log names the principal): agree who owns the group, or exclude it")
        if account_subscription:
            alarms.alarm(self, "SubscriptionSelectionNearLimit", threshold=SELECTION_LIMIT_BYTES * SELECTION_WARN_SHARE,
                         metric=cloudwatch.Metric(namespace=METRICS_NAMESPACE, metric_name=metric_names.SUBSCRIPTION_SELECTION_BYTES,
                                                  dimensions_map={"service": SERVICE_NAME}, statistic="Maximum", period=ALARM_PERIOD),
                         description=f"the account subscription filter policy's NOT IN list passed {SELECTION_WARN_SHARE:.0%} of the "
                                     f"{SELECTION_LIMIT_BYTES:,} bytes AWS accepts: exclude fewer groups by name, tag or pattern "
                                     f"before the governor must refuse to write it")
            alarms.on_governor_metric("SubscriptionSelectionTooLarge", name=metric_names.CONFLICTS, reason=Reason.SELECTION_TOO_LARGE.value,
                                      description="the NOT IN list would pass 25 KB, so it was not written (a shorter one would ship "
                                                  "excluded groups): new exclusions are not applied until fewer groups are excluded")
            alarms.on_governor_metric("SubscriptionPolicyRestored", name=metric_names.ACCOUNT_POLICY_RESTORED,
                                      description="another principal deleted or changed the governor's account subscription filter policy; "
                                                  "it was written back from the state table: find who in CloudTrail (PutAccountPolicy / "
                                                  "DeleteAccountPolicy) and stop it, or exclude what they meant to exclude")
            alarms.on_governor_metric("ForeignSubscriptionPolicy", name=metric_names.CONFLICTS, reason=Reason.FOREIGN_ACCOUNT_POLICY.value,
                                      description="another tool's subscription filter policy holds the account's one slot: nothing ships "
                                                  "through the governor's; delete it or use subscriptionMode per-group")
        alarms.on_governor_metric("OptOuts", name=metric_names.SKIPPED, reason=Reason.EXCLUDED_TAG.value,
                                  description="a log group was left out of shipping because of its opt-out tag")

        # #31: the minutes a filter disabled after a delivery error skipped, found in its metrics and replayed (or pulled by the
        # organization's archive); deployed with per-group filters and the replay on.
        self.delivery_gaps: DeliveryGapReplay | None = None
        if policy.subscription_mode is not Via.ACCOUNT_POLICY and policy.replay_window_minutes is not None:
            self.delivery_gaps = DeliveryGapReplay(
                self, "DeliveryGaps", powertools_layer=layer, alarms=alarms, environment=environment,
                role_name=GAP_REPLAY_ROLE.format(region=self.region) if pulls else None,
                statements=[control_statement(self, SHIPPING, writes=False), *replay_statements(self, policy, destination),
                            *([iam.PolicyStatement(actions=["events:PutEvents"], resources=[settings.fleet_bus_arn])] if pulls else []),
                            self.state.statement(("dynamodb:GetItem", "dynamodb:PutItem"))])
            if pulls:
                self.delivery_gaps.function.function.add_environment(ENV_FLEET_BUS, settings.fleet_bus_arn)
            if replay_statements(self, policy, destination):
                # A new group's first lines are asked for on this queue and replayed by this function, off the subscription
                # path (#31 item 3: the subscribe handler reads each group's filters once).
                self.subscribe.function.add_environment(ENV_GAP_QUEUE_URL, self.delivery_gaps.queue.queue_url)
                self.delivery_gaps.queue.grant_send_messages(self.subscribe.function)
            acknowledge(self.delivery_gaps.function, f"AwsSolutions::AwsSolutions-IAM5[Resource::{self._log_groups_finding()}]", _WILDCARD_REASON)

        fleet_statements = [iam.PolicyStatement(actions=["events:PutEvents"], resources=[settings.fleet_bus_arn])] if settings.fleet_bus_arn else []
        self.backfill = BackfillRunner(
            self,
            "Backfill",
            statements=[*subscription_statements(self, policy, destination), *retention_statements(self, policy),
                        *(st for control in ruled for st in ruled_statements(self, policy, control)),
                        self.state.statement(RECONCILE_ACTIONS),
                        *fleet_statements],
            environment={**environment, **({ENV_FLEET_BUS: settings.fleet_bus_arn} if settings.fleet_bus_arn else {})},
            powertools_layer=layer,
            access_logs=access_logs,
            start_on_deploy_as=json.dumps(settings.policy.to_json_dict(), sort_keys=True) if settings.backfill_on_deploy else None,
            reconcile_schedule=settings.reconcile_schedule,
            # A member reports to the fleet bus under a name the bus admits (stacks.fleet.REPORTER_ROLE).
            role_name=REPORTER_ROLE.format(region=self.region) if settings.fleet_bus_arn else None,
        )
        alarms.alarm(self, "BackfillFailed", metric=self.backfill.state_machine.metric_failed(period=Duration.minutes(5), statistic="Sum"),
                     description="a backfill execution failed after its retries; start it again with the same runId to resume")
        for function in (*(f for f, _ in self.event_handlers), self.backfill.function):
            acknowledge(function, f"AwsSolutions::AwsSolutions-IAM5[Resource::{self._log_groups_finding()}]", _WILDCARD_REASON)
        granted = {c.aspect: _grants_asked(policy, c) for c in ruled}
        for function, aspect in self.event_handlers:
            why = [*(["account-level policies (Put/DescribeAccountPolicies) belong to the account and region, not to a log group"]
                     if account_subscription and function is self.subscribe else []),
                   *(["the tagging API's GetResources (an event batch's tags in one call) takes only *"] if policy.tag_keys else []),
                   *(g.reason for g in granted.get(aspect, ()) if g.resource == "*")]
            if why:
                acknowledge(function, "AwsSolutions::AwsSolutions-IAM5[Resource::*]", "; ".join(why))
        account_logs = self._log_groups_finding().removesuffix(":log-group:*") + ":*"
        for aspect, grants in granted.items():  # the control's handler and the backfill make its calls
            for grant in (g for g in grants if g.resource == "account-logs"):
                for function in (*(f for f, a in self.event_handlers if a == aspect), self.backfill.function):
                    acknowledge(function, f"AwsSolutions::AwsSolutions-IAM5[Resource::{account_logs}]", grant.reason)
        if account_subscription:
            acknowledge(self.backfill.function, "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                        "account-level policies (Put/Describe/DeleteAccountPolicy) belong to the account and region, not to a "
                        "log group; the tagging API's GetResources takes only *")
        if policy.orphan_retention_days is not None:
            for function in (self.set_retention, self.backfill.function):
                acknowledge(function, f"AwsSolutions::AwsSolutions-IAM5[Resource::{self._log_groups_finding('lambda', 'function')}]",
                            "orphaned /aws/lambda/<name> groups: the function named by any group may be asked about; read-only")

        self.uninstall = None
        if settings.remove_filters_on_delete:
            self.uninstall = FilterRemovalOnDelete(
                self, "RemoveFiltersOnDelete", powertools_layer=layer,
                environment={**environment, ENV_REPORTS_BUCKET: self.backfill.bucket.bucket_name},
                statements=[*subscription_statements(self, replace(policy, exclude_tags={}, rules=(), subscription_mode=Via.PER_GROUP), destination),
                            iam.PolicyStatement(actions=["logs:DeleteSubscriptionFilter"], resources=[log_groups_arn(self)]),
                            *([iam.PolicyStatement(actions=["logs:DescribeAccountPolicies", "logs:DeleteAccountPolicy"], resources=["*"])]
                              if account_subscription else []),
                            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[self.backfill.bucket.arn_for_objects("runs/*")]),
                            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.backfill.bucket.bucket_arn],
                                                conditions={"StringLike": {"s3:prefix": ["runs/*"]}})],
            )
            acknowledge(self.uninstall.remover, f"AwsSolutions::AwsSolutions-IAM5[Resource::{self._log_groups_finding()}]", _WILDCARD_REASON)
            if account_subscription:
                acknowledge(self.uninstall.remover, "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                            "account-level policies (Describe/DeleteAccountPolicy) belong to the account and region, not to a log group")
            bucket_id = self.get_logical_id(self.backfill.bucket.node.default_child)
            acknowledge(self.uninstall.remover, f"AwsSolutions::AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/runs/*]",
                        "an uninstall run writes one checkpoint and one object per page under runs/<run id>/ of the reports bucket")
            # Deleted before the removal runs: nothing may subscribe a group again while it does.
            for dependent in (*(f for f, _ in self.event_handlers), self.backfill.function, self.backfill.state_machine,
                              *([self.delivery_gaps.function, self.delivery_gaps.schedule] if self.delivery_gaps else []),
                              *([self.backfill.schedule] if self.backfill.schedule else [])):
                dependent.node.add_dependency(self.uninstall.resource)

        # The governor's own writes are CloudTrail records too: the rules leave them out, so a write
        # never wakes a handler (the handlers ignore them as well, should one get through).
        own_roles = [f.role.role_arn for f in (*(f for f, _ in self.event_handlers), self.backfill.function,
                                               *([self.uninstall.remover] if self.uninstall else []))]
        for function, _ in self.event_handlers:
            function.function.add_environment(ENV_OWN_PRINCIPALS, self.to_json_string(own_roles))
        self.rules = []
        native = {"subscription": policy.subscription_mode, "retention": policy.retention_via}
        for (function, aspect), queue in zip(self.event_handlers, self.queues):
            pattern = event_pattern(aspect, account_policy=native.get(aspect) is Via.ACCOUNT_POLICY, own_roles=own_roles, account=self.account,
                                    region=self.region)
            rule = events.Rule(
                self,
                f"On{function.node.id}Events",
                description=f"log-group-governor: CloudTrail records of calls that create or change a log group's {aspect}",
                event_pattern=events.EventPattern(source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"],
                                                  account=pattern["account"], region=pattern["region"]),
            )
            rule.add_target(
                targets.SqsQueue(
                    queue.queue,
                    dead_letter_queue=dead_letters.queue,
                    max_event_age=EVENT_MAX_AGE,
                    retry_attempts=EVENT_RETRY_ATTEMPTS,
                )
            )
            if self.uninstall:
                rule.node.add_dependency(self.uninstall.resource)
            self.rules.append(rule)

        if destination.kind is DestinationKind.LAMBDA:
            # The destination re-pointed at another log group (its LoggingConfig): the guard looks again at
            # once and the group loses the governor's filter, instead of feeding the function its own logs.
            pattern = destination_pattern(destination.name, account=self.account, region=self.region)
            rule = events.Rule(self, "OnDestinationChanges",
                               description="log-group-governor: CloudTrail records of the Lambda destination created or reconfigured",
                               event_pattern=events.EventPattern(source=pattern["source"], detail_type=pattern["detail-type"],
                                                                 detail=pattern["detail"], account=pattern["account"], region=pattern["region"]))
            rule.add_target(targets.SqsQueue(self.queues[0].queue, dead_letter_queue=dead_letters.queue, max_event_age=EVENT_MAX_AGE,
                                             retry_attempts=EVENT_RETRY_ATTEMPTS))
            if self.uninstall:
                rule.node.add_dependency(self.uninstall.resource)
            self.rules.append(rule)

        if settings.fleet_bus_arn:
            # The central account sees this member's alarms as they change (the fleet view).
            fleet_bus = events.EventBus.from_event_bus_arn(self, "FleetBus", settings.fleet_bus_arn)
            forwarder = iam.Role(self, "FleetForwarder", role_name=FORWARDER_ROLE.format(region=self.region),
                                 assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
                                 description="log-group-governor: forwards this governor's alarm state changes to the fleet bus")
            forwarder.add_to_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=[settings.fleet_bus_arn]))
            to_fleet = events.Rule(self, "AlarmsToFleet", description="log-group-governor: this governor's alarm state changes to the fleet bus",
                                   event_pattern=events.EventPattern(source=["aws.cloudwatch"], detail_type=["CloudWatch Alarm State Change"],
                                                                     resources=[a.alarm_arn for a in alarms.all]),
                                   targets=[targets.EventBus(fleet_bus, role=forwarder)])
            CfnOutput(self, "AlarmsToFleetRuleName", value=to_fleet.rule_name,
                      description="the rule that forwards every alarm's state change to the organization's fleet view (selftest checks it)")

        if settings.dashboard:
            self.dashboard = GovernorDashboard(
                self, "Dashboard", alarms=alarms.all, event_queues=[q.queue for q in self.queues],
                dead_letter_queues=[dead_letters.queue, *([self.ship_logs.dead_letters.queue] if self.ship_logs else [])],
                state_machine=self.backfill.state_machine,
                functions=[f.function for f in (*(f for f, _ in self.event_handlers), self.backfill.function)],
                ship_logs=self.ship_logs.function.function if self.ship_logs else None,
                controls=[aspect for _, aspect in self.event_handlers],
                filter_name=policy.filter_name if policy.subscription_mode is not Via.ACCOUNT_POLICY else None,
            )
            CfnOutput(self, "DashboardName", value=self.dashboard.dashboard.dashboard_name,
                      description="the governor's CloudWatch dashboard: coverage, decisions, errors, conflicts, runs, ship-logs, alarms")
        CfnOutput(self, "DeadLetterQueueUrl", value=dead_letters.queue.queue_url,
                  description="CreateLogGroup and drift events that failed after all retries")
        CfnOutput(self, "BackfillStateMachineArn", value=self.backfill.state_machine.state_machine_arn,
                  description="start a backfill: aws stepfunctions start-execution --state-machine-arn <this> --input '{\"dryRun\": true}'")
        CfnOutput(self, "ReportsBucket", value=self.backfill.bucket.bucket_name, description="backfill checkpoints, decisions and summaries under runs/<run id>/")
        CfnOutput(self, "DestinationArn", value=destination.arn, description="where governed log groups ship to")
        CfnOutput(self, "StateTableName", value=self.state.table.table_name,
                  description="drift, conflicts and what was replayed per group (cli apply --replay-hours records there too)")
        CfnOutput(self, "SubscribeFunctionName", value=self.subscribe.function.function_name,
                  description="the subscribe-log-group function; python -m cli selftest reads the deployed policy from it")
        CfnOutput(self, "DestinationRoleArn", value=destination.role_arn or "-",
                  description="the role CloudWatch Logs assumes to deliver (Kinesis, Firehose), or the sender role an organization-wide "
                              "CloudWatch Logs destination checks membership with")
        if self.ship_logs:
            CfnOutput(self, "ShipLogsDeadLetterQueueUrl", value=self.ship_logs.dead_letters.queue.queue_url,
                      description="batches and records ship-logs could not deliver; replay them with: python -m cli redrive")
            CfnOutput(self, "ShipLogsFunctionName", value=self.ship_logs.function.function.function_name)

    def _log_groups_finding(self: Any, service: str = "logs", resource: str = "log-group") -> str:
        """log_groups_arn() (or functions_arn()) as cdk-nag names it in a finding: pseudo parameters as <AWS::Name>."""
        region = "<AWS::Region>" if Token.is_unresolved(self.region) else self.region
        account = "<AWS::AccountId>" if Token.is_unresolved(self.account) else self.account
        return f"arn:<AWS::Partition>:{service}:{region}:{account}:{resource}:*"

    def _create_rule_keys(self, policy: PolicyConfig) -> PolicyConfig:
        """``"kmsKeyArn": "create"`` (#21): a symmetric key per such rule, rotated yearly, retained when the stack goes (what
        it encrypted stays readable only with it), its policy letting this region's CloudWatch Logs use it for the
        account's log groups (the encryption context condition of the CloudWatch Logs guide); the functions get its ARN."""
        rules, raw, created = list(policy.rules), [dict(r) for r in policy.rules_raw], {}
        for index, rule in enumerate(rules):
            if rule.value(KMS_KEY) != CREATE_KEY:
                continue
            key = kms.Key(self, f"RuleKey{index}", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
                          description=f"log-group-governor: the KMS key of {rule.source}")
            key.add_to_resource_policy(iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"], resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:*"}}))
            rules[index] = replace(rule, plugged={**rule.plugged, KMS_KEY: key.key_arn})
            raw[index][KMS_KEY] = created[str(index)] = key.key_arn
        CfnOutput(self, "RuleKeyArns", value=self.to_json_string(created),
                  description="the KMS key the stack created for each rule of kmsKeyArn \"create\" (by rule index); the CLI reads it")
        return replace(policy, rules=tuple(rules), rules_raw=tuple(raw))

    def _config_json(self: Any, policy: PolicyConfig) -> str:
        as_dict = policy.to_json_dict()
        # Tokens (a built-in destination's ARN) resolve to about a hundred characters at deploy time.
        estimate = len(json.dumps({**as_dict, "destinationArn": "x" * 160, "destinationRoleArn": "x" * 160}))
        if estimate > MAX_CONFIG_JSON_BYTES:
            raise ConfigError(
                f"the policy configuration takes about {estimate} bytes but must fit Lambda's 4 KB environment "
                f"(at most {MAX_CONFIG_JSON_BYTES}): shorten excludePrefixes / shippingPathLogGroups, or replace "
                f"long lists with one excludePatterns regular expression"
            )
        return self.to_json_string(as_dict)


class GovernorStack(GovernorComposition, Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._compose(settings)


def conflicts_description() -> str:
    """The Conflicts alarm's description: every control's conflicts (governor.controls), then a drift fight."""
    reasons = ", ".join(f"{c.reason} ({control.name})" for control in controls.REGISTRY for c in control.conflicts)
    return (f"a log group was left as it is for a reason the log line names: {reasons}, or a drift fight "
            f"(docs/troubleshooting.md says what each means and its fix)")


def _rule_destinations(policy: PolicyConfig) -> list[Destination]:
    """The destinations the rules name besides destinationArn (#21), each once."""
    found: list[Destination] = []
    for rule in policy.rules:
        if rule.shipping is not None and rule.shipping.destination is not None and rule.shipping.destination not in found:
            found.append(rule.shipping.destination)
    return found


SHIPPING = controls.BY_ASPECT["subscription"]


def _declared(control: Control, action: str) -> str:
    """One of ``control``'s declared writes, by name: a write its module does not declare stops synth."""
    if action not in control.writes:
        raise AssertionError(f"governor/controls: {control.name} declares no {action}")
    return action


def subscription_statements(scope: Construct, policy: PolicyConfig, destination: Destination) -> list[iam.PolicyStatement]:
    groups = log_groups_arn(scope)
    put_resources = [groups]
    everywhere = [destination, *(d for d in _rule_destinations(policy) if d.arn != destination.arn)]
    # A Logs Destination is a resource of its own: the filter is put on it too.
    put_resources += [d.arn for d in everywhere if d.kind is DestinationKind.LOGS_DESTINATION]
    account_policy = policy.subscription_mode is Via.ACCOUNT_POLICY
    statements = [
        # Per group: the filters are read. Account policy: reading a SUBSCRIPTION_FILTER_POLICY with
        # DescribeAccountPolicies needs logs:DescribeSubscriptionFilters too (botocore 1.44.8's model; tests/infra reads it).
        control_statement(scope, SHIPPING, writes=False),
        # PutAccountPolicy of a subscription filter policy needs logs:PutSubscriptionFilter as well (the same model).
        iam.PolicyStatement(actions=[_declared(SHIPPING, "logs:PutSubscriptionFilter")], resources=put_resources),
        *_tag_statements(policy, groups),
    ]
    if account_policy:
        statements.append(iam.PolicyStatement(actions=["logs:DescribeAccountPolicies", "logs:PutAccountPolicy"], resources=["*"]))
    elif policy.exclude_tags or destination.kind is DestinationKind.LAMBDA or any(r.shipping and not r.shipping.enabled for r in policy.rules):
        # An opt-out tag on a subscribed group, a rule that turns shipping off, or a group that joined the shipping path
        # (a Lambda destination re-pointed at it): the governor removes its own filter (by name).
        statements.append(iam.PolicyStatement(actions=[_declared(SHIPPING, "logs:DeleteSubscriptionFilter")], resources=[groups]))
    roles = sorted({d.role_arn for d in everywhere if d.role_arn})
    if roles:
        statements.append(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=roles,
                conditions={"StringEquals": {"iam:PassedToService": "logs.amazonaws.com"}},
            )
        )
    if destination.kind is DestinationKind.LAMBDA:
        # The guard reads the destination's LoggingConfig to learn a custom log group.
        statements.append(iam.PolicyStatement(actions=["lambda:GetFunctionConfiguration"], resources=[destination.arn]))
    return statements


#: What the replay (#20) writes to each kind of same-account destination, as CloudWatch Logs would deliver.
_REPLAY_WRITES = {DestinationKind.LAMBDA: ["lambda:InvokeFunction"], DestinationKind.KINESIS: ["kinesis:PutRecord"],
                  DestinationKind.FIREHOSE: ["firehose:PutRecord"]}


def replay_statements(scope: Construct, policy: PolicyConfig, destination: Destination) -> list[iam.PolicyStatement]:
    """The subscribe function alone, with per-group subscriptions and replay: read what a new group held before the
    filter, write it to the destination (the backfill does not replay)."""
    groups = log_groups_arn(scope)
    replayable = [d for d in (destination, *_rule_destinations(policy)) if d.kind in _REPLAY_WRITES]
    if policy.subscription_mode is Via.ACCOUNT_POLICY or policy.replay_window_minutes is None or not replayable:
        return []
    return [iam.PolicyStatement(actions=["logs:FilterLogEvents"], resources=[groups]),
            *(iam.PolicyStatement(actions=_REPLAY_WRITES[d.kind], resources=[d.arn]) for d in dict.fromkeys(replayable))]


def archive_pulls(settings: DeploymentSettings, policy: PolicyConfig, destination: Destination) -> bool:
    """Whether the organization's archive pulls this member's new groups' first lines (#31): a fleet bus to ask on, per-group
    filters with the replay on, and a CloudWatch Logs destination to ship to (which the member cannot write into)."""
    return (bool(settings.fleet_bus_arn) and policy.subscription_mode is not Via.ACCOUNT_POLICY and policy.replay_window_minutes is not None
            and any(d.kind is DestinationKind.LOGS_DESTINATION for d in (destination, *_rule_destinations(policy))))


def control_statement(scope: Construct, control: Control, *, writes: bool = True) -> iam.PolicyStatement:
    """A control's look-ups and writes on the account's log groups, as its module declares them (governor.controls)."""
    return iam.PolicyStatement(actions=[*control.reads, *(control.writes if writes else ())], resources=[log_groups_arn(scope)])


def ruled_statements(scope: Construct, policy: PolicyConfig, control: Control) -> list[iam.PolicyStatement]:
    """A control only rules set (#21): its look-ups and writes on the groups as its module declares them, the groups' tags
    when a rule reads them, and what its other actions need (_OTHER_STATEMENTS)."""
    extra = _OTHER_STATEMENTS.get(control.aspect)
    stack = Stack.of(scope)
    resources = {"*": "*", "account-logs": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"}
    grants = [iam.PolicyStatement(actions=list(g.actions), resources=[resources[g.resource]]) for g in _grants_asked(policy, control)]
    return [control_statement(scope, control), *_tag_statements(policy, log_groups_arn(scope)), *(extra(scope, policy, control) if extra else []),
            *grants]


def _grants_asked(policy: PolicyConfig, control: Control) -> list[Any]:
    """The grants a control declares (governor.controls) that a rule's value asks for."""
    values = [r.value(control.name) for r in policy.rules if r.value(control.name) is not None]
    return [g for g in control.grants if any(g.when(v) for v in values)]


def _key_policies(scope: Construct, policy: PolicyConfig, control: Control) -> list[iam.PolicyStatement]:
    """A KMS key per group: reading the policy of exactly the rules' keys (the governor checks a key admits CloudWatch Logs
    before it associates it)."""
    keys = sorted({r.value(KMS_KEY) for r in policy.rules if r.value(KMS_KEY)})
    return [iam.PolicyStatement(actions=list(control.other_actions), resources=keys)]


#: What a control's other actions need beyond the log groups, by aspect (resources only the stack can name).
_OTHER_STATEMENTS = {"encryption": _key_policies}


def retention_statements(scope: Construct, policy: PolicyConfig) -> list[iam.PolicyStatement]:
    groups = log_groups_arn(scope)
    # retentionVia account-policy: native policies set retention (written by `python -m cli apply`); the functions only report.
    statements = [control_statement(scope, controls.BY_ASPECT["retention"], writes=policy.retention_via is not Via.ACCOUNT_POLICY),
                  *_tag_statements(policy, groups)]
    if policy.orphan_retention_days is not None:
        # Is the function of a /aws/lambda/<name> group gone? (Only asked for such groups.)
        statements.append(iam.PolicyStatement(actions=["lambda:GetFunctionConfiguration"], resources=[functions_arn(scope)]))
    return statements


def _check_account_policy_destination(stack: Stack, destination: Destination) -> None:
    """An account-level subscription filter policy takes a Kinesis stream, Firehose stream or Lambda
    function of its own account, or a logical destination of another (botocore 1.44.8's model of
    PutAccountPolicy): refuse at synth what it cannot take."""
    if destination.kind is DestinationKind.LOGS_DESTINATION or Token.is_unresolved(destination.arn):
        return
    if not Token.is_unresolved(stack.account) and destination.account != stack.account:
        raise ConfigError(
            f"destinationArn: subscriptionMode \"account-policy\" delivers only to a {destination.kind.value} destination of the "
            f"policy's own account ({stack.account}), not {destination.account}; for another account, point destinationArn at "
            f"a CloudWatch Logs destination there (arn:<partition>:logs:<region>:<account>:destination:<name>)")


def functions_arn(scope: Construct) -> str:
    stack = Stack.of(scope)
    return f"arn:{stack.partition}:lambda:{stack.region}:{stack.account}:function:*"


def _tag_statements(policy: PolicyConfig, groups: str) -> list[iam.PolicyStatement]:
    """Tags are read only when an exclusion tag is configured: in bulk (the Resource Groups Tagging API's GetResources,
    100 groups a call: a backfill page, an event batch), and alone (ListTagsForResource: a group whose tags just changed,
    or a run's tags confirmed before a write)."""
    if not policy.tag_keys:
        return []
    return [iam.PolicyStatement(actions=["logs:ListTagsForResource"], resources=[groups]),
            iam.PolicyStatement(actions=["tag:GetResources"], resources=["*"])]

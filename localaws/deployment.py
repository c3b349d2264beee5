"""A governor deployed in the local account, as `cdk deploy` leaves it: what `python -m cli selftest`
checks, offline (localaws/FIDELITY.md, rows D1-D3).

``deploy_governor`` creates what the stack creates and the self-test reads: the CloudFormation stack
with its outputs, the subscribe and retention functions (their environment is the deployed policy),
the state table, the trail, the alarm topic with its subscription. ``LocalDeployment.running()``
then plays AWS's part around them, in moto's own backends so that any client sees it:

- a CreateLogGroup reaches the two functions (CloudTrail, EventBridge, their queues, Lambda) only while
  a trail logs write management events in the region (FACTS; D1), at once (the real delay is D2);
- what the functions print goes to their log groups, as Lambda writes it;
- events written to a group with the governor's filter, or under the account's subscription filter
  policy, count in ``AWS/Logs`` as ``ForwardedLogEvents`` when the destination exists, else as
  ``DeliveryErrors`` (D3), and a refused batch disables the filter for 10 minutes (``localaws.delivery``,
  S1-S4); moto's own delivery to a Lambda function (which needs Docker) is not made.

An e-mail subscription of the alarm topic waits for its confirmation (SNS: Subscribe, "the
subscription requires confirmation" for e-mail), which moto skips: ``confirm_alarm_email`` confirms it.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from unittest import mock

from governor.config import ENV_CONFIG, ENV_OWN_PRINCIPALS, ENV_PROTECTED_LOG_GROUPS, ENV_STATE_TABLE
from governor.gap_settings import ENV_GAP_QUEUE_URL

from .account import LocalAccount
from .delivery import DeliveryModel, destination_exists, subscription_delivery
from .events import create_log_group_event, sqs_batch
from .lambda_runtime import SimulatedClock, invoke

SUBSCRIBE_FUNCTION = "SubscribeLogGroup"
RETENTION_FUNCTION = "SetRetention"
_LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                         "Action": "sts:AssumeRole"}]}


@dataclass
class LocalDeployment:
    account: LocalAccount
    stack_name: str
    environment: dict[str, str]
    functions: dict[str, str]
    topic_arn: str
    trail_name: str | None
    #: What the functions printed, as Lambda would keep it (also written to their log groups).
    output: io.StringIO = field(default_factory=io.StringIO)
    #: The subscription delivery model while ``running()`` (localaws.delivery), else None.
    delivery: DeliveryModel | None = None

    @property
    def subscription_arns(self) -> list[str]:
        sns = self.account.client("sns")
        return [s["SubscriptionArn"] for s in sns.list_subscriptions_by_topic(TopicArn=self.topic_arn)["Subscriptions"]]

    def confirm_alarm_email(self) -> None:
        """The on-call clicked the link in the confirmation e-mail."""
        for subscription in _moto_subscriptions(self.account, self.topic_arn):
            subscription.attributes["PendingConfirmation"] = "false"

    def stop_trail(self) -> None:
        if self.trail_name:
            self.account.client("cloudtrail").stop_logging(Name=self.trail_name)

    @contextmanager
    def running(self, clock: Callable[[], float] | None = None) -> Iterator[LocalDeployment]:
        """AWS's part around the deployed functions (module docstring), while inside; subscription delivery goes through
        ``localaws.delivery`` (its model is ``self.delivery``; ``clock``: epoch seconds, as there)."""
        from moto.logs.models import LogsBackend, LogStream

        create, put = LogsBackend.create_log_group, LogStream.put_log_events
        deployment = self

        def create_log_group(backend: Any, log_group_name: str, tags: dict[str, str], **kwargs: Any) -> Any:
            group = create(backend, log_group_name, tags, **kwargs)
            if (backend.account_id, backend.region_name) == (deployment.account.account_id, deployment.account.region):
                deployment._on_create_log_group(log_group_name)
            return group

        def put_log_events(stream: Any, log_events: list[dict[str, Any]]) -> str:
            token = put(stream, log_events)
            deployment._account_policy_delivery(stream.log_group.name, log_events)
            return token

        with subscription_delivery(self.account, clock) as model, \
                mock.patch.object(LogsBackend, "create_log_group", create_log_group), \
                mock.patch.object(LogStream, "put_log_events", put_log_events):
            self.delivery = model
            try:
                yield self
            finally:
                self.delivery = None

    # --- AWS's part -----------------------------------------------------------------------------------
    def _trail_feeds_events(self) -> bool:
        """Is a trail logging write management events in this region (FACTS: the trigger)?"""
        cloudtrail = self.account.client("cloudtrail")
        for trail in cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]:
            if trail.get("HomeRegion", self.account.region) != self.account.region and not trail.get("IsMultiRegionTrail"):
                continue
            if not cloudtrail.get_trail_status(Name=trail["TrailARN"]).get("IsLogging"):
                continue
            selectors = cloudtrail.get_event_selectors(TrailName=trail["TrailARN"])
            if any(s.get("IncludeManagementEvents", True) and s.get("ReadWriteType", "All") in ("All", "WriteOnly")
                   for s in selectors.get("EventSelectors") or []):
                return True
        return False

    def _on_create_log_group(self, name: str) -> None:
        if not self._trail_feeds_events():
            return  # no trail: EventBridge never sees the call
        from governor.handlers import create_log_group as handlers

        event = sqs_batch([create_log_group_event(name, region=self.account.region, account=self.account.account_id)],
                          queue_arn=f"arn:aws:sqs:{self.account.region}:{self.account.account_id}:{self.stack_name}-queue")
        for function, handler in ((SUBSCRIBE_FUNCTION, handlers.subscribe_log_group), (RETENTION_FUNCTION, handlers.set_retention)):
            printed = io.StringIO()
            # The functions run in the deployment's region: their clients (boto3's default session) too.
            with mock.patch.dict(os.environ, {**self.environment, "AWS_DEFAULT_REGION": self.account.region}), _default_region(self.account.region):
                handlers.subscription_parts.cache_clear()
                handlers.retention_parts.cache_clear()
                try:
                    invoke(handler, event, function_name=self.functions[function], out=printed)
                finally:
                    handlers.subscription_parts.cache_clear()
                    handlers.retention_parts.cache_clear()
            self.output.write(printed.getvalue())
            self._write_function_logs(self.functions[function], printed.getvalue())
        # The replay function drains its queue (an SQS event source): what the subscribe handler asked for.
        with mock.patch.dict(os.environ, {**self.environment, "AWS_DEFAULT_REGION": self.account.region}), _default_region(self.account.region):
            printed = io.StringIO()
            run_replay_queue(self.account, self.environment[ENV_GAP_QUEUE_URL], out=printed)
        self.output.write(printed.getvalue())

    def _write_function_logs(self, function_name: str, printed: str) -> None:
        from moto.logs.models import logs_backends

        lines = [line for line in printed.splitlines() if line.strip()]
        if not lines:
            return
        backend = logs_backends[self.account.account_id][self.account.region]
        group = f"/aws/lambda/{function_name}"
        now = datetime.fromtimestamp(self.delivery.clock(), timezone.utc) if self.delivery else datetime.now(timezone.utc)
        stream = now.strftime("%Y/%m/%d/[$LATEST]0123456789abcdef")
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        now_ms = int(now.timestamp() * 1000)
        backend.put_log_events(group, stream, [{"timestamp": now_ms, "message": line} for line in lines])

    def _destination_exists(self, arn: str) -> bool:
        return destination_exists(self.account, arn)

    def _account_policy_delivery(self, group: str, log_events: list[dict[str, Any]]) -> None:
        if self.account.gaps is None or not log_events or self.delivery is None:
            return
        from .account_policies import _NOT_IN, SUBSCRIPTION

        for (policy_type, name), policy in self.account.gaps.policies_in(self.account.account_id, self.account.region).policies.items():
            match = _NOT_IN.match(policy.selection or "")
            if policy_type != SUBSCRIPTION or (match and group in json.loads(match[1])):
                continue
            self.delivery.deliver(group, name, json.loads(policy.document)["DestinationArn"], log_events)


def run_replay_queue(account: LocalAccount, queue_url: str, *, out: Any, function_name: str = "replay", batches: int = 40) -> list[dict[str, Any]]:
    """The replay function (governor.handlers.delivery_gaps) draining its queue as Lambda's SQS event source runs it: a batch
    at a time, what it finishes deleted, a continuation it queues taken later; a failure stays (its retry is SQS's, later).
    Answers each replay the function reported (its log lines' ``replay``)."""
    from governor.handlers import delivery_gaps

    sqs = account.client("sqs")
    reports: list[dict[str, Any]] = []
    for _ in range(batches):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        batch = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": {},
                              "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                              "eventSourceARN": f"arn:aws:sqs:{account.region}:{account.account_id}:{queue_url.rsplit('/', 1)[-1]}",
                              "awsRegion": account.region} for m in messages]}
        printed = io.StringIO()
        delivery_gaps.parts.cache_clear()
        paced = SimulatedClock()  # its pacer's waits on a simulated clock: the replay's calls without the seconds between them
        try:
            with mock.patch.object(delivery_gaps, "clock", paced.monotonic), mock.patch.object(delivery_gaps, "sleep", paced.sleep):
                answer = invoke(delivery_gaps.handler, batch, function_name=function_name, out=printed, timeout_ms=300_000)
        finally:
            delivery_gaps.parts.cache_clear()
        out.write(printed.getvalue())
        reports += [json.loads(line)["replay"] for line in printed.getvalue().splitlines()
                    if line.startswith("{") and '"replay"' in line and "_aws" not in json.loads(line)]
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if failed:
            break
    return reports


@contextmanager
def _default_region(region: str) -> Iterator[None]:
    import boto3

    session = boto3.DEFAULT_SESSION._session if boto3.DEFAULT_SESSION else None
    before = session.get_config_variable("region") if session else None
    if session:
        session.set_config_variable("region", region)
    try:
        yield
    finally:
        if session:
            session.set_config_variable("region", before)


def _moto_subscriptions(account: LocalAccount, topic_arn: str) -> list[Any]:
    from moto.sns.models import sns_backends

    backend = sns_backends[account.account_id][account.region]
    return [s for s in backend.subscriptions.values() if s.topic.arn == topic_arn]


def deploy_governor(account: LocalAccount, *, stack_name: str, config: dict[str, Any], protected_log_groups: list[str] = (),  # type: ignore[assignment]
                    create_trail: bool = True, alarm_email: str | None = "oncall@example.com",
                    extra_outputs: dict[str, str] | None = None, fleet_bus_arn: str | None = None) -> LocalDeployment:
    """What `cdk deploy` of ``stack_name`` leaves in the account, for ``config`` (the functions'
    GOVERNOR_CONFIG, keys as in cdk.json, destination filled in). ``fleet_bus_arn``: an organization's member without
    a topic of its own (governor:alarmTopic false), whose rule forwards its alarms' state changes to the fleet bus."""
    state_table = account.create_state_table(f"{stack_name}-State")
    functions = {SUBSCRIBE_FUNCTION: f"{stack_name}-{SUBSCRIBE_FUNCTION}", RETENTION_FUNCTION: f"{stack_name}-{RETENTION_FUNCTION}"}
    iam = account.client("iam")
    roles = {}
    for key, name in functions.items():
        roles[key] = iam.create_role(RoleName=f"{name}Role", AssumeRolePolicyDocument=json.dumps(_LAMBDA_TRUST))["Role"]["Arn"]
    environment = {ENV_CONFIG: json.dumps(config), ENV_STATE_TABLE: state_table, ENV_PROTECTED_LOG_GROUPS: json.dumps(list(protected_log_groups)),
                   ENV_OWN_PRINCIPALS: json.dumps(sorted(roles.values())),
                   # The replay function's queue (stacks/delivery_gaps.py): a new group's first lines are asked for there.
                   ENV_GAP_QUEUE_URL: account.client("sqs").create_queue(QueueName=f"{stack_name}-Replay")["QueueUrl"]}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("governor/__init__.py", "")
    lambda_ = account.client("lambda")
    for key, name in functions.items():
        handler = "governor.handlers.create_log_group." + ("subscribe_log_group" if key == SUBSCRIBE_FUNCTION else "set_retention")
        lambda_.create_function(FunctionName=name, Runtime="python3.13", Role=roles[key], Handler=handler, Code={"ZipFile": archive.getvalue()},
                                Environment={"Variables": environment})
        account.logs.create_log_group(logGroupName=f"/aws/lambda/{name}")  # the stack's own log group of each function

    trail_name = None
    if create_trail:
        trail_name = f"{stack_name}-management-events"
        bucket = f"{stack_name.lower()}-trail-{account.account_id}"
        account.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": account.region})
        cloudtrail = account.client("cloudtrail")
        cloudtrail.create_trail(Name=trail_name, S3BucketName=bucket, IsMultiRegionTrail=False)
        cloudtrail.put_event_selectors(TrailName=trail_name, EventSelectors=[{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
        cloudtrail.start_logging(Name=trail_name)

    alarms: dict[str, Any] = {"AlarmTopicArn": {"Ref": "AlarmTopic"}}
    if fleet_bus_arn:
        rule = f"{stack_name}-AlarmsToFleet"
        account.client("events").put_rule(Name=rule, State="ENABLED", EventPattern=json.dumps(
            {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}))
        alarms = {"AlarmsToFleetRuleName": rule}
    outputs: dict[str, Any] = {"SubscribeFunctionName": functions[SUBSCRIBE_FUNCTION], **alarms,
                               "DestinationArn": config["destinationArn"], "DestinationRoleArn": config.get("destinationRoleArn") or "-",
                               "StateTableName": state_table,
                               **({"TrailName": trail_name} if trail_name else {}), **(extra_outputs or {})}
    template = {"Resources": {"AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"{stack_name}-Alarms"}}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
    cloudformation = account.client("cloudformation")
    cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(template))
    [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    topic_arn = next((o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "AlarmTopicArn"), "")
    if alarm_email and topic_arn:
        account.client("sns").subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=alarm_email)
        for subscription in _moto_subscriptions(account, topic_arn):
            subscription.attributes["PendingConfirmation"] = "true"  # until the on-call confirms it
    return LocalDeployment(account, stack_name, environment, functions, topic_arn, trail_name)

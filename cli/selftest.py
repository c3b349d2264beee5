"""`python -m cli selftest --stack-name NAME`: prove a deployed governor works, as a careful operator would by hand.

Each step says what it checked, how long it took, and when it fails what to fix:

1. ``stack``: the stack is deployed here, and its subscribe function carries the policy.
2. ``trail``: a trail logs write management events in this region (EventBridge sees CreateLogGroup only then).
3. ``alarm-topic``: the alarm topic has a confirmed subscription (an alarm nobody receives is no alarm); a member of an
   organization without a topic of its own: the rule forwarding its alarms to the fleet view is enabled.
4. ``account-policy`` (subscriptionMode account-policy): the governor's policy exists, names the
   destination (and the sender role), and lists the guard's names.
5. ``canary``: a log group under ``/log-group-governor/selftest/``, which the policy core says the
   governor must govern, is created.
6. ``subscribed`` and ``retention``: the governor subscribes it (to the destination the policy core decides for
   it: a rule's own when one ships it there) or the account policy covers it, and gives it its retention within
   ``--timeout``; the time it took is printed.
7. ``delivery``: a line written to it is reported delivered by CloudWatch Logs (``AWS/Logs``
   ``ForwardedLogEvents``), not refused (``DeliveryErrors``): for a member of an organization this is
   the archive accepting the sender role and delivering.
8. ``cleanup``: the canary is deleted, also when a step failed.

Steps 2, 6 and 7 check on the real account what the local model only assumes: that a trail is what
lets EventBridge see CreateLogGroup; how long the governor takes, and what AWS answers a filter whose
sender role it cannot assume (shown from the function's log); and that CloudWatch Logs delivers a line
and publishes its delivery metrics.
Exit status: 0 when every step passed, 1 when one failed, 2 on bad input.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from governor.account_policy import must_not_ship
from governor.config import ENV_CONFIG, ENV_PROTECTED_LOG_GROUPS, ConfigError, Via, parse_policy_config
from governor.policy import Action, KnownFacts, Policy

CANARY_PREFIX = "/log-group-governor/selftest/"
#: How long the governor may take to subscribe the canary and give it retention, by default.
DEFAULT_TIMEOUT_S = 600.0
POLL_S = 5.0
#: CloudWatch Logs publishes its delivery metrics once a minute; they can lag a few minutes more.
METRICS_WINDOW = timedelta(minutes=15)


@dataclass
class Step:
    name: str
    passed: bool
    detail: str
    fix: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    stack_name: str
    region: str
    steps: list[Step] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {"stackName": self.stack_name, "region": self.region, "passed": self.passed, "steps": [asdict(s) for s in self.steps]}

    def text(self) -> str:
        lines = [f"log-group-governor selftest of {self.stack_name} in {self.region}"]
        for step in self.steps:
            took = f" ({step.seconds:.1f} s)" if step.seconds else ""
            lines.append(f"  {'PASS' if step.passed else 'FAIL'}  {step.name:<15} {step.detail}{took}")
            if step.fix:
                lines.append(f"        {'':<15} fix: {step.fix}")
        lines.append("all steps passed" if self.passed else f"{sum(not s.passed for s in self.steps)} step(s) failed")
        return "\n".join(lines)


class Failed(Exception):
    """A step that failed: the steps after it that depend on it do not run."""

    def __init__(self, step: Step) -> None:
        super().__init__(step.detail)
        self.step = step


class SelfTest:
    def __init__(self, client: Callable[[str], Any], *, stack_name: str, region: str, timeout_s: float = DEFAULT_TIMEOUT_S,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.client, self.stack_name, self.region, self.timeout_s = client, stack_name, region, timeout_s
        self.clock, self.sleep, self.now = clock, sleep, now
        self.report = Report(stack_name, region)
        self.outputs: dict[str, str] = {}
        self.policy: Policy | None = None
        self.function_log_group: str | None = None

    # --- the run ---------------------------------------------------------------------------------------
    def run(self) -> Report:
        try:
            self._step("stack", self.check_stack)
            self._step("trail", self.check_trail, required=False)
            self._step("alarm-topic", self.check_alarm_topic, required=False)
            if self._policy().config.subscription_mode is Via.ACCOUNT_POLICY:
                self._step("account-policy", self.check_account_policy, required=False)
            with self._canary() as canary:
                self._step("subscribed", lambda: self.check_subscribed(canary), required=False)
                self._step("retention", lambda: self.check_retention(canary), required=False)
                self._step("delivery", lambda: self.check_delivery(canary), required=False)
        except Failed as failed:
            self.report.steps.append(failed.step)
        return self.report

    def _step(self, name: str, check: Callable[[], tuple[str, float]], *, required: bool = True) -> None:
        started = self.clock()
        try:
            detail, seconds = check()
            self.report.steps.append(Step(name, True, detail, seconds=seconds))
        except Failed as failed:
            failed.step.seconds = failed.step.seconds or self.clock() - started
            if required:
                raise
            self.report.steps.append(failed.step)
        except (ClientError, BotoCoreError) as error:
            step = Step(name, False, f"AWS answered: {error}", "check the credentials' permissions for this step, and the region")
            if required:
                raise Failed(step) from None
            self.report.steps.append(step)

    def _policy(self) -> Policy:
        assert self.policy is not None
        return self.policy

    # --- 1. the stack --------------------------------------------------------------------------------------
    def check_stack(self) -> tuple[str, float]:
        cloudformation = self.client("cloudformation")
        try:
            [stack] = cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as error:
            if "does not exist" in str(error):
                raise Failed(Step("stack", False, f"no stack {self.stack_name} in {self.region}: the governor is not deployed here",
                                  "deploy it (cdk deploy), or pass the --stack-name and --region it was deployed with")) from None
            raise
        status = stack.get("StackStatus", "")
        if not status.endswith("_COMPLETE") or "ROLLBACK" in status or "DELETE" in status:
            raise Failed(Step("stack", False, f"stack {self.stack_name} is {status}", "finish or fix the deployment (cdk deploy) first"))
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        function = self.outputs.get("SubscribeFunctionName")
        if not function:
            raise Failed(Step("stack", False, f"stack {self.stack_name} has no SubscribeFunctionName output: it is not a log-group-governor "
                                              f"stack, or one deployed before selftest existed", "deploy this version (cdk deploy)"))
        configuration = self.client("lambda").get_function_configuration(FunctionName=function)
        environment = configuration.get("Environment", {}).get("Variables", {})
        try:
            config = parse_policy_config(json.loads(environment[ENV_CONFIG]))
            protected = json.loads(environment.get(ENV_PROTECTED_LOG_GROUPS) or "[]")
        except (KeyError, ValueError, ConfigError) as error:
            raise Failed(Step("stack", False, f"the function {function} carries no valid policy ({error})", "deploy again (cdk deploy)")) from None
        self.policy = Policy(config, protected_log_groups=protected)
        self.function_log_group = configuration.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{function}"
        return (f"{status}; destination {config.destination.arn if config.destination else '-'}, subscriptionMode "
                f"{config.subscription_mode.value}"), 0.0

    # --- 2. the trail -----------------------------------------------------------------------------------
    def check_trail(self) -> tuple[str, float]:
        cloudtrail = self.client("cloudtrail")
        seen, logging = [], []
        for trail in cloudtrail.describe_trails(includeShadowTrails=True).get("trailList", []):
            if trail.get("HomeRegion", self.region) != self.region and not trail.get("IsMultiRegionTrail"):
                continue
            name = trail.get("Name", trail.get("TrailARN", "?"))
            if not cloudtrail.get_trail_status(Name=trail["TrailARN"]).get("IsLogging"):
                seen.append(f"{name} is not logging")
                continue
            if _logs_write_management_events(cloudtrail.get_event_selectors(TrailName=trail["TrailARN"])):
                logging.append(name)
                continue
            seen.append(f"{name} logs no write management events")
        own = self.outputs.get("TrailName")
        others = [name for name in logging if name != own and not name.endswith(f":trail/{own}")]
        if logging and own in logging and others:
            # Not a failure: a paid duplicate the user can remove (CloudTrail pricing: the first copy of management events is free).
            return (f"trail {own} logs write management events in {self.region}, and so does {others[0]}: this stack's trail is a paid "
                    f"second copy ($2.00 per 100,000 management events, docs/cost.md); deploy with governor:createTrail false "
                    f"(an organization: rollout:organizationTrail true)"), 0.0
        if logging:
            return f"trail {logging[0]} logs write management events in {self.region}", 0.0
        found = "; ".join(seen) or f"no trail covers {self.region}"
        raise Failed(Step("trail", False, f"{found}: EventBridge sees no CreateLogGroup, so new groups wait for the next reconcile",
                          "deploy with governor:createTrail true, or start a trail that logs write management events here "
                          "(aws cloudtrail start-logging --name <trail>)"))

    # --- 3. the alarm topic ------------------------------------------------------------------------------
    def check_alarm_topic(self) -> tuple[str, float]:
        topic = self.outputs.get("AlarmTopicArn")
        forwarder = self.outputs.get("AlarmsToFleetRuleName")
        if not topic and forwarder:  # an organization's member (governor:alarmTopic false): the fleet view alarms centrally
            rule = self.client("events").describe_rule(Name=forwarder)
            if rule.get("State") != "ENABLED":
                raise Failed(Step("alarm-topic", False, f"the rule {forwarder} that forwards every alarm to the organization's fleet view "
                                  f"is {rule.get('State')}: every alarm of the governor notifies nobody",
                                  f"aws events enable-rule --name {forwarder}"))
            return (f"no topic here: rule {forwarder} forwards every alarm's state change to the fleet view "
                    f"(its MembersAlarming alarm notifies the archive's topic)"), 0.0
        if not topic:
            raise Failed(Step("alarm-topic", False, "the stack has no AlarmTopicArn output", "deploy this version (cdk deploy)"))
        sns = self.client("sns")
        confirmed, pending = [], 0
        for subscription in sns.list_subscriptions_by_topic(TopicArn=topic).get("Subscriptions", []):
            arn = subscription["SubscriptionArn"]
            if arn in ("PendingConfirmation", "Deleted"):
                pending += 1
                continue
            attributes = sns.get_subscription_attributes(SubscriptionArn=arn).get("Attributes", {})
            if str(attributes.get("PendingConfirmation", "false")).lower() == "true":
                pending += 1
            else:
                confirmed.append(f"{subscription.get('Protocol')}:{subscription.get('Endpoint')}")
        if confirmed:
            return f"{topic.rsplit(':', 1)[-1]} notifies {', '.join(confirmed)}", 0.0
        why = f"{pending} subscription(s) await confirmation" if pending else "no subscription"
        raise Failed(Step("alarm-topic", False, f"the alarm topic {topic} has {why}: every alarm of the governor notifies nobody",
                          "confirm the e-mail AWS sent (governor:alarmEmail), or subscribe your on-call: "
                          f"aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint <address>"))

    # --- 4. the account policy ---------------------------------------------------------------------------
    def check_account_policy(self) -> tuple[str, float]:
        policy = self._policy()
        name = policy.config.filter_name
        found = self.client("logs").describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY").get("accountPolicies", [])
        ours = next((p for p in found if p["policyName"] == name), None)
        if ours is None:
            other = f" ({found[0]['policyName']} of another tool holds the account's one slot)" if found else ""
            raise Failed(Step("account-policy", False, f"no account subscription filter policy named {name}{other}",
                              "the first full run writes it: start a backfill (the BackfillStateMachineArn output), or delete the "
                              "other tool's policy"))
        document = json.loads(ours["policyDocument"])
        wanted = policy.desired_filter
        if document.get("DestinationArn") != wanted.destination_arn or (wanted.role_arn and document.get("RoleArn") != wanted.role_arn):
            raise Failed(Step("account-policy", False, f"policy {name} ships to {document.get('DestinationArn')} "
                                                       f"(role {document.get('RoleArn', '-')}), not to {wanted.destination_arn}",
                              "run a reconcile, or check for another writer of the policy"))
        criteria = ours.get("selectionCriteria") or ""
        listed = set(json.loads(criteria.removeprefix("LogGroupName NOT IN "))) if criteria.startswith("LogGroupName NOT IN ") else set()
        missing = sorted(policy.guarded_names - listed)
        if missing:
            raise Failed(Step("account-policy", False, f"policy {name} does not leave out the shipping path's groups {missing}: they feed "
                                                       f"the destination its own logs", "run a reconcile; see the SubscribeLogGroup log"))
        return f"policy {name} ships to {wanted.destination_arn}, {len(listed)} names left out (the guard's {len(policy.guarded_names)} among them)", 0.0

    # --- 5. the canary ------------------------------------------------------------------------------------
    @contextmanager
    def _canary(self) -> Iterator[str]:
        name = f"{CANARY_PREFIX}{self.now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        policy = self._policy()
        decided = policy.subscription(KnownFacts(name=name))
        if must_not_ship(policy, KnownFacts(name=name)) or decided.action is Action.SKIP:
            raise Failed(Step("canary", False, f"the policy leaves {CANARY_PREFIX}* out ({decided.reason.value}: {decided.detail}), so the "
                                               f"self-test cannot watch the governor act", f"do not exclude {CANARY_PREFIX} "
                                               "(governor:excludePrefixes / excludePatterns)"))
        logs = self.client("logs")
        logs.create_log_group(logGroupName=name)
        self.created_at = self.clock()
        self.report.steps.append(Step("canary", True, f"created {name}"))
        try:
            yield name
        finally:
            try:
                logs.delete_log_group(logGroupName=name)
                self.report.steps.append(Step("cleanup", True, f"deleted {name}"))
            except (ClientError, BotoCoreError) as error:
                self.report.steps.append(Step("cleanup", False, f"could not delete {name}: {error}", f"aws logs delete-log-group --log-group-name {name}"))

    # --- 6. subscribed, retention -----------------------------------------------------------------------------
    def check_subscribed(self, canary: str) -> tuple[str, float]:
        policy = self._policy()
        logs = self.client("logs")
        if policy.config.subscription_mode is Via.ACCOUNT_POLICY:
            return "shipped by the account subscription filter policy (not in its NOT IN list)", 0.0
        # The filter the policy core decides for the canary, as the subscribe handler does: a rule's own destination
        # (shipping.destinationArn), pattern or role where one ships it (#26), else governor:destinationArn's.
        wanted = policy.subscription(KnownFacts(name=canary)).subscription_filter or policy.desired_filter

        def subscribed() -> bool:
            filters = logs.describe_subscription_filters(logGroupName=canary).get("subscriptionFilters", [])
            return any(f["filterName"] == wanted.name and f["destinationArn"] == wanted.destination_arn
                       and (not wanted.role_arn or f.get("roleArn") == wanted.role_arn) for f in filters)

        took = self._wait(subscribed)
        if took is None:
            raise Failed(Step("subscribed", False, f"the governor did not subscribe {canary} within {self.timeout_s:.0f} s"
                                                   f"{self._function_error(canary)}",
                              "see the trail step, the DestinationErrors and HandlerErrors alarms, and the SubscribeLogGroup function's log; "
                              "an organization-wide destination needs the sender role (governor:senderRole)", seconds=self.timeout_s))
        return f"filter {wanted.name} -> {wanted.destination_arn}{' with role ' + wanted.role_arn if wanted.role_arn else ''}", took

    def check_retention(self, canary: str) -> tuple[str, float]:
        decided = self._policy().retention(KnownFacts(name=canary))
        if decided.action is not Action.SET_RETENTION:
            return f"the policy sets no retention here ({decided.reason.value})", 0.0
        logs = self.client("logs")

        def retained() -> bool:
            groups = logs.describe_log_groups(logGroupNamePrefix=canary).get("logGroups", [])
            return any(g["logGroupName"] == canary and g.get("retentionInDays") == decided.retention_days for g in groups)

        took = self._wait(retained)
        if took is None:
            raise Failed(Step("retention", False, f"{canary} did not get {decided.retention_days} days within {self.timeout_s:.0f} s",
                              "see the trail step and the SetRetention function's log", seconds=self.timeout_s))
        return f"{decided.retention_days} days", took

    # --- 7. delivery -------------------------------------------------------------------------------------------
    def check_delivery(self, canary: str) -> tuple[str, float]:
        logs, cloudwatch = self.client("logs"), self.client("cloudwatch")
        logs.create_log_stream(logGroupName=canary, logStreamName="selftest")
        written_at = self.now()
        logs.put_log_events(logGroupName=canary, logStreamName="selftest",
                            logEvents=[{"timestamp": int(written_at.timestamp() * 1000), "message": f"log-group-governor selftest {canary}"}])
        totals: dict[str, float] = {}

        def reported() -> bool:
            totals.clear()
            seen = set()
            for metric in cloudwatch.list_metrics(Namespace="AWS/Logs", Dimensions=[{"Name": "LogGroupName", "Value": canary}]).get("Metrics", []):
                key = (metric["MetricName"], json.dumps(sorted((d["Name"], d["Value"]) for d in metric["Dimensions"])))
                if metric["MetricName"] not in ("ForwardedLogEvents", "DeliveryErrors") or key in seen:
                    continue
                seen.add(key)
                points = cloudwatch.get_metric_statistics(Namespace="AWS/Logs", MetricName=metric["MetricName"], Dimensions=metric["Dimensions"],
                                                          StartTime=written_at - METRICS_WINDOW, EndTime=self.now() + METRICS_WINDOW,
                                                          Period=60, Statistics=["Sum"]).get("Datapoints", [])
                totals[metric["MetricName"]] = totals.get(metric["MetricName"], 0.0) + sum(p["Sum"] for p in points)
            return bool(totals.get("ForwardedLogEvents") or totals.get("DeliveryErrors"))

        took = self._wait(reported)
        if totals.get("DeliveryErrors"):
            raise Failed(Step("delivery", False, f"CloudWatch Logs could not deliver the canary's line: DeliveryErrors "
                                                 f"{totals['DeliveryErrors']:.0f} (AccessDenied and ResourceNotFound are not retried)",
                              "check the destination exists and admits this account: its resource policy (Lambda), the delivery role "
                              "(Kinesis, Firehose), or for an organization's archive the sender role and the archive's delivery role",
                              seconds=took or 0.0))
        if took is None:
            raise Failed(Step("delivery", False, f"no ForwardedLogEvents for {canary} within {self.timeout_s:.0f} s",
                              "CloudWatch Logs reports delivery a few minutes late: run again with a longer --timeout; if it stays, "
                              "check the destination", seconds=self.timeout_s))
        return f"ForwardedLogEvents {totals['ForwardedLogEvents']:.0f}, DeliveryErrors 0", took

    # --- helpers ---------------------------------------------------------------------------------------------------
    def _wait(self, done: Callable[[], bool]) -> float | None:
        """Seconds until ``done`` (polled), or None when --timeout passed first."""
        started = self.clock()
        while True:
            if done():
                return self.clock() - started
            if self.clock() - started >= self.timeout_s:
                return None
            self.sleep(POLL_S)

    def _function_error(self, canary: str) -> str:
        """The subscribe function's last error about the canary, from its log (what AWS answered it)."""
        if not self.function_log_group:
            return ""
        try:
            events = self.client("logs").filter_log_events(logGroupName=self.function_log_group,
                                                           startTime=int((self.now() - METRICS_WINDOW).timestamp() * 1000)).get("events", [])
        except (ClientError, BotoCoreError):
            return ""
        for event in reversed(events):
            try:
                line = json.loads(event["message"])
            except ValueError:
                continue
            if isinstance(line, dict) and line.get("level") == "ERROR" and line.get("logGroupName") == canary:
                cause = str(line.get("exception", "")).strip().splitlines()
                return f"; the governor logged: {line.get('message')}{': ' + cause[-1] if cause else ''}"
        return ""


def _logs_write_management_events(selectors: dict[str, Any]) -> bool:
    """CloudTrail event selectors (basic or advanced) that record write management events."""
    for selector in selectors.get("EventSelectors") or []:
        if selector.get("IncludeManagementEvents", True) and selector.get("ReadWriteType", "All") in ("All", "WriteOnly"):
            return True
    for selector in selectors.get("AdvancedEventSelectors") or []:
        fields = {f["Field"]: f for f in selector.get("FieldSelectors", [])}
        category = fields.get("eventCategory", {})
        read_only = fields.get("readOnly", {})
        if "Management" in category.get("Equals", []) and "true" not in read_only.get("Equals", []):
            return True
    return False

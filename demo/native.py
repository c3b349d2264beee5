"""Act 5 of `make demo`: the native account-level policies (issue #9), end to end on the local account.

Retention: what the configuration compiles to, refused where native policies cannot say the same
thing, the dry run's impact, an apply that needs --allow-shortening, the policy in effect a day later.
Subscription: the migration to the account's subscription filter policy (its full run, then the
governor's per-group filters removed), the guard's names in the NOT IN list, a new excluded group
shipping until its event is handled (the window, measured), an opt-out tag added and removed.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any, TextIO
from unittest import mock

from cli import native
from governor.config import ENV_CONFIG, ENV_REPORTS_BUCKET, POLICY_KEYS, parse_policy_config
from governor.handlers import create_log_group as handlers
from governor.handlers.backfill import build_parts, handle_backfill
from ship_logs.payload import decode_json
from localaws.account import LocalAccount
from localaws.events import account_policy_call_event, create_log_group_event, log_group_call_event
from localaws.lambda_runtime import LocalLambdaContext, SimulatedClock, handler_output_to, invoke
from localaws.payloads import lambda_log_events
from localaws.stepfunctions import run_execution
from stacks.settings import DeploymentSettings

OPT_OUT = {"log-group-governor:opt-out": "true"}
#: Native retention cannot exclude or keep a team's longer retention: the retention part runs on this.
NATIVE_RETENTION = {"governor:retentionVia": "account-policy", "governor:retentionMode": "exact", "governor:excludeTags": {},
                    "governor:excludePrefixes": []}


def native_policies(account: LocalAccount, context: dict[str, Any], reports_bucket: str, out: TextIO) -> None:
    print("\n4. Native account-level policies: retentionVia and subscriptionMode \"account-policy\"\n")
    _retention(account, context, out)
    _subscription(account, context, reports_bucket, out)


def _retention(account: LocalAccount, context: dict[str, Any], out: TextIO) -> None:
    print("   retentionVia account-policy (python -m cli plan / apply):")
    inexpressible = {**context, **NATIVE_RETENTION, "governor:retentionOverrides": {"/aws/lambda/prod-": 365, "/aws/lambda/prod-tmp-": 60}}
    compiled = native.compile_retention(parse_policy_config({k.removeprefix("governor:"): v for k, v in inexpressible.items()
                                                             if k.removeprefix("governor:") in POLICY_KEYS}))
    print("     an override native policies cannot express is refused, with the reason:")
    for refusal in compiled.refusals:
        print(f"       - {refusal}")
    config = DeploymentSettings.from_context({**context, **NATIVE_RETENTION}).policy
    _holds_data(account, "/aws/lambda/prod-ledger")  # the dry run lists the 20 largest groups in scope
    refused = native.plan_and_apply(account.logs, config, apply=True, allow_shortening=False, out=_Indented(), stderr=_Indented())
    print(f"     apply without --allow-shortening: exit {refused.code}, {len(_retention_policies(account))} policies written")
    native.plan_and_apply(account.logs, config, apply=True, allow_shortening=True, out=_Indented(), stderr=_Indented())
    real_clock = account.gaps.account_policies.clock
    account.gaps.account_policies.clock = lambda: time.time() + 25 * 3600
    try:
        group = account.logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/prod-ledger")["logGroups"][0]
        print(f"     a day later, DescribeLogGroups: {group['logGroupName']} retentionPolicyName={group.get('retentionPolicyName')} "
              f"retentionInDays={group.get('retentionInDays')}")
    finally:
        account.gaps.account_policies.clock = real_clock
        for name in _retention_policies(account):  # the subscription part runs per-group retention again
            account.logs.delete_account_policy(policyName=name, policyType="RETENTION_POLICY")


def _holds_data(account: LocalAccount, group: str) -> None:
    """A production group holds months of events: a few kilobytes here. Only their size matters: they are stored and not
    delivered to the group's subscription (moto would run its Lambda destination in Docker, printing "error running docker")."""
    from moto.logs.models import LogStream

    account.logs.create_log_stream(logGroupName=group, logStreamName="2026/11/28/[$LATEST]0a1b2c")
    now_ms = int(time.time() * 1000)
    with mock.patch.object(LogStream, "_send_log_events", lambda *args, **kwargs: None):
        account.logs.put_log_events(logGroupName=group, logStreamName="2026/11/28/[$LATEST]0a1b2c",
                                    logEvents=[{"timestamp": now_ms, "message": f"ledger entry {n:06d} posted " + "x" * 200} for n in range(20)])


def _subscription(account: LocalAccount, context: dict[str, Any], reports_bucket: str, out: TextIO) -> None:
    settings = DeploymentSettings.from_context({**context, "governor:subscriptionMode": "account-policy"})
    with mock.patch.dict(os.environ, {ENV_CONFIG: json.dumps(settings.policy.to_json_dict()), ENV_REPORTS_BUCKET: reports_bucket}):
        handlers.subscription_parts.cache_clear()
        try:
            _subscription_act(account, out)
        finally:
            handlers.subscription_parts.cache_clear()


def _subscription_act(account: LocalAccount, out: TextIO) -> None:
    print("\n   subscriptionMode account-policy (python -m cli migrate --to account-policy, here through the backfill function):")
    clock = SimulatedClock()
    parts = build_parts(os.environ, clock=clock.monotonic, sleep=clock.sleep)
    sample, events = "/aws/lambda/orders-api", lambda_log_events(3, seed=3)

    def execute(name: str, execution_input: dict[str, Any]) -> dict[str, Any]:
        before = Counter(account.calls)
        with handler_output_to(out):
            output = run_execution(name, execution_input, lambda payload: handle_backfill(
                payload, LocalLambdaContext("backfill", timeout_ms=900_000, clock=clock.monotonic), parts)).output
        calls = {op.removeprefix("logs."): n for op, n in sorted((account.calls - before).items()) if op.startswith("logs.")}
        print(f"     {name}: {output['summary']['logGroups']} groups; calls {calls}")
        return output

    step1 = execute("migrate-1-account-policy", {})
    written = step1["summary"]["accountSubscriptionPolicy"]
    print(f"       the policy: {written['detail']}, {written['names']} names, {written['selectionBytes']:,} of {written['limitBytes']:,} bytes")
    print(f"       the guard's names are in its NOT IN list: {[n for n in _not_in(account) if 'log-shipper' in n]}")
    print(f"       {sample} while it still has its own filter: {_deliveries(account, sample, events)}")
    execute("migrate-2-remove-filters", {"removeFilters": True})
    print(f"       {sample} after: {_deliveries(account, sample, events)}")

    print("\n     a new group that an exclusion matches ships until its event updates the list:")
    group = "/aws/lambda/sandbox-new-experiment"
    started = time.perf_counter()
    account.create_log_group(group)
    shipping = _deliveries(account, group, events)
    result = invoke(handlers.subscribe_log_group, create_log_group_event(group), function_name="subscribe-log-group", out=out)
    window_ms = (time.perf_counter() - started) * 1000
    print(f"       before the event: {shipping}; the handler: {result['action']} ({result['reason']}); after: {_deliveries(account, group, events)}")
    print(f"       window in this demo: {window_ms:.0f} ms from CreateLogGroup to the list written (the handler's part; on AWS, add "
          f"the time CloudTrail takes to deliver the record to EventBridge, and the queue's)")

    print("\n     an opt-out tag added, then removed:")
    arn = f"arn:aws:logs:{account.region}:{account.account_id}:log-group:{sample}"
    for event_name, change in (("TagResource", lambda: account.logs.tag_resource(resourceArn=arn, tags=OPT_OUT)),
                               ("UntagResource", lambda: account.logs.untag_resource(resourceArn=arn, tagKeys=list(OPT_OUT)))):
        change()
        result = invoke(handlers.subscribe_log_group, log_group_call_event(event_name, sample, role_arn=f"arn:aws:iam::{account.account_id}:role/team"),
                        function_name="subscribe-log-group", out=out)
        print(f"       {event_name:<14} -> {result['action']} ({result['reason']}); in the list: {sample in _not_in(account)}; "
              f"{_deliveries(account, sample, events)}")


    print("\n     someone deletes the governor's policy by hand (aws logs delete-account-policy):")
    team = f"arn:aws:iam::{account.account_id}:role/team"
    account.logs.delete_account_policy(policyName="log-group-governor", policyType="SUBSCRIPTION_FILTER_POLICY")
    print(f"       after the deletion: {sample} {_deliveries(account, sample, events)}; excluded {group}: {_deliveries(account, group, events)}")
    result = invoke(handlers.subscribe_log_group, account_policy_call_event("DeleteAccountPolicy", "log-group-governor", role_arn=team),
                    function_name="subscribe-log-group", out=out)
    print(f"       its DeleteAccountPolicy event -> {result['action']}: {result['detail'].split('; account policy: ', 1)[-1]}")
    print(f"       after the event: {sample} {_deliveries(account, sample, events)}; {group}: {_deliveries(account, group, events)} "
          f"(alarm AccountPolicyRestored)")

    print("\n     a CI run's groups, created and deleted (their names leave the list with their DeleteLogGroup records):")
    for n in range(3):
        name = f"/aws/lambda/sandbox-ci-run-{n}"
        account.create_log_group(name)
        invoke(handlers.subscribe_log_group, create_log_group_event(name), function_name="subscribe-log-group", out=out)
        account.logs.delete_log_group(logGroupName=name)
        gone = invoke(handlers.subscribe_log_group, log_group_call_event("DeleteLogGroup", name, role_arn=team),
                      function_name="subscribe-log-group", out=out)
        print(f"       {name}: created, listed, deleted -> {gone['action']} ({gone['reason']}); in the list: {name in _not_in(account)}")


def _deliveries(account: LocalAccount, group: str, events: list[dict[str, Any]]) -> str:
    found = account.deliveries(group, events)
    if not found:
        return "not shipped"
    levels = [decode_json(event).get("policyLevel", "group filter") for _, event in found]
    return f"shipped {len(found)}x ({', '.join(levels)})"


def _not_in(account: LocalAccount) -> list[str]:
    policies = account.logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"]
    return json.loads(policies[0]["selectionCriteria"].removeprefix("LogGroupName NOT IN ")) if policies else []


def _retention_policies(account: LocalAccount) -> list[str]:
    return [p["policyName"] for p in account.logs.describe_account_policies(policyType="RETENTION_POLICY")["accountPolicies"]]


class _Indented:
    """The CLI's output, indented under the act."""

    def __init__(self) -> None:
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            print(f"     {line}")
        return len(text)

    def flush(self) -> None:
        pass


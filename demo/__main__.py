"""`make demo`: the governor at work on a local, moto-backed account.

It reads cdk.json as `cdk synth` does, points the destination at a log-shipper function in the local
account (what `-c governor:destinationArn=...` does on a real deploy), creates a realistic mix of log
groups, feeds CloudTrail-shaped CreateLogGroup events through the real handlers, and prints each
group before and after with the outcome and its reason.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from unittest import mock
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, TextIO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "lambdas"))

from governor.config import ENV_CONFIG, ENV_STATE_TABLE, ENV_OWN_PRINCIPALS  # noqa: E402
from governor.gap_settings import ENV_GAP_QUEUE_URL  # noqa: E402
from ship_logs.config import ENV_ALLOW_LOOPBACK_HTTP, ENV_SHIP_LOGS, ENV_SHIP_LOGS_DLQ_URL  # noqa: E402
from localaws.account import LocalAccount, local_account  # noqa: E402
from localaws.events import create_log_group_event, log_group_call_event  # noqa: E402
from localaws.lambda_runtime import LocalLambdaContext, SimulatedClock, handler_output_to, invoke  # noqa: E402
from localaws.log_store import log_store  # noqa: E402
from localaws.mix import create_mix  # noqa: E402
from localaws.payloads import control_message_event, lambda_log_events, subscription_event  # noqa: E402
from localaws.stepfunctions import run_execution  # noqa: E402
from stacks.settings import DeploymentSettings  # noqa: E402
from demo.native import native_policies  # noqa: E402
from demo.fleet import fleet_at_work  # noqa: E402
from demo.selftest import selftest_act  # noqa: E402
from demo.replay import replay_act  # noqa: E402
from demo.rules import rules_act  # noqa: E402

SHIPPER = "log-shipper"
STATE_TABLE = "log-group-governor-state"
#: The drift act happens this long after the groups were created.
DAYS_LATER_S = 2 * 86400
#: Another tool that manages retention in this account, and the governor's own role (its calls are ignored).
DEMO_OTHER_TOOL = "arn:aws:iam::123456789012:role/terraform-apply"
DEMO_OWN_ROLE = "arn:aws:iam::123456789012:role/LogGroupGovernor-SetRetentionRole"
REPORTS_BUCKET = "log-group-governor-reports"
BACKFILL_GROUPS = 120
#: What an operator would add on top of the repository's cdk.json for this account.
DEMO_OVERRIDES = {
    "governor:excludePrefixes": ["/aws/lambda/sandbox-"],
    "governor:retentionOverrides": {"/aws/lambda/prod-": 365},
}


def demo_context(destination_arn: str) -> dict[str, Any]:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    return {**context, **DEMO_OVERRIDES, "governor:destinationArn": destination_arn}


def create_groups(account: LocalAccount) -> list[str]:
    """A realistic mix, as an account that has run for a while holds it."""
    vendor = account.create_function("vendor-apm-forwarder")
    siem = account.create_stream("security-siem")
    return [
        account.create_log_group("/aws/lambda/orders-api"),
        account.create_log_group("/aws/lambda/payments-worker", retention_days=7),
        account.create_log_group("/aws/lambda/prod-ledger", retention_days=90),
        account.create_log_group("/aws/lambda/reporting", retention_days=731),
        account.create_log_group(f"/aws/lambda/{SHIPPER}"),
        account.create_log_group("/aws/lambda/sandbox-experiment"),
        account.create_log_group("/aws/lambda/noisy-batch", tags={"log-group-governor:opt-out": "true"}),
        account.create_log_group("/archive/audit-trail", log_group_class="INFREQUENT_ACCESS"),
        account.create_log_group("/aws/lambda/checkout", filters=[("vendor-apm", vendor), ("siem", siem)]),
        account.create_log_group("/ecs/search-indexer", filters=[("vendor-apm", vendor)]),
    ]


def describe(snapshot: dict[str, Any]) -> str:
    retention = f"{snapshot['retention']}d" if snapshot["retention"] else "never"
    filters = ",".join(sorted(snapshot["filters"])) or "-"
    return f"{retention:>6} {filters}"


def event_handlers(account: LocalAccount, out: TextIO) -> None:
    """New log groups, one CloudTrail event each, through subscribe-log-group and set-retention."""
    from governor.handlers.create_log_group import set_retention, subscribe_log_group

    print("1. New log groups: a CreateLogGroup event each, through subscribe-log-group and set-retention\n")
    groups = create_groups(account)
    before = {name: account.snapshot(name) for name in groups}
    calls_before = Counter(account.calls)
    rows = []
    for name in groups:
        event = create_log_group_event(name, region=account.region)
        subscription = invoke(subscribe_log_group, event, function_name="subscribe-log-group", out=out)
        retention = invoke(set_retention, event, function_name="set-retention", out=out)
        rows.append((name, subscription, retention))

    replay = invoke(subscribe_log_group, create_log_group_event("/aws/lambda/orders-api"), function_name="subscribe-log-group", out=out)
    other = create_log_group_event("/aws/lambda/orders-api")
    other["detail"]["eventName"] = "CreateLogStream"
    other_call = invoke(set_retention, other, function_name="set-retention", out=out)
    malformed = create_log_group_event("/aws/lambda/x")
    del malformed["detail"]["requestParameters"]
    broken = invoke(subscribe_log_group, malformed, function_name="subscribe-log-group", out=out)
    made = account.calls - calls_before

    print(f"{'log group':<30} {'class':<17} {'before':<26} {'subscription':<40} {'retention':<37} after")
    for name, subscription, retention in rows:
        after = account.snapshot(name)
        print(
            f"{name:<30} {after['class']:<17} {describe(before[name]):<26} "
            f"{subscription['action'] + ' (' + subscription['reason'] + ')':<40} "
            f"{retention['action'] + ' (' + retention['reason'] + ')':<37} {describe(after)}"
        )
    print()
    print(f"Replayed event for /aws/lambda/orders-api: {replay['action']} ({replay['reason']}): nothing written twice")
    replay_act(account, json.loads(os.environ[ENV_CONFIG]), out)
    repointed(account, out)
    print(f"A CreateLogStream event:                    {other_call['status']} ({other_call['reason']})")
    print(f"An event without requestParameters:         {broken['status']} ({broken['reason']})")
    print(f"API calls made by the handlers: {dict(sorted(made.items()))}")


def repointed(account: LocalAccount, out: TextIO) -> None:
    """The destination's LoggingConfig pointed at a group the governor had subscribed: a loop, cut by its event."""
    from governor.handlers.create_log_group import subscribe_log_group
    from localaws.events import lambda_call_event

    account.set_function_log_group(SHIPPER, "/aws/lambda/orders-api")  # a team points the shipper's logs at a subscribed group
    result = invoke(subscribe_log_group, lambda_call_event("UpdateFunctionConfiguration20150331v2", SHIPPER, logging_group="/aws/lambda/orders-api"),
                    function_name="subscribe-log-group", out=out)
    [cut] = [o for o in result["outcomes"] if o["logGroup"] == "/aws/lambda/orders-api"]
    print(f"The destination re-pointed at /aws/lambda/orders-api (UpdateFunctionConfiguration20150331v2): {cut['action']} ({cut['reason']}); "
          f"after: {describe(account.snapshot('/aws/lambda/orders-api'))}")
    # And back, for the acts that follow: that change's record refreshes the guard too, and the group is governed again.
    account.set_function_log_group(SHIPPER, f"/aws/lambda/{SHIPPER}")
    invoke(subscribe_log_group, lambda_call_event("UpdateFunctionConfiguration20150331v2", SHIPPER, logging_group=f"/aws/lambda/{SHIPPER}"),
           function_name="subscribe-log-group", out=out)
    invoke(subscribe_log_group, log_group_call_event("DeleteSubscriptionFilter", "/aws/lambda/orders-api"), function_name="subscribe-log-group", out=out)


def backfill(account: LocalAccount, shipper_arn: str, out: TextIO) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """Groups that existed before the deploy: a dry-run plan, an apply, and an apply that finds nothing to do."""
    from governor.config import ENV_REPORTS_BUCKET
    from governor.handlers.backfill import build_parts, handle_backfill

    print(f"\n2. The backfill: {BACKFILL_GROUPS} more log groups that existed before the deploy (a realistic mix);"
          " each run scans the whole account\n")
    create_mix(account, shipper_arn, BACKFILL_GROUPS, functions=True)
    account.client("s3").create_bucket(Bucket=REPORTS_BUCKET, CreateBucketConfiguration={"LocationConstraint": account.region})
    # The pacer keeps to the published quotas in simulated time, so the demo does not wait for real.
    clock = SimulatedClock()
    with mock.patch.dict(os.environ, {ENV_REPORTS_BUCKET: REPORTS_BUCKET}):
        parts = build_parts(os.environ, clock=clock.monotonic, sleep=clock.sleep)

    def execute(name: str, execution_input: dict[str, Any]) -> dict[str, Any]:
        calls_before = Counter(account.calls)
        with handler_output_to(out):
            execution = run_execution(name, execution_input, lambda payload: handle_backfill(
                payload, LocalLambdaContext("backfill", timeout_ms=900_000, clock=clock.monotonic), parts))
        summary = execution.output["summary"]
        writes = {op: n for op, n in (account.calls - calls_before).items() if op.startswith("logs.Put")}
        print(f"   {name}: {summary['logGroups']} log groups in {summary['pages']} pages, writes {writes or 'none'}")
        for key, reasons in summary["byReason"].items():
            print(f"     {key:<28} {', '.join(f'{reason} {n}' for reason, n in reasons.items())}")
        return execution.output

    plan = execute("dry-run", {"dryRun": True})
    s3 = account.client("s3")
    first_page = s3.get_object(Bucket=REPORTS_BUCKET, Key="runs/dry-run/decisions/page-000001.jsonl")["Body"].read().decode().splitlines()
    print(f"   the plan, per group, in {plan['decisionsLocation']} (first lines):")
    for line in first_page[:4]:
        print(f"     {line}")
    execute("apply", {})
    execute("apply-again", {})
    print(f"   simulated time at the published quotas: {clock.now:.0f} s for the three runs")
    # What follows happens days later: groups are old enough for orphans to be judged (a day at least).
    object.__setattr__(parts, "wall_clock", lambda: time.time() + DAYS_LATER_S)
    return execute


def drift(account: LocalAccount, execute: Callable[[str, dict[str, Any]], dict[str, Any]], out: TextIO) -> None:
    """The account changes after the governor set it: CloudTrail records of each change reach the
    handlers, and the scheduled reconcile catches what no event told."""
    from governor.handlers import create_log_group as handlers

    real_wall_clock, handlers.wall_clock = handlers.wall_clock, lambda: time.time() + DAYS_LATER_S  # days later, as the reconcile's
    try:
        _drift(account, execute, out)
    finally:
        handlers.wall_clock = real_wall_clock


def _drift(account: LocalAccount, execute: Callable[[str, dict[str, Any]], dict[str, Any]], out: TextIO) -> None:
    from governor import coverage
    from governor.handlers.create_log_group import set_retention, subscribe_log_group


    print("\n3. Drift: other people and tools change governed groups; events repair them, the nightly reconcile catches the rest\n")
    logs, admin, terraform = account.logs, f"arn:aws:iam::{account.account_id}:role/platform-admin", DEMO_OTHER_TOOL
    arn = f"arn:aws:logs:{account.region}:{account.account_id}:log-group:/aws/lambda/payments-worker"

    def handle(handler: Any, name: str, event_name: str, group: str, role: str) -> dict[str, Any]:
        result = invoke(handler, log_group_call_event(event_name, group, role_arn=role), function_name=name, out=out)
        what = f"{result['action']} ({result['reason']})" if result["status"] == "done" else f"{result['status']} ({result['reason']})"
        print(f"   {event_name:<25} on {group:<28} by {role.rsplit('/', 1)[-1]:<22} -> {what}; now {describe(account.snapshot(group))}")
        return result

    logs.delete_subscription_filter(logGroupName="/aws/lambda/orders-api", filterName="log-group-governor")
    logs.tag_resource(resourceArn=arn, tags={"log-group-governor:opt-out": "true"})
    lost = account.create_log_group("/aws/lambda/inventory-sync")  # CloudTrail's record of it never arrived
    print("   before the events and the reconcile (a plan over every group):")
    execute("drift-plan", {"dryRun": True})
    print(_indent(coverage.table(_latest_coverage(account), region=account.region)))
    print()

    handle(subscribe_log_group, "subscribe-log-group", "DeleteSubscriptionFilter", "/aws/lambda/orders-api", admin)
    handle(subscribe_log_group, "subscribe-log-group", "TagResource", "/aws/lambda/payments-worker", admin)
    logs.untag_resource(resourceArn=arn, tagKeys=["log-group-governor:opt-out"])
    handle(subscribe_log_group, "subscribe-log-group", "UntagResource", "/aws/lambda/payments-worker", admin)
    for _ in range(4):  # another tool keeps shortening it; after three repairs the governor stops fighting
        logs.put_retention_policy(logGroupName="/ecs/search-indexer", retentionInDays=7)
        fought = handle(set_retention, "set-retention", "PutRetentionPolicy", "/ecs/search-indexer", terraform)
    print(f"     {fought['detail']}")
    handle(set_retention, "set-retention", "PutRetentionPolicy", "/aws/lambda/orders-api", DEMO_OWN_ROLE)

    print(f"\n   the scheduled reconcile finds {lost}, whose create event was lost:")
    execute("nightly-reconcile", {"reconcile": True})
    print(f"   {lost}: now {describe(account.snapshot(lost))}")
    print("   after (python -m cli status):")
    print(_indent(coverage.table(_latest_coverage(account), region=account.region)))


def _latest_coverage(account: LocalAccount) -> dict[str, Any]:
    body = account.client("s3").get_object(Bucket=REPORTS_BUCKET, Key="coverage/latest.json")["Body"].read()
    return json.loads(body)


def _indent(text: str) -> str:
    return "\n".join(f"   {line}" for line in text.splitlines())


def ship_logs_at_work(account: LocalAccount, out: TextIO) -> None:
    """The built-in destination: a subscription batch from a Lambda function, shipped to a log store."""
    from ship_logs import handler as ship_logs

    print("\n5. ship-logs, the built-in destination: subscription batches, as CloudWatch Logs sends them\n")
    secret = account.client("secretsmanager").create_secret(
        Name="demo-log-store", SecretString=json.dumps({"username": "shipper", "password": "demo-only"}))["ARN"]
    queue = account.client("sqs").create_queue(QueueName="ship-logs-dlq")["QueueUrl"]
    batches = {
        "/aws/lambda/orders-api": lambda_log_events(60, seed=5),  # Python runtime, text log format
        "/aws/lambda/checkout": lambda_log_events(30, seed=9, runtime="node", json_format=True),  # Node.js, JSON log format
    }
    with log_store() as store:
        # Both metric families, asked for (ship-logs publishes none by default: each metric costs money).
        sink = {"sink": "opensearch", "endpoint": store.url, "auth": "basic", "secretArn": secret, "index": "logs-%Y.%m.%d",
                "metrics": {"usage": True, "custom": True}}
        with mock.patch.dict(os.environ, {ENV_SHIP_LOGS: json.dumps(sink), ENV_SHIP_LOGS_DLQ_URL: queue,
                                          ENV_ALLOW_LOOPBACK_HTTP: "1"}):
            ship_logs.shipper.cache_clear()
            control = invoke(ship_logs.handler, control_message_event(), function_name="ship-logs", out=out)
            print(f"   CONTROL_MESSAGE: {control['status']}")
            for group, events in batches.items():
                result = invoke(ship_logs.handler, subscription_event(group, events), function_name="ship-logs", out=out)
                print(f"   {group}: {len(events)} log events {result['status']}: {result['shipped']} records to {store.url}/_bulk "
                      f"in {result['requests']} request(s), {result['rejected']} refused; {result['usageReports']} REPORT and "
                      f"{result['customMetrics']} MONITORING lines -> {result['metricDataPoints']} data points in "
                      f"{result['metricRequests']} PutMetricData calls")
            ship_logs.shipper.cache_clear()
        print("   records (type, level, request id, message), as the log store holds them:")
        for document in store.documents()[:10]:
            message = document["message"].replace("\n", " | ")[:70]
            print(f"     {document['type']:<16} {str(document['level']):<6} {str(document['requestId'])[:8]:<8} {message}")
        structured = next(d for d in store.documents() if d["fields"] and "correlation_id" in d["fields"])
        print(f"   a structured line keeps its fields: correlation_id={structured['fields']['correlation_id'][:8]}..., "
              f"user_agent={structured['fields']['user_agent']!r}, debug={structured['fields']['debug']}")
    cloudwatch = account.client("cloudwatch")
    print("   metrics in CloudWatch:")
    for namespace in ("LogGroupGovernor/Lambda", "shop"):
        for metric in sorted(cloudwatch.list_metrics(Namespace=namespace)["Metrics"], key=lambda m: m["MetricName"]):
            stats = cloudwatch.get_metric_statistics(
                Namespace=namespace, MetricName=metric["MetricName"], Dimensions=metric["Dimensions"], Period=86400,
                StartTime="2026-11-27T00:00:00Z", EndTime="2026-11-30T00:00:00Z", Statistics=["SampleCount", "Average", "Sum"])
            points = stats["Datapoints"]
            count, total = sum(p["SampleCount"] for p in points), sum(p["Sum"] for p in points)
            dims = ",".join(f"{d['Name']}={d['Value']}" for d in metric["Dimensions"])
            print(f"     {namespace}/{metric['MetricName']:<15} {dims:<25} samples {count:>4.0f}  sum {total:>10.2f}  "
                  f"average {total / count if count else 0:>8.2f}")


#: The demo's two halves: the governor on one account (acts 1-4), and what stands beside it (acts 5-7:
#: ship-logs, an organization, the self-test after a deploy). `make demo` runs both; the tests run each
#: half in a worker of its own.
GOVERNANCE, AROUND = "governance", "around"


def main(halves: tuple[str, ...] = (GOVERNANCE, AROUND)) -> None:
    log_file = Path(tempfile.gettempdir()) / f"log-group-governor-demo{'' if len(halves) == 2 else '-' + halves[0]}.jsonl"
    with local_account() as account, log_file.open("w") as out:
        shipper_arn = account.create_function(SHIPPER)
        settings = DeploymentSettings.from_context(demo_context(shipper_arn))  # what synth validates
        config_json = json.dumps(settings.policy.to_json_dict())             # what the stack deploys
        print(f"Local account {account.account_id} in {account.region} (moto). Destination: {shipper_arn}")
        print(f"Policy (cdk.json + demo overrides): {config_json}\n")
        state_table = account.create_state_table(STATE_TABLE)
        own = json.dumps([DEMO_OWN_ROLE])
        from governor.handlers import create_log_group as handlers

        # The event handlers pace their calls at their share of the account's quotas (a second or more per write
        # at the published quotas): on a simulated clock here, so the demo shows the decisions without the waits.
        paced = SimulatedClock()
        with mock.patch.object(handlers, "clock", paced.monotonic), mock.patch.object(handlers, "sleep", paced.sleep):
            if GOVERNANCE in halves:
                replay_queue = account.client("sqs").create_queue(QueueName="demo-governor-replay")["QueueUrl"]
                with mock.patch.dict(os.environ, {ENV_CONFIG: config_json, ENV_STATE_TABLE: state_table, ENV_OWN_PRINCIPALS: own,
                                                  ENV_GAP_QUEUE_URL: replay_queue}):
                    event_handlers(account, out)
                    execute = backfill(account, shipper_arn, out)
                    drift(account, execute, out)
                    native_policies(account, demo_context(shipper_arn), REPORTS_BUCKET, out)
                    rules_act(account, config_json, out)
            if AROUND in halves:
                ship_logs_at_work(account, out)
                fleet_at_work(demo_context(shipper_arn), out)
                selftest_act(account, demo_context(shipper_arn), out)
    print(f"\nHandler logs and EMF metrics (JSON lines): {log_file}")


if __name__ == "__main__":
    main()

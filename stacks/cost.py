"""The cost model (#29): what each stack costs a month, fixed, resource by resource, and what its use costs,
from the synthesized templates and one dated price table. ``make cost`` (``python -m stacks.cost``) synthesizes
the four stacks and writes docs/cost.md; tests/infra/test_cost.py fails when a template holds a resource type
the model does not know, or when docs/cost.md is not what the code writes.

List prices of one region (PRICE_REGION), as the pages named beside each price said on PRICES_AS_OF; other
regions differ by a few percent. Free tiers are left out (an account's first 10 alarm metrics, 3 dashboards,
10 custom metrics... are shared with everything else it runs).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lambdas"))
from governor.gap_settings import WATCH_EVERY_MINUTES  # noqa: E402
from governor.storage_cost import USD_PER_GB_MONTH as STORAGE_USD_PER_GB_MONTH  # noqa: E402

PRICES_AS_OF = "2026-12-06"
PRICE_REGION = "us-east-1"
HOURS_PER_MONTH = 730
_CW = "https://aws.amazon.com/cloudwatch/pricing/"
#: The delivery-gap watch's runs a month (its schedule).
_WATCH_RUNS = 30 * 24 * 60 // WATCH_EVERY_MINUTES


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str


PRICES: dict[str, Price] = {
    "alarm_metric": Price(0.10, "per standard-resolution alarm metric a month", _CW),
    "dashboard": Price(3.00, "per custom dashboard a month (3 of up to 50 metrics free per account)", _CW),
    "custom_metric": Price(0.30, "per custom metric a month (first 10,000; prorated by the hours it is published in)", _CW),
    "cloudwatch_api": Price(0.01, "per 1,000 CloudWatch API requests (ListMetrics among them; first 1,000,000 a month free)", _CW),
    "get_metric_data": Price(0.01, "per 1,000 metrics requested by GetMetricData", _CW),
    "logs_ingest_gb": Price(0.50, "per GB ingested into CloudWatch Logs (Standard class)", _CW),
    # The governor's plan estimates retention's savings at this price: one figure, kept where the functions can read it.
    "logs_store_gb": Price(STORAGE_USD_PER_GB_MONTH, "per GB-month stored by CloudWatch Logs", _CW),
    "kms_customer_managed_key": Price(1.00, "per customer managed KMS key a month", "https://aws.amazon.com/kms/pricing/"),
    "kms_requests": Price(0.03, "per 10,000 KMS requests", "https://aws.amazon.com/kms/pricing/"),
    "kinesis_shard_hour": Price(0.015, "per provisioned shard-hour", "https://aws.amazon.com/kinesis/data-streams/pricing/"),
    "kinesis_put_units": Price(0.014, "per million PUT payload units (25 KB each)", "https://aws.amazon.com/kinesis/data-streams/pricing/"),
    "trail_copy": Price(2.00, "per 100,000 management events, for each copy after an account's first (the first is free)",
                        "https://aws.amazon.com/cloudtrail/pricing/"),
    "lambda_requests": Price(0.20, "per million Lambda requests", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_second": Price(0.0000133334, "per GB-second of Lambda on arm64", "https://aws.amazon.com/lambda/pricing/"),
    "sqs_requests": Price(0.40, "per million SQS requests (64 KB chunks)", "https://aws.amazon.com/sqs/pricing/"),
    "firehose_gb": Price(0.029, "per GB ingested by Firehose Direct PUT (5 KB increments)", "https://aws.amazon.com/firehose/pricing/"),
    "s3_gb": Price(0.023, "per GB-month in S3 Standard", "https://aws.amazon.com/s3/pricing/"),
    "dynamodb_writes": Price(0.625, "per million on-demand write request units", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "dynamodb_reads": Price(0.125, "per million on-demand read request units", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "scheduler": Price(1.00, "per million EventBridge Scheduler invocations (14 million free a month)",
                       "https://aws.amazon.com/eventbridge/pricing/"),
    "events_custom": Price(1.00, "per million events put on a bus by PutEvents or from another account (AWS service events: free)",
                           "https://aws.amazon.com/eventbridge/pricing/"),
    "sfn_transitions": Price(0.025, "per 1,000 Step Functions standard state transitions", "https://aws.amazon.com/step-functions/pricing/"),
    "sns_requests": Price(0.50, "per million SNS publishes (e-mail deliveries $2 per 100,000)", "https://aws.amazon.com/sns/pricing/"),
}


@dataclass(frozen=True)
class Fixed:
    """A resource's monthly cost whatever happens: ``count`` units at a price."""

    price: str
    count: Callable[[Mapping[str, Any]], float]


def _one(properties: Mapping[str, Any]) -> float:
    return 1


def _alarm_metrics(properties: Mapping[str, Any]) -> float:
    """An alarm is billed per metric it reads: one for a plain alarm, each metric of a math alarm. A Metrics Insights
    query alarm (the DeliveryErrors-by-group alarm) is counted as one, its floor: how AWS bills the series it analyses is
    not settled here (*unconfirmed*; docs/cost.md says so)."""
    metrics = properties.get("Metrics")
    return max(1, sum(1 for m in metrics if "MetricStat" in m)) if metrics else 1


def _shard_hours(properties: Mapping[str, Any]) -> float:
    return float(properties.get("ShardCount", 1)) * HOURS_PER_MONTH


#: Every resource type a template may hold: its fixed monthly price, the prices its use draws on, or nothing.
FIXED: dict[str, Fixed] = {
    "AWS::CloudWatch::Alarm": Fixed("alarm_metric", _alarm_metrics),
    "AWS::CloudWatch::Dashboard": Fixed("dashboard", _one),
    "AWS::KMS::Key": Fixed("kms_customer_managed_key", _one),
    "AWS::Kinesis::Stream": Fixed("kinesis_shard_hour", _shard_hours),
}
USAGE: dict[str, tuple[str, ...]] = {
    "AWS::CloudTrail::Trail": ("trail_copy",),
    "AWS::Lambda::Function": ("lambda_requests", "lambda_gb_second"),
    "AWS::SQS::Queue": ("sqs_requests",),
    "AWS::KinesisFirehose::DeliveryStream": ("firehose_gb",),
    "AWS::S3::Bucket": ("s3_gb",),
    "AWS::Logs::LogGroup": ("logs_ingest_gb", "logs_store_gb"),
    "AWS::DynamoDB::GlobalTable": ("dynamodb_writes", "dynamodb_reads"),
    "AWS::DynamoDB::Table": ("dynamodb_writes", "dynamodb_reads"),
    "AWS::Scheduler::Schedule": ("scheduler",),
    "AWS::StepFunctions::StateMachine": ("sfn_transitions",),
    "AWS::SNS::Topic": ("sns_requests",),
    "AWS::Events::EventBus": ("events_custom",),
    "AWS::Kinesis::Stream": ("kinesis_put_units",),
    "AWS::Logs::Destination": (),
}
#: No charge of their own (IAM, policies, permissions, wiring, CloudFormation's own).
FREE = frozenset({
    "AWS::CDK::Metadata", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::SNS::Subscription", "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig", "AWS::Lambda::LayerVersion", "AWS::Logs::LogStream",
    "AWS::Events::Rule", "AWS::Events::EventBusPolicy", "AWS::KMS::Alias", "AWS::CloudFormation::StackSet",
    "AWS::CloudFormation::CustomResource", "AWS::Logs::ResourcePolicy", "AWS::Logs::SubscriptionFilter",
    "AWS::Logs::AccountPolicy", "AWS::Lambda::Url", "AWS::Scheduler::ScheduleGroup",
})


def unknown_types(template: Mapping[str, Any]) -> list[str]:
    """Resource types the model cannot price: a new priced resource must be added to FIXED, USAGE or FREE."""
    return sorted({r["Type"] for r in template["Resources"].values()
                   if r["Type"] not in FIXED and r["Type"] not in USAGE and r["Type"] not in FREE and not r["Type"].startswith("Custom::")})


@dataclass(frozen=True)
class Line:
    resource_type: str
    count: float
    price: str

    @property
    def monthly(self) -> float:
        return self.count * PRICES[self.price].usd


def fixed_lines(template: Mapping[str, Any]) -> list[Line]:
    """The fixed monthly cost of a template, by resource type."""
    units: Counter[str] = Counter()
    for resource in template["Resources"].values():
        fixed = FIXED.get(resource["Type"])
        if fixed is not None:
            units[resource["Type"]] += fixed.count(resource.get("Properties", {}))
    return [Line(t, units[t], FIXED[t].price) for t in sorted(units)]


def resource_counts(template: Mapping[str, Any]) -> Counter[str]:
    return Counter(r["Type"] for r in template["Resources"].values())


def governor_metrics() -> dict[str, int]:
    """The custom metrics the governor's functions can publish (namespace LogGroupGovernor, dimension service): each
    name once, the names also published by Reason once per reason, the per-control figure once per control."""
    from governor import metric_names as names
    from governor.controls import REASONS, REGISTRY
    from governor.rules import CONTROLS

    plain = ({v for k, v in vars(names).items() if k.isupper() and isinstance(v, str)} | {"ReturnedToQueue"}
             | {m for c in REGISTRY for m in c.metrics})
    by_reason = {names.SKIPPED, names.CONFLICTS, names.FILTERS_REMOVED, names.COVERAGE_EXCLUDED, names.COVERAGE_CONFLICTS}
    return {"names": len(plain), "byReason": len(by_reason) * len(REASONS), "byControl": len(CONTROLS)}


#: A finished reconcile publishes its coverage once: those metrics are billed for the hours they are published in.
COVERAGE_HOURS_PER_MONTH = 30


# -- The stacks the page prices -------------------------------------------------------------------------------------

from governor.controls import PLUGGED as _PLUGGED  # noqa: E402

#: Rules with every control a rule governs (as the infra tests' rules stack).
EVERY_CONTROL_RULES = [
    {"name": "production", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "retention": {"days": 365},
     # every control that plugs in whole, by its module's example
     **{c.name: c.example for c in _PLUGGED}},
    {"name": "everything else", "match": {}, "retention": {"days": 30}},
]
EXAMPLE_ORGANIZATION = {"archive:organizationId": "o-exampleorg1", "archive:regions": ["eu-west-1"],
                        "rollout:centralAccount": "111111111111", "rollout:regions": ["eu-west-1"],
                        "rollout:waves": [["ou-exam-11111111"]]}


def synthesize_all(repo: Path) -> dict[str, dict[str, Any]]:
    """The templates docs/cost.md prices: the default stack, every rule control, an organization member, the archive."""
    import aws_cdk as cdk

    sys.path[:0] = [str(repo), str(repo / "lambdas")]
    from app import build_app
    from org_app import build_org_app

    context = json.loads((repo / "cdk.json").read_text())["context"]
    env = cdk.Environment(account="123456789012", region="eu-west-1")
    nulls = {k: None for k, v in context.items() if v is None}
    found: dict[str, dict[str, Any]] = {}
    for title, extra in (("default (cdk.json as shipped)", {}),
                         ("every rule control", {"governor:rules": EVERY_CONTROL_RULES,  # each control per group: a handler each
                                                 **{f"governor:{c.via_key}": "per-group" for c in _PLUGGED if c.via_key}})):
        outdir = tempfile.mkdtemp(prefix="cdk.out-cost-")
        app = cdk.App(context={**context, **extra}, outdir=outdir)
        stack = build_app(app, env=env, nulls=nulls)
        app.synth()
        found[title] = json.loads((Path(outdir) / f"{stack.stack_name}.template.json").read_text())
    outdir = tempfile.mkdtemp(prefix="cdk.out-cost-org-")
    app = cdk.App(context={**context, **EXAMPLE_ORGANIZATION}, outdir=outdir)
    build_org_app(app, env=cdk.Environment(account="222222222222", region="eu-west-1"))
    app.synth()
    templates = {p.name.split(".")[0]: json.loads(p.read_text()) for p in Path(outdir).glob("*.template.json")}
    [member] = [t for name, t in templates.items() if name.startswith("LogGroupGovernorRolloutMember")]
    found["organization member (the rollout's template)"] = member
    found["organization archive (logging account, per region)"] = templates["LogGroupGovernorArchive-eu-west-1"]
    return found


def _exact(value: float) -> str:
    """A list price as its page writes it: to the cent, or every digit it has."""
    return f"${value:.2f}" if round(value, 2) == value else "$" + f"{value:.10f}".rstrip("0")


def _usd(value: float) -> str:
    if value == 0 or value >= 0.1:
        return f"${value:,.2f}"
    return f"${value:.2g}" if value >= 0.0001 else f"${value:.1e}"


def function_memory(template: Mapping[str, Any]) -> dict[str, int]:
    """Each function's memory (MB) in a template, by what its handler names: the event handlers, the backfill, ship-logs."""
    found: dict[str, int] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        handler = str(resource["Properties"].get("Handler", ""))
        kind = "ship-logs" if handler.startswith("ship_logs") else "backfill" if "backfill" in handler else "handler"
        found[kind] = max(found.get(kind, 0), int(resource["Properties"].get("MemorySize", 128)))
    return found


def _lambda_hour(memory: Mapping[str, int], kind: str) -> str:
    mib = memory.get(kind, 128)
    return f"{_usd(3600 * mib / 1024 * PRICES['lambda_gb_second'].usd)} an hour at its {mib} MB"


def render(templates: Mapping[str, Mapping[str, Any]]) -> str:
    metrics = governor_metrics()
    memory = function_memory(next(iter(templates.values())))
    out = [
        "# What it costs",
        "",
        "<!-- Generated by `make cost` (stacks/cost.py) from the synthesized templates; do not edit. -->",
        "",
        f"List prices of {PRICE_REGION} as their pages said on {PRICES_AS_OF}; other regions differ by a few percent. Free tiers",
        "are left out: an account's first 10 alarm metrics, 3 dashboards and 10 custom metrics are shared with whatever else it runs.",
        "Each figure is per account and region.",
        "",
        "## Fixed: what each stack costs a month before anything happens",
        "",
        "| stack | resources | fixed a month | of which |",
        "| --- | --- | --- | --- |",
    ]
    for title, template in templates.items():
        lines = fixed_lines(template)
        parts = ", ".join(f"{line.resource_type.split('::')[-1]} {line.count:g} × {_usd(PRICES[line.price].usd)} = {_usd(line.monthly)}"
                          for line in lines)
        out.append(f"| {title} | {sum(resource_counts(template).values())} | **{_usd(sum(line.monthly for line in lines))}** | {parts or 'nothing'} |")
    out += [
        "",
        "An alarm on a Metrics Insights query (DeliveryErrors by log group, one series per subscribed group with deliveries) is",
        "counted as one alarm metric, its floor; whether AWS bills it per series it analyses is not confirmed here.",
        "",
        "Everything else in the templates is paid by use (below) or costs nothing itself (IAM roles and policies, EventBridge",
        "rules on AWS service events, event source mappings, bucket and queue policies, the StackSets).",
        "",
        "## By use",
        "",
        "| what happens | what it costs |",
        "| --- | --- |",
        f"| the stack's trail, where another trail already logs management events | a paid second copy of **every** write "
        f"management event of the account and region, not only CreateLogGroup: {_usd(PRICES['trail_copy'].usd)} per 100,000 "
        f"(`governor:createTrail` false removes it; an organization: `rollout:organizationTrail` true; the selftest's `trail` "
        f"step says when it is one); on an account's first trail, free |",
        f"| 1,000 new log groups | SQS a few requests a group "
        f"({_usd(6000 * PRICES['sqs_requests'].usd / 1e6)} at six); Lambda: the event handlers' time, {_lambda_hour(memory, 'handler')} "
        f"(`make bench`'s burst prints it per 1,000 groups, simulated) |",
        f"| a million groups backfilled (`apply`, or a reconcile) | Lambda: the backfill's time, {_lambda_hour(memory, 'backfill')}, "
        f"for as long as the API quotas make the run last (`make bench` prints the hours and the dollars, simulated); the "
        f"CloudWatch Logs calls themselves are free |",
        f"| a million events shipped by ship-logs | Lambda: ship-logs' time, {_lambda_hour(memory, 'ship-logs')} (`make bench` prints "
        f"it per million events from measured CPU time, beside the Datadog Forwarder's at its defaults); plus the sink below |",
        f"| a GB shipped through Firehose to S3 (the built-in sink) | {_usd(PRICES['firehose_gb'].usd)} ingested, then "
        f"{_usd(PRICES['s3_gb'].usd)} a GB-month stored (compressed by Firehose) |",
        f"| a GB through the archive's Kinesis stream | {_usd(PRICES['kinesis_put_units'].usd)} per million 25 KB PUT units "
        f"(about {_usd(40_000 * PRICES['kinesis_put_units'].usd / 1e6)} a GB), on {_usd(HOURS_PER_MONTH * PRICES['kinesis_shard_hour'].usd)} "
        f"a shard-month (fixed, above) |",
        f"| the delivery-gap watch (#31), every {WATCH_EVERY_MINUTES} minutes | {_WATCH_RUNS:,} invocations a month "
        f"({_usd(_WATCH_RUNS * PRICES['lambda_requests'].usd / 1e6)}) and as many ListMetrics calls (free within the API's free "
        f"million, else {_usd(_WATCH_RUNS * PRICES['cloudwatch_api'].usd / 1000)}); for each group a delivery error touches, "
        f"GetMetricData reads 2 metrics on each run for three hours: {_usd(2 * (180 // WATCH_EVERY_MINUTES) * PRICES['get_metric_data'].usd)} "
        f"per 1,000 such groups; each gap's replay reads the group (FilterLogEvents, free) and writes the destination once more |",
        f"| a custom metric | {_usd(PRICES['custom_metric'].usd)} a month if published every hour; billed by the hours it is published in |",
        f"| a GB a log group keeps | {_usd(PRICES['logs_store_gb'].usd)} a month: what retention saves (`plan` estimates it) |",
        "",
        "## Custom metrics",
        "",
        f"The governor's functions can publish {metrics['names']} metric names (dimension `service`), {metrics['byReason']} more by "
        f"`Reason` (at most: 5 names × every reason, most never occur) and {metrics['byControl']} per control. Most are published",
        "only in the hours something happens (a group subscribed, a conflict). A finished reconcile publishes its coverage figures",
        f"once a day: about {COVERAGE_HOURS_PER_MONTH} hours a month, so each costs about "
        f"{_usd(PRICES['custom_metric'].usd * COVERAGE_HOURS_PER_MONTH / HOURS_PER_MONTH)} a month, not {_usd(PRICES['custom_metric'].usd)}.",
        "ship-logs publishes none unless `shipLogs.metrics` asks; each family's count and cost: [ship-logs.md](ship-logs.md)",
        "(\"Metrics, only when asked\").",
        "",
        "## Prices",
        "",
        "| price | unit | source |",
        "| --- | --- | --- |",
        *(f"| {_exact(p.usd)} | {p.unit} | {p.source} |" for p in PRICES.values()),
        "",
    ]
    return "\n".join(out)


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    templates = synthesize_all(repo)
    unknown = {title: unknown_types(t) for title, t in templates.items() if unknown_types(t)}
    if unknown:
        sys.exit(f"stacks/cost.py prices no resource of type {unknown}: add each to FIXED, USAGE or FREE")
    (repo / "docs" / "cost.md").write_text(render(templates))
    print("wrote docs/cost.md")


if __name__ == "__main__":
    main()

"""A million log groups at the published quotas, in simulated time: how many Lambda continuations,
how long, how many Step Functions transitions?

The real backfill handler (handle_backfill: its margins, the pacer at the published quotas, the
checkpoint after every page) runs against an in-memory CloudWatch Logs account whose every call
costs LATENCY_S of simulated time; the state machine's loop is played by localaws.stepfunctions.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from typing import Any

from .common import bench_policy

from governor.aws import LogsGateway, Pacer  # noqa: E402
from governor.handlers.backfill import BackfillParts, handle_backfill  # noqa: E402
from governor.service import Governor  # noqa: E402
from localaws.lambda_runtime import LocalLambdaContext, SimulatedClock, handler_output_to  # noqa: E402
from localaws.stepfunctions import run_execution  # noqa: E402

GROUPS = 1_000_000
#: A typical CloudWatch Logs control-plane round trip from Lambda in the same region.
LATENCY_S = 0.03
LAMBDA_TIMEOUT_MS = 900_000
SHIPPER = "arn:aws:lambda:eu-west-1:123456789012:function:log-shipper"
ACCOUNT_PREFIX = "arn:aws:logs:eu-west-1:123456789012:log-group:"
#: The mix of quota_efficiency: a third compliant, 1/12 each excluded, Infrequent Access, full.
KINDS = ("compliant",) * 4 + ("excluded", "infrequent-access", "full") + ("plain",) * 5


def _name(i: int) -> str:
    kind = KINDS[i % 12]
    prefix = "/aws/lambda/sandbox-" if kind == "excluded" else "/g/"
    return f"{prefix}{i:07d}"


class InMemoryLogs:
    """The five CloudWatch Logs calls the backfill makes, over generated groups, in name order."""

    def __init__(self, groups: int, clock: SimulatedClock) -> None:
        self.names = sorted(_name(i) for i in range(groups))
        self.kind = {_name(i): KINDS[i % 12] for i in range(groups)}
        self.clock = clock
        self.filters: dict[str, list[dict[str, str]]] = {}
        self.retention: dict[str, int] = {}
        self.calls: Counter[str] = Counter()

    def _cost(self, operation: str) -> None:
        self.calls[operation] += 1
        self.clock.sleep(LATENCY_S)

    def describe_log_groups(self, limit: int = 50, nextToken: str | None = None, **_: Any) -> dict[str, Any]:
        self._cost("DescribeLogGroups")
        start = int(nextToken or 0)
        page = self.names[start:start + limit]
        groups = [{
            "logGroupName": name,
            "arn": f"{ACCOUNT_PREFIX}{name}:*",
            "logGroupClass": "INFREQUENT_ACCESS" if self.kind[name] == "infrequent-access" else "STANDARD",
            "creationTime": 1_700_000_000_000,  # long before the run: old enough to be judged orphans
            **({"retentionInDays": self.retention.get(name, 30)} if self.kind[name] == "compliant" or name in self.retention else {}),
        } for name in page]
        answer: dict[str, Any] = {"logGroups": groups}
        if start + limit < len(self.names):
            answer["nextToken"] = str(start + limit)
        return answer

    def describe_subscription_filters(self, logGroupName: str, **_: Any) -> dict[str, Any]:
        self._cost("DescribeSubscriptionFilters")
        kind = self.kind[logGroupName]
        if kind == "compliant":
            return {"subscriptionFilters": [{"filterName": "log-group-governor", "destinationArn": SHIPPER, "filterPattern": ""}]}
        if kind == "full":
            return {"subscriptionFilters": [{"filterName": f"vendor-{n}", "destinationArn": "arn:aws:lambda:eu-west-1:123456789012:function:v", "filterPattern": ""} for n in "ab"]}
        return {"subscriptionFilters": self.filters.get(logGroupName, [])}

    def list_tags_for_resource(self, resourceArn: str) -> dict[str, Any]:
        self._cost("ListTagsForResource")
        return {"tags": {}}

    def put_subscription_filter(self, logGroupName: str, **request: Any) -> None:
        self._cost("PutSubscriptionFilter")
        self.filters[logGroupName] = [{"filterName": request["filterName"], "destinationArn": request["destinationArn"], "filterPattern": ""}]

    def put_retention_policy(self, logGroupName: str, retentionInDays: int) -> None:
        self._cost("PutRetentionPolicy")
        self.retention[logGroupName] = retentionInDays


class InMemoryLambdas:
    """The account's functions: one for each /aws/lambda/<name> group but one in ten (orphans)."""

    PAGE = 50

    def __init__(self, logs: InMemoryLogs, clock: SimulatedClock) -> None:
        lambda_groups = [n for n in logs.names if n.startswith("/aws/lambda/")]
        self.names = {n.removeprefix("/aws/lambda/") for i, n in enumerate(lambda_groups) if i % 10}
        self.clock = clock
        self.calls = 0

    def function_names(self) -> set[str]:
        pages = max(1, -(-len(self.names) // self.PAGE))
        self.calls += pages
        self.clock.sleep(LATENCY_S * pages)
        return set(self.names)


class InMemoryTagging:
    """The Resource Groups Tagging API over the simulated groups: none carries the exclusion tag, so each
    slice's look-up is one call."""

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self.calls = 0

    def log_groups_tagged(self, keys: Any) -> dict[str, dict[str, str]]:
        self.calls += 1
        self.clock.sleep(LATENCY_S)
        return {}


class InMemoryStore:
    bucket = "simulated"

    def __init__(self) -> None:
        self.checkpoints: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, Any] = {}
        self.pages = 0

    def load_json(self, key: str) -> Any:
        return self.objects.get(key)

    def save_json(self, key: str, value: Any) -> str:
        self.objects[key] = value
        return f"memory:{key}"

    def load(self, run_id: str) -> dict[str, Any] | None:
        return self.checkpoints.get(run_id)

    def save(self, run_id: str, checkpoint: dict[str, Any]) -> None:
        self.checkpoints[run_id] = checkpoint

    def write_page(self, run_id: str, page_number: int, outcomes: list[Any], position: int) -> int:
        self.pages += 1
        return position + 1

    def write_summary(self, run_id: str, summary: dict[str, Any]) -> str:
        return "memory"


def main(groups: int = GROUPS) -> dict[str, Any]:
    """Two runs side by side: tags read one group at a time (as the event handlers do), and in bulk."""
    one_by_one = run(groups, bulk_tags=False)
    print()
    bulk = run(groups, bulk_tags=True)
    return {"one_by_one": one_by_one, "bulk": bulk}


def run(groups: int, *, bulk_tags: bool) -> dict[str, Any]:
    clock = SimulatedClock()
    logs_client = InMemoryLogs(groups, clock)
    policy = bench_policy(SHIPPER)
    rates = policy.config.backfill_rates_tps()  # the default share of each quota, as the function paces
    logs = LogsGateway(logs_client, pacer=Pacer(rates, clock=clock.monotonic, sleep=clock.sleep))
    lambdas = InMemoryLambdas(logs_client, clock)
    tagging = InMemoryTagging(clock) if bulk_tags else None
    parts = BackfillParts(Governor(policy, logs), InMemoryStore(), clock.monotonic, lambdas=lambdas, tagging=tagging)  # type: ignore[arg-type]
    how = ("tags in bulk (one GetResources look-up a slice; ListTagsForResource only for groups about to be written)" if bulk_tags
           else "tags one group at a time (ListTagsForResource)")
    print(f"A simulated account of {groups:,} log groups paced at {policy.config.backfill_quota_share:.0%} of the published quotas, "
          f"{LATENCY_S * 1000:.0f} ms per call, "
          f"{LAMBDA_TIMEOUT_MS // 60_000}-minute invocations; {how}")
    started = time.monotonic()
    with open(os.devnull, "w") as quiet, handler_output_to(quiet):  # the handler's "page done" lines
        execution = run_execution(
            "million", {},
            lambda payload: handle_backfill(payload, LocalLambdaContext("backfill", timeout_ms=LAMBDA_TIMEOUT_MS, clock=clock.monotonic), parts),
        )
    real_s = time.monotonic() - started
    summary = execution.output["summary"]
    hours = clock.now / 3600
    bottleneck_s = max(n / rates[op] for op, n in logs_client.calls.items())
    print(f"  Lambda invocations: {execution.invocations} (so {execution.invocations - 1} continuations); "
          f"Step Functions state transitions: about {2 * execution.invocations + 1}")
    print(f"  simulated duration: {hours:.1f} h ({clock.now / 86400:.2f} days); the busiest API needs {bottleneck_s / 3600:.1f} h "
          f"at the share (efficiency {bottleneck_s / clock.now:.3f})")
    print(f"  API calls: {dict(sorted(logs_client.calls.items()))}; ListFunctions: {lambdas.calls} (one listing of "
          f"{len(lambdas.names):,} functions for the run)" + (f"; GetResources: {tagging.calls}" if tagging else ""))
    print(f"  calls per group: {', '.join(f'{op} {n / groups:.3f}' for op, n in sorted(logs_client.calls.items()))}")
    coverage = summary["coverage"]
    print(f"  coverage: governed {coverage['governed']:,}, compliant {coverage['compliant']:,} ({coverage['compliantPercent']}%), "
          f"orphans {coverage['orphans']:,}, excluded {sum(coverage['excluded'].values()):,}")
    print(f"  outcomes: {summary['byAction']}")
    print(f"  log groups seen: {summary['logGroups']:,}; real time to simulate: {real_s:.0f} s")
    return {"invocations": execution.invocations, "simulated_s": clock.now, "summary": summary, "calls": dict(logs_client.calls)}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else GROUPS)

"""A million log groups at the published quotas, in simulated time: how many Lambda continuations,
how long, how many Step Functions transitions, and how the modes compare side by side: per-group
(tags one group at a time, then in bulk) and the native account-level policies (issue #9).

The real backfill handler (handle_backfill: its margins, the pacer at the published quotas, the
checkpoint after every page) runs against an in-memory CloudWatch Logs account whose every call
costs LATENCY_S of simulated time; the state machine's loop is played by localaws.stepfunctions.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from typing import Any

from .common import bench_policy
from .cost_rows import billed_ms, cost_row, function_memory_mib, usd

from governor.account_policy import SELECTION_LIMIT_BYTES, SelectionTooLarge, selection  # noqa: E402
from governor.aws import LogsGateway, Pacer  # noqa: E402
from governor.native_retention import compile_retention  # noqa: E402
from governor.subscription_policy import SubscriptionPolicyKeeper  # noqa: E402
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


#: The native subscription mode lists every excluded group by name in 25 KB: its runs exclude one
#: group in this many (the same mix otherwise); the per-group mix's exclusions are measured against the limit.
SPARSE_EXCLUSIONS = 5_000


def _kind(i: int, sparse: bool) -> str:
    kind = KINDS[i % 12]
    return "plain" if sparse and kind == "excluded" and i % SPARSE_EXCLUSIONS != 4 else kind


def _name(i: int, sparse: bool = False) -> str:
    prefix = "/aws/lambda/sandbox-" if _kind(i, sparse) == "excluded" else "/g/"
    return f"{prefix}{i:07d}"


class InMemoryLogs:
    """The five CloudWatch Logs calls the backfill makes, over generated groups, in name order."""

    def __init__(self, groups: int, clock: SimulatedClock, *, sparse_exclusions: bool = False) -> None:
        self.kind = {_name(i, sparse_exclusions): _kind(i, sparse_exclusions) for i in range(groups)}
        self.names = sorted(self.kind)
        self.clock = clock
        self.filters: dict[str, list[dict[str, str]]] = {}
        self.retention: dict[str, int] = {}
        #: Deletion protection and KMS keys (#21), set by a rules run.
        self.protected: set[str] = set()
        self.keys: dict[str, str] = {}
        self.masking: dict[str, str] = {}
        self.account_policies: dict[str, dict[str, Any]] = {}
        #: When the account subscription policy was first written (simulated seconds into the run).
        self.policy_written_at_s: float | None = None
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
            "deletionProtectionEnabled": name in self.protected,
            **({"kmsKeyId": self.keys[name]} if name in self.keys else {}),
            **({"dataProtectionStatus": "ACTIVATED"} if name in self.masking else {}),
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

    def put_log_group_deletion_protection(self, logGroupIdentifier: str, deletionProtectionEnabled: bool) -> None:
        self._cost("PutLogGroupDeletionProtection")
        self.protected.add(logGroupIdentifier)

    def associate_kms_key(self, logGroupName: str, kmsKeyId: str) -> None:
        self._cost("AssociateKmsKey")
        self.keys[logGroupName] = kmsKeyId

    def get_data_protection_policy(self, logGroupIdentifier: str) -> dict[str, Any]:
        self._cost("GetDataProtectionPolicy")
        return {"policyDocument": self.masking[logGroupIdentifier]} if logGroupIdentifier in self.masking else {}

    def put_data_protection_policy(self, logGroupIdentifier: str, policyDocument: str) -> None:
        self._cost("PutDataProtectionPolicy")
        self.masking[logGroupIdentifier] = policyDocument

    def describe_account_policies(self, policyType: str, **_: Any) -> dict[str, Any]:
        self._cost("DescribeAccountPolicies")
        return {"accountPolicies": [p for p in self.account_policies.values() if p["policyType"] == policyType]}

    def put_account_policy(self, **request: Any) -> dict[str, Any]:
        self._cost("PutAccountPolicy")
        assert len(request.get("selectionCriteria", "").encode()) <= SELECTION_LIMIT_BYTES, "AWS refuses more than 25 KB"
        self.account_policies[request["policyName"]] = request
        self.policy_written_at_s = self.policy_written_at_s if self.policy_written_at_s is not None else self.clock.now
        return {"accountPolicy": request}


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


class InMemoryKms:
    """KMS for the rules run: the key's policy (the CloudWatch Logs guide's statement), read before each association."""

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self.calls = 0

    def key_policy(self, key_arn: str) -> str:
        self.calls += 1
        self.clock.sleep(LATENCY_S)
        return json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
                                          "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                                          "Resource": "*"}]})


#: The rules run (#21): every group but the excluded gets the controls rules govern today; a third of them (the
#: "production" ones, by name) a year, deletion protection and a KMS key as well.
RULES_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
RULES = [{"name": "production", "match": {"namePatterns": ["[036]$"]}, "retention": {"days": 365}, "deletionProtection": True,
          "kmsKeyArn": RULES_KEY, "dataProtection": {"identifiers": ["EmailAddress", "CreditCardNumber"]}}]


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


#: A native retention policy is in effect this long after it is written (botocore 1.44.8's model).
RETENTION_POLICY_DELAY_S = 24 * 3600


def main(groups: int = GROUPS) -> dict[str, Any]:
    """The modes side by side, each over the same simulated account."""
    runs = {
        "per-group, tags one by one": run(groups, bulk_tags=False),
        "per-group, tags in bulk": run(groups, bulk_tags=True),
        "subscription account-policy": run(groups, bulk_tags=True, subscription="account-policy"),
        "retention account-policy": run(groups, bulk_tags=True, retention="account-policy"),
        "both account-policy": run(groups, bulk_tags=True, subscription="account-policy", retention="account-policy"),
        # #21: no native account-level form exists for deletion protection or a group's KMS key; the pinned model has one
        # for data protection (DATA_PROTECTION_POLICY), which the governor does not compile yet: these are per group.
        "per-group, rules with all controls": run(groups, bulk_tags=True, rules=True),
    }
    print(f"\nSide by side, {groups:,} log groups (simulated time at {bench_policy(SHIPPER).config.backfill_quota_share:.0%} of the published quotas):")
    print(f"  {'mode':<30} {'API time':>9} {'invocations':>11} {'Lambda/M':>9}  {'in effect':<44} calls per group")
    for name, result in runs.items():
        per_group = ", ".join(f"{op} {n / groups:.3f}" for op, n in sorted(result["calls"].items()) if n / groups >= 0.0005)
        print(f"  {name:<30} {_duration(result['simulated_s']):>9} {result['invocations']:>11} {usd(result['cost']['usd']):>9}  "
              f"{result['in_effect']:<44} {per_group}")
    print("  (Lambda/M: the backfill function's cost per million groups, from the simulated invocations and durations)")
    same_mix = _same_mix_list(groups)
    print(f"  subscription account-policy over the per-group mix: {same_mix}")
    return runs


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def _same_mix_list(groups: int) -> str:
    """The per-group runs' mix excludes 1 group in 12 by prefix: what would its NOT IN list take?"""
    excluded = [_name(i) for i in range(groups) if _kind(i, False) == "excluded"]
    try:
        chosen = selection(bench_policy(SHIPPER), excluded)
    except SelectionTooLarge as error:
        return f"{len(excluded):,} excluded names -> {error.selection.size_bytes:,} bytes > 25 KB: refused, nothing written"
    return f"{len(chosen.names):,} names, {chosen.size_bytes:,} bytes: fits"


def run(groups: int, *, bulk_tags: bool, subscription: str = "per-group", retention: str = "per-group", rules: bool = False) -> dict[str, Any]:
    clock = SimulatedClock()
    native_subscription = subscription == "account-policy"
    logs_client = InMemoryLogs(groups, clock, sparse_exclusions=native_subscription)
    policy = bench_policy(SHIPPER, subscriptionMode=subscription, retentionVia=retention, **({"rules": RULES} if rules else {}))
    rates = policy.config.backfill_rates_tps()  # the default share of each quota, as the function paces
    logs = LogsGateway(logs_client, pacer=Pacer(rates, clock=clock.monotonic, sleep=clock.sleep))
    lambdas = InMemoryLambdas(logs_client, clock)
    tagging = InMemoryTagging(clock) if bulk_tags else None
    keeper = SubscriptionPolicyKeeper(lambda: policy, logs) if native_subscription else None
    keys = InMemoryKms(clock)
    parts = BackfillParts(Governor(policy, logs, keys=keys), InMemoryStore(), clock.monotonic, lambdas=lambdas,  # type: ignore[arg-type]
                          tagging=tagging, keeper=keeper)
    how = ("tags in bulk (one GetResources look-up a slice; ListTagsForResource only for groups about to be written)" if bulk_tags
           else "tags one group at a time (ListTagsForResource)")
    print(f"\n{groups:,} log groups, subscriptionMode {subscription}, retentionVia {retention}"
          + (f", governor:rules {json.dumps(RULES)} (the key's policy read before each association)" if rules else "")
          + (f" (1 group in {SPARSE_EXCLUSIONS:,} excluded, so the NOT IN list fits)" if native_subscription else "") + ":")
    print(f"  paced at {policy.config.backfill_quota_share:.0%} of the published quotas, {LATENCY_S * 1000:.0f} ms per call, "
          f"{LAMBDA_TIMEOUT_MS // 60_000}-minute invocations; {how}")
    native_retention_calls = 0
    if retention == "account-policy":
        # `python -m cli apply` writes the native policies first: a dry run and a write each.
        native_retention_calls = 2 * len(compile_retention(bench_policy(SHIPPER, retentionMode="exact", excludeTags={}, excludePrefixes=[]).config).policies)
    started = time.monotonic()
    billed = {"ms": 0}

    def invoke(payload: dict[str, Any]) -> dict[str, Any]:
        """One backfill invocation, its billed duration counted: the simulated time it spends (calls, the pacer's waits)."""
        began = clock.now
        try:
            return handle_backfill(payload, LocalLambdaContext("backfill", timeout_ms=LAMBDA_TIMEOUT_MS, clock=clock.monotonic), parts)
        finally:
            billed["ms"] += billed_ms(clock.now - began)

    with open(os.devnull, "w") as quiet, handler_output_to(quiet):  # the handler's "page done" lines
        execution = run_execution("million", {}, invoke)
    real_s = time.monotonic() - started
    summary = execution.output["summary"]
    hours = clock.now / 3600
    bottleneck_s = max(n / rates[op] for op, n in logs_client.calls.items() if op in rates)
    print(f"  Lambda invocations: {execution.invocations} (so {execution.invocations - 1} continuations); "
          f"Step Functions state transitions: about {2 * execution.invocations + 1}")
    print(f"  simulated duration: {hours:.1f} h ({clock.now / 86400:.2f} days); the busiest API needs {bottleneck_s / 3600:.1f} h "
          f"at the share (efficiency {bottleneck_s / clock.now:.3f})")
    print(f"  API calls: {dict(sorted(logs_client.calls.items()))}; ListFunctions: {lambdas.calls} (one listing of "
          f"{len(lambdas.names):,} functions for the run)" + (f"; GetResources: {tagging.calls}" if tagging else "")
          + (f"; PutAccountPolicy by cli apply (dry run and write): {native_retention_calls}" if native_retention_calls else "")
          + (f"; kms:GetKeyPolicy: {keys.calls}" if keys.calls else ""))
    print(f"  calls per group: {', '.join(f'{op} {n / groups:.3f}' for op, n in sorted(logs_client.calls.items()))}")
    coverage = summary["coverage"]
    print(f"  coverage: governed {coverage['governed']:,}, compliant {coverage['compliant']:,} ({coverage['compliantPercent']}%), "
          f"orphans {coverage['orphans']:,}, excluded {sum(coverage['excluded'].values()):,}")
    print(f"  outcomes: {summary['byAction']}")
    if native_subscription:
        written = summary["accountSubscriptionPolicy"]
        print(f"  account subscription policy: {written['detail']}, {written['names']:,} names, {written['selectionBytes']:,} of "
              f"{written['limitBytes']:,} bytes, first written {_duration(logs_client.policy_written_at_s or 0)} into the run "
              f"(after a first pass that decides only the subscription)")
    cost = cost_row("governor Lambda (the backfill)", per=1_000_000, unit="groups backfilled", counted=groups,
                    invocations=execution.invocations, billed_ms_total=billed["ms"], memory_mib=function_memory_mib()["backfill"],
                    how="invocations and durations simulated, memory as the stack sets it; Step Functions' transitions apart")
    print(f"  {cost.line()}")
    print(f"  log groups seen: {summary['logGroups']:,}; real time to simulate: {real_s:.0f} s")
    effects = []
    if native_subscription:
        effects.append(f"subscription after the first pass ({_duration(logs_client.policy_written_at_s or 0)})")
    if retention == "account-policy":
        effects.append(f"retention {RETENTION_POLICY_DELAY_S // 3600} h after apply")
    in_effect = "; ".join(effects) or f"each group as the run passes it ({_duration(clock.now)})"
    return {"invocations": execution.invocations, "simulated_s": clock.now, "summary": summary, "calls": dict(logs_client.calls),
            "in_effect": in_effect, "billed_ms": billed["ms"], "cost": cost.as_dict()}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else GROUPS)

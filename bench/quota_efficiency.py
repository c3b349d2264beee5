"""Backfill against a throttle-faithful moto server: how close to the API quotas does it run?

The server answers ThrottlingException (HTTP 400, through botocore's normal retry path) to any
CloudWatch Logs operation beyond its published TPS times SCALE. The backfill paces itself to the
same scaled quotas times its share (``backfillQuotaShare``, default 0.5), giving way when throttled.
Quota efficiency = (time the successful calls need at the share of the quota the backfill aims at,
taking the busiest operation) / (time taken). The other scenario adds a tool that wants more of a
quota than the backfill leaves, and prints what that tool got.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass

import boto3

from .common import CountingSink

from governor.aws import LambdaGateway, LogsGateway, Pacer, client_config  # noqa: E402
from governor.backfill import Backfill, Progress  # noqa: E402
from governor.config import DEFAULT_API_QUOTAS_TPS, parse_policy_config  # noqa: E402
from governor.runtime import GuardedPolicies, Settings  # noqa: E402
from governor.service import Governor  # noqa: E402
from localaws.mix import EXCLUDED_PREFIX, create_mix  # noqa: E402
from localaws.server import RunningServer, aws_like_server, scaled_quotas  # noqa: E402

SCALE = 10.0
GROUPS = 600


@dataclass
class Figures:
    scenario: str
    groups: int
    elapsed_s: float
    served: Counter[str]
    throttled: Counter[str]
    ours: Counter[str]
    errors: int
    page_retries: int
    decisions_ok: bool
    share: float
    neighbour: dict[str, float]

    @property
    def bottleneck(self) -> tuple[str, float]:
        """The operation whose successful calls need the most time at its quota, and that time."""
        quotas = scaled_quotas(SCALE)
        return max(((op, self.ours[op] / (quotas[op] * self.share)) for op in self.ours if op in quotas), key=lambda item: item[1])

    @property
    def efficiency(self) -> float:
        return self.bottleneck[1] / self.elapsed_s


def _run(server: RunningServer, shipper: str, scenario: str, *, neighbour_share: float = 0.0) -> Figures:
    session = boto3.Session(region_name=server.region)
    clients = {n: session.client(n, endpoint_url=server.endpoint_url, config=client_config()) for n in ("logs", "lambda")}
    config = parse_policy_config({"destinationArn": shipper, "excludePrefixes": [EXCLUDED_PREFIX],
                                  "excludeTags": {"log-group-governor:opt-out": "true"}})
    logs = LogsGateway(clients["logs"], pacer=Pacer({op: tps * SCALE for op, tps in config.backfill_rates_tps().items()}))
    governor = Governor(GuardedPolicies(Settings(config=config), LambdaGateway(clients["lambda"])), logs)
    sink = CountingSink()
    progress = Progress(run_id=scenario, dry_run=False)
    stop = threading.Event()
    neighbour_counts: Counter[str] = Counter()
    neighbour = threading.Thread(target=_neighbour, args=(server, neighbour_share, stop, neighbour_counts), daemon=True) if neighbour_share else None

    server.middleware.served.clear()
    server.middleware.throttled.clear()
    if neighbour:
        neighbour.start()
    started = time.monotonic()
    retries: list[str] = []
    Backfill(governor, sink, save=lambda p: None).run_to_end(progress, on_retry=lambda error, pause: retries.append(str(error)))
    elapsed = time.monotonic() - started
    stop.set()
    if neighbour:
        neighbour.join()
    return Figures(
        scenario=scenario,
        groups=progress.groups,
        elapsed_s=elapsed,
        served=Counter(server.middleware.served),
        throttled=Counter(server.middleware.throttled),
        ours=Counter(progress.api_calls),
        errors=progress.error_count,
        page_retries=len(retries),
        decisions_ok=set(sink.decisions.values()) == {1} and len(sink.decisions) == 2 * progress.groups,
        share=config.backfill_quota_share,
        neighbour={"wanted_tps": neighbour_share * DEFAULT_API_QUOTAS_TPS["DescribeSubscriptionFilters"],
                   "got_tps": neighbour_counts["ok"] / elapsed / SCALE,
                   "refused": neighbour_counts["throttled"]} if neighbour_share else {},
    )


def _neighbour(server: RunningServer, share: float, stop: threading.Event, counts: Counter[str]) -> None:
    """Another tool calling DescribeSubscriptionFilters at ``share`` of the quota, without pacing to it."""
    client = boto3.client("logs", region_name=server.region, endpoint_url=server.endpoint_url, config=client_config(max_attempts=1))
    interval = 1.0 / (DEFAULT_API_QUOTAS_TPS["DescribeSubscriptionFilters"] * SCALE * share)
    next_at = time.monotonic()
    while not stop.is_set():
        try:
            client.describe_subscription_filters(logGroupName="/aws/lambda/log-shipper")
            counts["ok"] += 1
        except client.exceptions.ClientError:
            counts["throttled"] += 1
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


def _setup(server: RunningServer) -> str:
    server.reset()
    server.middleware.quotas_enabled = False
    account = server.account()
    shipper = account.create_function("log-shipper")
    create_mix(account, shipper, GROUPS)
    server.middleware.quotas_enabled = True
    return shipper


def _print(figures: Figures) -> None:
    op, needed = figures.bottleneck
    print(f"  scenario: {figures.scenario}")
    print(f"    log groups: {figures.groups}, decisions each exactly once per aspect: {figures.decisions_ok}, failures: {figures.errors}")
    print(f"    elapsed {figures.elapsed_s:.2f} s; the busiest operation ({op}) needs {needed:.2f} s at "
          f"{figures.share:.0%} of {SCALE:g}x its quota")
    print(f"    quota efficiency (against the share it aims at): {figures.efficiency:.3f}")
    if figures.neighbour:
        n = figures.neighbour
        print(f"    the other tool wanted {n['wanted_tps']:.1f}/s of DescribeSubscriptionFilters (unscaled) and got "
              f"{n['got_tps']:.2f}/s; refused {n['refused']} times")
    per_group = {k: round(v / figures.groups, 3) for k, v in sorted(figures.ours.items())}
    print(f"    API calls per group, by operation: {per_group}")
    print(f"    calls made by the backfill: {dict(sorted(figures.ours.items()))}")
    print(f"    ThrottlingException answered (all callers): {dict(sorted(figures.throttled.items())) or 0}; "
          f"pages done again after botocore gave up: {figures.page_retries}")


def main() -> list[Figures]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    print(f"Quota efficiency: {GROUPS} log groups (a third compliant, 1/12 excluded, 1/12 Infrequent Access, "
          f"1/12 with both filter slots taken), moto over HTTP with quotas at {SCALE:g}x")
    results = []
    with aws_like_server(quota_scale=SCALE) as server:
        shipper = _setup(server)
        results.append(_run(server, shipper, "backfill alone"))
        _print(results[-1])
        shipper = _setup(server)
        results.append(_run(server, shipper, "with another tool wanting 60% of DescribeSubscriptionFilters", neighbour_share=0.6))
        _print(results[-1])
    return results

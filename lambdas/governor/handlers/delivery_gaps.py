"""delivery-gaps (#31 item 2): the schedule's event runs the watch, the gap queue's batches are replayed
(governor.delivery_gaps says how, and why so)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import metric_names
from ..aws import DeliveryMetrics, EventQueueSender, FleetBus, LogsGateway, Pacer, ReplayWriter, RetryLater, StateTable
from ..config import ENV_FLEET_BUS, METRICS_NAMESPACE, SERVICE_NAME, ConfigError
from ..delivery_gaps import (ENV_GAP_QUEUE_URL, GAP_CONCURRENCY, GAP_OPERATIONS, GAP_QUOTA_SHARE, FirstLines, GapReplay, GapWatch,
                             queued_item)
from ..policy import Policy
from ..replay import REPLAY_CALL_ATTEMPTS, REPLAY_SLICE_S, Replayer
from ..runtime import Settings

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
#: The wall clock (epoch seconds) the watch reads the metrics by and leases are judged by; the pacer's (tests put simulated ones here).
wall_clock = time.time
clock = time.monotonic
sleep = time.sleep
#: Take no new gap of a batch with less time left than this: a replay's slice, its last delivery and its record.
RECORD_MARGIN_S = REPLAY_SLICE_S + 30.0


def pacer(quotas_tps: Mapping[str, float]) -> Pacer:
    """A replaying container's pacer: GAP_QUOTA_SHARE of each quota, split among GAP_CONCURRENCY containers (a function of its
    own so that the bench paces its simulated containers with this one, on its simulated clock)."""
    rates = {op: quotas_tps[op] * GAP_QUOTA_SHARE / GAP_CONCURRENCY for op in GAP_OPERATIONS}
    return Pacer(rates, clock=lambda: clock(), sleep=lambda s: sleep(s))


@dataclass(frozen=True)
class GapParts:
    watch: GapWatch
    replay: GapReplay
    queue: EventQueueSender


@cache
def parts() -> GapParts:
    settings = Settings.from_environ(os.environ)
    queue_url = os.environ.get(ENV_GAP_QUEUE_URL)
    if not queue_url:
        raise ConfigError(f"{ENV_GAP_QUEUE_URL} is not set: set it to the delivery-gap queue's URL (the stack does this)")
    table = StateTable(settings.require_state_table(), max_attempts=REPLAY_CALL_ATTEMPTS)
    policy = Policy(settings.config, protected_log_groups=settings.protected_log_groups)
    logs = LogsGateway(pacer=pacer(settings.config.api_quotas_tps))
    replayer = Replayer(lambda: policy, logs, ReplayWriter(max_attempts=REPLAY_CALL_ATTEMPTS), table, clock=lambda: wall_clock())
    queue = EventQueueSender(queue_url)
    pull = FleetBus(os.environ[ENV_FLEET_BUS]) if os.environ.get(ENV_FLEET_BUS) else None
    watch = GapWatch(DeliveryMetrics(), table, queue.send, filter_name=settings.config.filter_name, clock=lambda: wall_clock())
    return GapParts(watch, GapReplay(replayer, logs.describe_log_groups, pull=pull, clock=lambda: wall_clock()), queue)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, Mapping) and isinstance(event.get("Records"), list):
        return consume(event, context, parts())
    return watch(parts())


def watch(found: GapParts) -> dict[str, Any]:
    result = found.watch.run()
    for window in result.queued:
        logger.warning("a delivery gap: the governor's filter skipped this window; queued for replay", extra={"gap": window.as_dict()})
    if result.queued:
        metrics.add_metric(name=metric_names.DELIVERY_GAPS, unit=MetricUnit.Count, value=len(result.queued))
    logger.info("delivery gaps watched", extra={"watch": result.as_dict()})
    return {"status": "done", **result.as_dict()}


def consume(event: dict[str, Any], context: Any, found: GapParts) -> dict[str, Any]:
    """A batch of the replay queue: new groups' first lines and delivery gaps, each replayed (or handed to the archive); one
    outlasting its slice is queued again; one that fails (the destination refusing) comes back after the queue's visibility
    timeout, for as long as CloudWatch Logs itself retries (the queue's receive count), then dead-letters and alarms."""
    arn = str(getattr(context, "invoked_function_arn", "") or "")
    owner = arn.split(":")[4] if arn.count(":") >= 4 else ""  # this account: the function's own

    def one(record: SQSRecord) -> dict[str, Any]:
        if context.get_remaining_time_in_millis() / 1000 < RECORD_MARGIN_S:
            raise RetryLater("too little of the invocation left: the request comes back")
        try:
            item = queued_item(record.body)
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            logger.warning("a queued replay request that is none: dropped", extra={"messageId": record.message_id, "error": str(error)})
            return {"status": "dropped"}
        now = wall_clock()
        holder = str(getattr(context, "aws_request_id", "") or record.message_id)
        lease_until = now + context.get_remaining_time_in_millis() / 1000
        if isinstance(item, FirstLines):
            return _first_lines(found, item, record.body, owner=owner, holder=holder, now=now, lease_until=lease_until)
        try:
            outcome = found.replay.replay(item, owner=owner, holder=holder, now_s=now, lease_until_s=lease_until)
        except Exception as error:
            logger.warning("a delivery gap's replay failed: it comes back after the queue's visibility timeout",
                           extra={"gap": item.as_dict(), "error": f"{type(error).__name__}: {error}"})
            raise
        report = outcome.as_dict()
        if outcome.result.replayed:
            metrics.add_metric(name=metric_names.GAP_REPLAYED_EVENTS, unit=MetricUnit.Count, value=outcome.result.replayed)
        if outcome.unreplayed_reason:
            # Counted and alarmed with the group and the window: what CloudWatch Logs skipped and the governor cannot send.
            logger.error("a delivery gap that cannot be replayed whole", extra={"gap": report})
            metrics.add_metric(name=metric_names.GAP_UNREPLAYED, unit=MetricUnit.Count, value=1)
        elif outcome.result.unfinished:
            found.queue.send(record.body)
            logger.info("a delivery gap's replay outlasted its slice: queued again", extra={"gap": report})
        else:
            logger.info("a delivery gap replayed" if not outcome.pulled else "a delivery gap handed to the organization's archive",
                        extra={"gap": report})
        return report

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=one, processor=processor, context=context)


def _first_lines(found: GapParts, item: FirstLines, body: str, *, owner: str, holder: str, now: float, lease_until: float) -> dict[str, Any]:
    """What a new group held before the governor's filter, to the destination (#20). A delivery that fails fails the
    message: it comes back and goes on past what was sent (the ledger)."""
    logger.append_keys(logGroupName=item.log_group)
    try:
        result, pulled = found.replay.first_lines(item, owner=owner, holder=holder, now_s=now, lease_until_s=lease_until)
    except Exception as error:
        logger.warning("a new group's replay failed: it comes back after the queue's visibility timeout",
                       extra={"error": f"{type(error).__name__}: {error}"})
        raise
    finally:
        logger.remove_keys(["logGroupName"])
    if pulled:
        logger.info("the archive was asked to pull what came before the filter", extra={"logGroupName": item.log_group,
                                                                                        "replay": {"pullRequested": True}})
        metrics.add_metric(name=metric_names.REPLAY_PULL_REQUESTED, unit=MetricUnit.Count, value=1)
    elif result.skipped is None or result.truncated:
        logger.info("replayed what came before the filter", extra={"logGroupName": item.log_group, "replay": result.as_dict()})
        metrics.add_metric(name=metric_names.REPLAYED_EVENTS, unit=MetricUnit.Count, value=result.replayed)
        if result.truncated:
            metrics.add_metric(name=metric_names.REPLAY_TRUNCATED, unit=MetricUnit.Count, value=result.truncated)
    else:
        logger.info("nothing to replay", extra={"logGroupName": item.log_group, "replay": result.as_dict()})
    if result.unfinished:
        found.queue.send(body)
        metrics.add_metric(name=metric_names.REPLAY_CONTINUED, unit=MetricUnit.Count, value=1)
    return {"logGroup": item.log_group, **result.as_dict()}

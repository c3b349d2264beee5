"""The two CreateLogGroup handlers: subscribe-log-group and set-retention, one aspect of the policy each.

EventBridge puts every CloudTrail record of a CreateLogGroup call into one encrypted queue per
handler; each handler drains its queue in batches, at most ``GOVERNOR_EVENT_CONCURRENCY`` containers
at once, each pacing its CloudWatch Logs calls to its part of the event handlers' quota share. A
burst of new groups waits in the queue instead of throttling the account. A message that fails is
reported in ``batchItemFailures`` and comes back after the queue's visibility timeout; one that fails
again and again ends in the dead-letter queue, whose alarm fires. Invoked with a bare EventBridge
event (by hand, or by an older rule), a handler governs that one group and raises on failure.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..aws import DestinationUnavailable, LogsGateway, Pacer, retry_budget_s
from ..config import METRICS_NAMESPACE, SERVICE_NAME
from ..events import IgnoredEvent, parse_create_log_group
from ..observability import DESTINATION_ERRORS_METRIC, ERRORS_METRIC, IGNORED_EVENTS_METRIC, record_outcome
from ..pacing import event_handler_rates_tps
from ..policy import Policy
from ..runtime import GuardedPolicies, Settings
from ..service import Aspect, Governor

#: Take no new message of a batch with less time left than the longest one API call can take
#: (every retry, every timeout), plus room to answer: the rest go back to the queue untouched.
RECORD_MARGIN_MS = int(retry_budget_s() * 1000) + 5_000
#: Keys a record adds to the log lines; removed before the next record of the batch.
_RECORD_KEYS = ["logGroupName", "eventId", "messageId", "decision", "reason"]

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
#: The clock the guard's look-up expires by and the pacer spaces calls by (tests put a simulated one here).
clock = time.monotonic
sleep = time.sleep


def _governor(aspect: Aspect, policy: Callable[[Settings], Policy | Callable[[], Policy]]) -> Governor:
    settings = Settings.from_environ(os.environ)
    rates = event_handler_rates_tps(settings.config.api_quotas_tps, settings.config.event_quota_share,
                                    aspect.value, settings.event_concurrency)
    pacer = Pacer(rates, clock=lambda: clock(), sleep=lambda s: sleep(s))
    return Governor(policy(settings), LogsGateway(pacer=pacer))


@cache
def subscription_governor() -> Governor:
    """Built on the first invocation and kept for the container's life: settings, client and pacer
    cannot change while it lives; the guard's look-up of the destination's LoggingConfig inside it
    expires within seconds (``GuardedPolicies``)."""
    return _governor(Aspect.SUBSCRIPTION, lambda settings: GuardedPolicies(settings, clock=lambda: clock()))


@cache
def retention_governor() -> Governor:
    """Retention needs no guard look-up: setting retention on the shipping path's groups is harmless."""
    return _governor(Aspect.RETENTION, lambda s: Policy(s.config, protected_log_groups=s.protected_log_groups))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def subscribe_log_group(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, subscription_governor, Aspect.SUBSCRIPTION)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def set_retention(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, retention_governor, Aspect.RETENTION)


def handle(event: Any, context: Any, governor: Callable[[], Governor], aspect: Aspect) -> dict[str, Any]:
    if isinstance(event, Mapping) and isinstance(event.get("Records"), list):
        return handle_queue_batch(event["Records"], context, governor, aspect)
    return handle_create_log_group(event, governor, aspect)


def handle_queue_batch(records: list[Any], context: Any, governor: Callable[[], Governor], aspect: Aspect) -> dict[str, Any]:
    """A batch from the handler's queue; answers the partial batch response the event source mapping reads."""
    failures: list[dict[str, str]] = []
    for index, record in enumerate(records):
        message_id = str(record.get("messageId", index)) if isinstance(record, Mapping) else str(index)
        if context.get_remaining_time_in_millis() < RECORD_MARGIN_MS:
            # Not started: back to the queue for the next invocation.
            failures.extend({"itemIdentifier": str(r.get("messageId", i))} for i, r in enumerate(records[index:], index)
                            if isinstance(r, Mapping))
            logger.info("time is short: the rest of the batch goes back to the queue", extra={"returned": len(records) - index})
            metrics.add_metric(name="ReturnedToQueue", unit=MetricUnit.Count, value=len(records) - index)
            break
        logger.remove_keys(_RECORD_KEYS)
        logger.append_keys(messageId=message_id)
        try:
            body = record["body"] if isinstance(record, Mapping) else None
            event = json.loads(body) if isinstance(body, str) else None
        except ValueError:
            event = None
        try:
            handle_create_log_group(event, governor, aspect)
        except Exception:
            failures.append({"itemIdentifier": message_id})  # logged and counted where it failed
    logger.remove_keys(_RECORD_KEYS)
    return {"batchItemFailures": failures}


def handle_create_log_group(event: Any, governor: Callable[[], Governor], aspect: Aspect) -> dict[str, Any]:
    """``governor`` is a factory, so a malformed event is finished without building anything."""
    try:
        call = parse_create_log_group(event)
    except IgnoredEvent as ignored:
        # Retrying cannot fix the event: log it, count it, finish.
        logger.warning("event ignored", extra={"reason": ignored.reason, "detail": ignored.detail})
        metrics.add_metric(name=IGNORED_EVENTS_METRIC, unit=MetricUnit.Count, value=1)
        return {"status": "ignored", "reason": ignored.reason, "detail": ignored.detail}

    logger.append_keys(logGroupName=call.log_group_name, eventId=call.event_id)
    try:
        outcome = governor().govern_by_name(call.log_group_name, aspect)
    except DestinationUnavailable as error:
        # Every new group would meet this: alarm now, and keep the event to govern once it is fixed.
        logger.exception(f"{aspect.value}: the destination refused the subscription; fix the destination (the event is retried)",
                         extra={"error": str(error)})
        metrics.add_metric(name=DESTINATION_ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        raise
    except Exception:
        # Throttling past botocore's retries, OperationAbortedException, AccessDenied: fail so the
        # event is retried and, after its retries, lands in the dead-letter queue.
        logger.exception(f"{aspect.value}: failed; the event is retried")
        metrics.add_metric(name=ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        raise
    record_outcome(outcome, logger, metrics)
    return {"status": "done", **outcome.as_dict()}

"""The two CreateLogGroup handlers: subscribe-log-group and set-retention, one aspect of the policy each.

EventBridge invokes both, asynchronously, for every CloudTrail record of a CreateLogGroup call.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..aws import LogsGateway
from ..events import IgnoredEvent, parse_create_log_group
from ..config import METRICS_NAMESPACE, SERVICE_NAME
from ..observability import ERRORS_METRIC, IGNORED_EVENTS_METRIC, record_outcome
from ..policy import Policy
from ..runtime import GuardedPolicies, Settings
from ..service import Aspect, Governor

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
#: The clock the guard's look-up expires by (tests put a simulated one here).
clock = time.monotonic


@cache
def subscription_governor() -> Governor:
    """Built on the first invocation and kept for the container's life; the guard's look-up of the
    destination's LoggingConfig inside it expires within seconds (``GuardedPolicies``)."""
    return Governor(GuardedPolicies(Settings.from_environ(os.environ), clock=lambda: clock()), LogsGateway())


@cache
def retention_governor() -> Governor:
    """Retention needs no guard look-up: setting retention on the shipping path's groups is harmless."""
    settings = Settings.from_environ(os.environ)
    return Governor(Policy(settings.config, protected_log_groups=settings.protected_log_groups), LogsGateway())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def subscribe_log_group(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_create_log_group(event, subscription_governor, Aspect.SUBSCRIPTION)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def set_retention(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_create_log_group(event, retention_governor, Aspect.RETENTION)


def handle_create_log_group(event: Any, governor: Any, aspect: Aspect) -> dict[str, Any]:
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
    except Exception:
        # Throttling past botocore's retries, OperationAbortedException, AccessDenied: fail so Lambda
        # retries the event and, after its retries, sends it to the dead-letter queue.
        logger.exception(f"{aspect.value}: failed; the invocation fails so Lambda retries it")
        metrics.add_metric(name=ERRORS_METRIC, unit=MetricUnit.Count, value=1)
        raise
    record_outcome(outcome, logger, metrics)
    return {"status": "done", **outcome.as_dict()}

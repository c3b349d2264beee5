"""Clean uninstall (opt-in, ``governor:removeFiltersOnDelete``): deleting the stack removes the
governor's own filters (by name) from every log group; other tools' filters are never touched.

A CloudFormation custom resource (CDK's Provider framework) calls ``on_event`` once, then
``is_complete`` about every minute until it answers complete. Each ``is_complete`` call runs one
time-boxed slice of an uninstall run: the backfill's paged, paced, checkpointed loop with the
removal aspect. A run too long for the framework's limit (an hour) fails the delete with the count so far;
deleting the stack again resumes it from its checkpoint (the run's id comes from the stack's).
With subscriptionMode account-policy, the governor's account subscription filter policy (by name) is
deleted first: nothing ships through it once the delete has started.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..config import SERVICE_NAME
from .backfill import backfill_parts, handle_backfill

#: The custom resource's one physical id: an update never replaces it (a replacement deletes the old one).
PHYSICAL_ID = "log-group-governor-filters"

logger = Logger(service=SERVICE_NAME)


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Nothing to do at once: creation and update are no-ops, and a delete's work is done by is_complete."""
    logger.info("uninstall custom resource", extra={"requestType": event.get("RequestType")})
    return {"PhysicalResourceId": PHYSICAL_ID}


@logger.inject_lambda_context(clear_state=True)
def is_complete(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_is_complete(event, context)


def handle_is_complete(event: dict[str, Any], context: Any, parts: Any = None) -> dict[str, Any]:
    if event.get("RequestType") != "Delete":
        return {"IsComplete": True}
    run_id = "uninstall-" + hashlib.sha256(str(event.get("StackId", "")).encode()).hexdigest()[:16]
    parts = parts or backfill_parts()
    if parts.keeper is not None:
        retired = parts.keeper.retire()  # idempotent: a later slice finds it gone
        logger.info("uninstall: the account subscription filter policy", extra={"detail": retired.detail})
    result = handle_backfill({"runId": run_id, "removeFilters": True}, context, parts)
    summary = result["summary"]
    removed = summary["byReason"].get("removal remove-filter", {}).get("uninstall", 0)
    logger.info("uninstall slice done", extra={"runId": run_id, "done": result["done"], "logGroups": summary["logGroups"], "removed": removed})
    return {"IsComplete": result["done"]}

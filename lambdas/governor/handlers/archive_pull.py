"""archive-replay (the central account's function, #31): the fleet bus's replay requests in, the FIFO queue's batches
pulled (governor.archive_pull says how, and why so)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.config import ConfigError

from .. import archive_pull as pulling
from ..archive_pull import (ENV_DESTINATION_ARN, ENV_QUEUE_URL, ENV_STREAM_ARN, ENV_TABLE, PULL_CONTINUED_METRIC, PULL_FAILED_METRIC,
                            PULL_LAG_METRIC, PULL_REFUSED_METRIC, PULL_REQUESTED_METRIC, PULL_TRUNCATED_METRIC, PULLED_METRIC,
                            RECORD_MARGIN_S, ROLE_NOT_ASSUMABLE, ArchivePuller, FifoQueue, MemberSessions, PullOutcome, PullRequest,
                            stream_destination)
from ..aws import ReplayWriter, StateTable
from ..config import METRICS_NAMESPACE, SERVICE_NAME
from ..replay import REPLAY_CALL_ATTEMPTS, REPLAY_SLICE_S

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


@cache
def puller() -> ArchivePuller:
    missing = [name for name in (ENV_QUEUE_URL, ENV_TABLE, ENV_STREAM_ARN, ENV_DESTINATION_ARN) if not os.environ.get(name)]
    if missing:
        raise ConfigError(f"{', '.join(missing)} not set: the archive stack sets them")
    stream_arn = os.environ[ENV_STREAM_ARN]
    partition, region = stream_arn.split(":")[1], stream_arn.split(":")[3]
    return ArchivePuller(region=region, destination_arn=os.environ[ENV_DESTINATION_ARN], stream=stream_destination(stream_arn),
                         member_logs=MemberSessions(region, partition), writer=ReplayWriter(max_attempts=REPLAY_CALL_ATTEMPTS),
                         ledger=StateTable(os.environ[ENV_TABLE], max_attempts=REPLAY_CALL_ATTEMPTS),
                         send=FifoQueue(os.environ[ENV_QUEUE_URL]), clock=lambda: pulling.wall_clock())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, Mapping) and isinstance(event.get("Records"), list):
        return consume(event["Records"], context, puller())
    answer = puller().intake(event)
    if answer["status"] == "ignored":
        logger.warning("replay request ignored", extra={"reason": answer["reason"], "account": answer.get("account")})
        metrics.add_metric(name=PULL_REFUSED_METRIC, unit=MetricUnit.Count, value=1)
    else:
        logger.info("replay request queued", extra={"account": answer["account"], "logGroup": answer["logGroup"]})
        metrics.add_metric(name=PULL_REQUESTED_METRIC, unit=MetricUnit.Count, value=1)
    return answer


def consume(records: list[Any], context: Any, puller: ArchivePuller) -> dict[str, Any]:
    """A FIFO batch: requests of one or several members (a receive fills a batch from several message groups), each
    member's in order. A request that fails fails the rest of its member's requests in the batch with it (they come back
    in order); other members' go on (review of #31: one member's failing pull dead-lettered the others'). One whose
    replay outlasts its slice is queued again, after the others of its member. Out of time, the rest come back untried."""
    failures: list[dict[str, str]] = []
    failed_members: set[str] = set()
    for index, record in enumerate(records):
        message_id = str(record.get("messageId", index)) if isinstance(record, Mapping) else str(index)
        remaining_s = context.get_remaining_time_in_millis() / 1000
        member = _member_of(record)
        if member in failed_members or remaining_s < RECORD_MARGIN_S:
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            request = PullRequest.from_body(record["body"])
        except (KeyError, TypeError, ValueError):
            logger.warning("a queued request that is none: dropped", extra={"messageId": message_id})
            continue
        now = puller.clock()
        try:
            outcome = puller.pull(request, holder=str(getattr(context, "aws_request_id", "") or message_id), now_s=now,
                                  lease_until_s=now + remaining_s,
                                  stop_by_s=now + min(REPLAY_SLICE_S, max(0.0, remaining_s - RECORD_MARGIN_S)))
        except Exception as error:  # noqa: BLE001  (a throttle past the retries, the stream refusing: it comes back)
            logger.exception("the pull failed; the request comes back from the queue",
                             extra={"account": request.account, "logGroup": request.log_group, "error": str(error)})
            metrics.add_metric(name=PULL_FAILED_METRIC, unit=MetricUnit.Count, value=1)
            failures.append({"itemIdentifier": message_id})
            failed_members.add(request.account)
            continue
        attempt = _receive_count(record)
        if outcome.reason == ROLE_NOT_ASSUMABLE and attempt < ROLE_ATTEMPTS:
            # A member's new role may not have reached every IAM endpoint yet (a StackSet deploying the member and its first
            # groups at once): asked again after the queue's visibility timeout, finished with a reason and alarmed at the last.
            logger.warning(f"the member's reader role cannot be assumed yet (attempt {attempt} of {ROLE_ATTEMPTS}): asked again later",
                           extra={"pull": outcome.as_dict()})
            failures.append({"itemIdentifier": message_id})
            failed_members.add(request.account)
            continue
        report(outcome)
        if outcome.result.unfinished:
            assert puller.send is not None
            puller.send(request.body(), request.account, request.deduplication_id(f"continued@{outcome.result.replayed + outcome.result.already_delivered}@{now}"))
            metrics.add_metric(name=PULL_CONTINUED_METRIC, unit=MetricUnit.Count, value=1)
    return {"batchItemFailures": failures}


#: Receives of a request whose member's reader role cannot be assumed before it is finished with a reason (each after the
#: queue's visibility timeout, twice the function's: about 20 minutes for IAM to propagate a new role; the queue's
#: dead-letter redrive comes later, after 5).
ROLE_ATTEMPTS = 3


def _receive_count(record: Any) -> int:
    """How often SQS has handed this record out (its ApproximateReceiveCount attribute; 1 when absent: a hand-made batch)."""
    try:
        return int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1)) if isinstance(record, Mapping) else 1
    except (TypeError, ValueError):
        return 1


def _member_of(record: Any) -> str | None:
    """The member a queued record is of: its FIFO message group (SQS' MessageGroupId attribute), else its body's account."""
    if not isinstance(record, Mapping):
        return None
    group = (record.get("attributes") or {}).get("MessageGroupId")
    if group:
        return str(group)
    try:
        return str(json.loads(record["body"])["account"])
    except (KeyError, TypeError, ValueError):
        return None


def report(outcome: PullOutcome) -> None:
    """One log line per request (account, group, window), and its metrics."""
    found = outcome.as_dict()
    if outcome.reason == ROLE_NOT_ASSUMABLE:
        logger.error("the member's reader role cannot be assumed: what its group held before the filter is not in the archive",
                     extra={"pull": found})
        metrics.add_metric(name=PULL_FAILED_METRIC, unit=MetricUnit.Count, value=1)
        return
    if outcome.reason is not None:
        logger.warning("a replay request that reads nothing", extra={"pull": found})
        metrics.add_metric(name=PULL_REFUSED_METRIC, unit=MetricUnit.Count, value=1)
        return
    logger.info("pulled what came before the filter" if outcome.result.skipped is None else "nothing to pull", extra={"pull": found})
    metrics.add_metric(name=PULLED_METRIC, unit=MetricUnit.Count, value=outcome.result.replayed)
    if outcome.result.truncated:
        metrics.add_metric(name=PULL_TRUNCATED_METRIC, unit=MetricUnit.Count, value=outcome.result.truncated)
    if outcome.lag_s is not None:
        metrics.add_metric(name=PULL_LAG_METRIC, unit=MetricUnit.Seconds, value=outcome.lag_s)

"""ship-logs: the built-in destination. CloudWatch Logs invokes it (asynchronously) with subscription batches.

It also takes the messages of its own dead-letter queue back, for the redrive: a failed batch (the
original ``awslogs`` event) or records the sink refused (``shipLogsRejected``). And, as the central
archive's consumer, Kinesis batches of the same subscription documents from many accounts: each
record shipped in order; a poison record dead-lettered and passed; the first record the sink fails
on reported in ``batchItemFailures`` (Kinesis resumes from it, so the records after it are not
started); metrics carry the source account.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.config import METRICS_NAMESPACE, SERVICE_NAME, ConfigError

from . import codec
from .aws import CloudWatchGateway, QueueGateway
from .config import (ENV_ALLOW_LOOPBACK_HTTP, ENV_SHIP_LOGS, ENV_SHIP_LOGS_DLQ_URL, METRIC_LINES_CAPPED_METRIC, OWN_LOG_GROUP_METRIC,
                     parse_ship_logs_config)
from .payload import CorruptPayload, decode_batch, decode_kinesis_record
from .service import REJECTED_KEY, Shipper, ShipOutcome
from .sinks import Backoff, build_sink

#: Stop retrying the sink with this much of the invocation left, so the failure is reported, not timed out.
RETRY_SAFETY_S = 5.0
#: Start no Kinesis record with less time left than this: it and the rest are reported, and retried.
KINESIS_RECORD_MARGIN_MS = 15_000

logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def _own_log_group(batch: Any, context: Any) -> bool:
    """Is ``batch`` from the log group this function writes to (``AWS_LAMBDA_LOG_GROUP_NAME``, set by
    Lambda), in this function's account? The loop is cut here, whatever the governor missed."""
    own = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
    if not own or batch.log_group != own:
        return False
    arn = getattr(context, "invoked_function_arn", "") or ""
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    return not batch.owner or not account or batch.owner == account


def _drop_own(batch: Any) -> None:
    logger.error("a batch of ship-logs' own log group was dropped: something subscribed it (the loop is cut here); "
                 "remove that subscription", extra={"logGroup": batch.log_group, "events": len(batch.events)})
    metrics.add_metric(name=OWN_LOG_GROUP_METRIC, unit=MetricUnit.Count, value=1)


def build_shipper(environ: Mapping[str, str]) -> Shipper:
    raw, queue_url = environ.get(ENV_SHIP_LOGS), environ.get(ENV_SHIP_LOGS_DLQ_URL)
    if not raw or not queue_url:
        raise ConfigError(f"set {ENV_SHIP_LOGS} (the sink configuration as JSON) and {ENV_SHIP_LOGS_DLQ_URL} (the dead-letter queue); the stack sets both")
    try:
        config = parse_ship_logs_config(json.loads(raw), key=ENV_SHIP_LOGS,
                                        allow_loopback_http=environ.get(ENV_ALLOW_LOOPBACK_HTTP) == "1")
    except json.JSONDecodeError as error:
        raise ConfigError(f"{ENV_SHIP_LOGS} is not valid JSON ({error})") from None
    return Shipper(build_sink(config), CloudWatchGateway(), QueueGateway(queue_url),
                   custom_namespaces=config.custom_metric_namespaces, metrics=config.metrics)


@cache
def shipper() -> Shipper:
    """Built on the first invocation and kept for the container's life."""
    built = build_shipper(os.environ)
    logger.info("ship-logs initialised", extra={"json": codec.JSON_LIBRARY, "gzip": codec.GZIP_LIBRARY})
    # What initialisation made (modules, clients, the sink) lives as long as the container: the
    # garbage collector need not walk it again in every collection a batch's records cause.
    gc.freeze()
    return built


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle_ship_logs(event, context, shipper())


def handle_ship_logs(event: Any, context: Any, shipper: Shipper) -> dict[str, Any]:
    def backoff() -> Backoff:
        return Backoff(time_left_s=lambda: context.get_remaining_time_in_millis() / 1000 - RETRY_SAFETY_S)

    if _is_kinesis_batch(event):
        return handle_kinesis_batch(event["Records"], context, shipper, backoff)

    if isinstance(event, Mapping) and REJECTED_KEY in event:
        records = event[REJECTED_KEY].get("records", []) if isinstance(event[REJECTED_KEY], Mapping) else []
        outcome = _shipped(lambda: shipper.reship(records, backoff))
        logger.info("rejected records shipped again", extra=outcome.as_dict())
        return {"status": "reshipped", **outcome.as_dict()}
    try:
        batch = decode_batch(event, region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    except CorruptPayload as error:
        # Retrying cannot fix it; keep it in the dead-letter queue and finish. Its content may hold
        # secrets: the log gets its size and digest, enough to find the message in the queue.
        raw = json.dumps(event, sort_keys=True, default=str).encode()
        digest = hashlib.sha256(raw).hexdigest()
        logger.error("corrupt payload dead-lettered", extra={"reason": str(error), "bytes": len(raw), "sha256": digest})
        shipper.dead_letter_corrupt(event, str(error), digest)
        metrics.add_metric(name="CorruptPayloads", unit=MetricUnit.Count, value=1)
        return {"status": "corrupt", "reason": str(error)}
    logger.append_keys(logGroup=batch.log_group, logStream=batch.log_stream)
    if batch.is_control:
        metrics.add_metric(name="ControlMessages", unit=MetricUnit.Count, value=1)
        return {"status": "control-message"}
    if _own_log_group(batch, context):
        _drop_own(batch)
        return {"status": "own-log-group-dropped", "events": len(batch.events)}
    if batch.malformed_events:
        logger.warning("log events without id, timestamp or message left out", extra={"count": batch.malformed_events})
        metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=batch.malformed_events)

    outcome = _shipped(lambda: shipper.ship_batch(batch, backoff))
    for line in outcome.malformed_monitoring[:5]:
        logger.warning("malformed MONITORING line shipped as an ordinary record", extra={"line": line[:500]})
    metrics.add_metric(name="MalformedMonitoringLines", unit=MetricUnit.Count, value=len(outcome.malformed_monitoring))
    metrics.add_metric(name="MetricDataPoints", unit=MetricUnit.Count, value=outcome.metric_data_points)
    if outcome.refused_custom_metrics:
        logger.warning("MONITORING lines for namespaces outside customMetricNamespaces were not published",
                       extra={"count": outcome.refused_custom_metrics})
        metrics.add_metric(name="CustomMetricsRefused", unit=MetricUnit.Count, value=outcome.refused_custom_metrics)
    logger.info("batch shipped", extra=outcome.as_dict())
    return {"status": "shipped", **outcome.as_dict()}


def _is_kinesis_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return isinstance(records, list) and bool(records) and isinstance(records[0], Mapping) and records[0].get("eventSource") == "aws:kinesis"


def handle_kinesis_batch(records: list[Any], context: Any, shipper: Shipper, backoff: Any) -> dict[str, Any]:
    """A batch from the central archive's stream; answers the partial batch response the event source
    mapping reads (with BisectBatchOnFunctionError, a batch that fails whole is split to find the record)."""
    totals: dict[str, int] = {"records": len(records), "shipped": 0, "corrupt": 0, "controlMessages": 0}
    for index, record in enumerate(records):
        sequence = str(record.get("kinesis", {}).get("sequenceNumber", index)) if isinstance(record, Mapping) else str(index)
        if context.get_remaining_time_in_millis() < KINESIS_RECORD_MARGIN_MS:
            logger.info("time is short: the rest of the batch is retried", extra={"from": sequence, "left": len(records) - index})
            return {"batchItemFailures": [{"itemIdentifier": sequence}], **totals}
        try:
            batch = decode_kinesis_record(record)
        except CorruptPayload as error:
            raw = json.dumps(record, sort_keys=True, default=str).encode()
            digest = hashlib.sha256(raw).hexdigest()
            logger.error("corrupt Kinesis record dead-lettered", extra={"reason": str(error), "bytes": len(raw), "sha256": digest, "sequenceNumber": sequence})
            shipper.dead_letter_corrupt(record, str(error), digest)
            metrics.add_metric(name="CorruptPayloads", unit=MetricUnit.Count, value=1)
            totals["corrupt"] += 1
            continue
        if batch.is_control:
            totals["controlMessages"] += 1
            continue
        if _own_log_group(batch, context):
            _drop_own(batch)
            totals["ownLogGroupDropped"] = totals.get("ownLogGroupDropped", 0) + 1
            continue
        logger.append_keys(logGroup=batch.log_group, logStream=batch.log_stream, owner=batch.owner, sequenceNumber=sequence)
        try:
            outcome = _shipped(lambda: shipper.ship_batch(batch, backoff, account_dimension=True))
        except Exception:
            # Logged and counted in _shipped; Kinesis resumes from this record.
            return {"batchItemFailures": [{"itemIdentifier": sequence}], **totals}
        totals["shipped"] += outcome.shipped
    return {"batchItemFailures": [], **totals}


def _shipped(ship: Any) -> ShipOutcome:
    try:
        outcome: ShipOutcome = ship()
    except Exception:
        # The sink stayed down (or refused our credentials): fail, so Lambda retries the batch and
        # after its retries puts it in the dead-letter queue.
        logger.exception("shipping failed; the invocation fails so Lambda retries the batch")
        metrics.add_metric(name="ShipFailures", unit=MetricUnit.Count, value=1)
        raise
    if outcome.capped_metric_lines:
        # One metric, no function dimension: a flood of new function names costs this, not a metric each.
        logger.warning("metrics of functions beyond shipLogs.metrics.maxDimensionValues (per container) were not published",
                       extra={"lines": outcome.capped_metric_lines, "functions": outcome.capped_functions})
        metrics.add_metric(name=METRIC_LINES_CAPPED_METRIC, unit=MetricUnit.Count, value=outcome.capped_metric_lines)
    metrics.add_metric(name="RecordsShipped", unit=MetricUnit.Count, value=outcome.shipped)
    metrics.add_metric(name="RecordsRejected", unit=MetricUnit.Count, value=outcome.rejected)
    metrics.add_metric(name="RecordsDegraded", unit=MetricUnit.Count, value=outcome.degraded)
    metrics.add_metric(name="SinkRetries", unit=MetricUnit.Count, value=outcome.retries)
    if outcome.rejected:
        logger.warning("records refused by the sink were dead-lettered", extra={"count": outcome.rejected, "messages": outcome.dead_letter_messages})
    return outcome

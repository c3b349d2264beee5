"""Realistic CloudWatch Logs subscription payloads from Lambda functions, as AWS sends them.

Invocations are written the way Lambda and its runtimes write them: START / END / REPORT in the
text format or platform.* records in Lambda's JSON format, Powertools structured JSON lines, the
Python runtime's ``[LEVEL]\\t...`` lines (multi-line messages joined with \\r), Node.js tab lines
with stack traces, plain print() output, and MONITORING|value|unit|name|namespace lines.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

from ship_logs.payload import encode_batch

ACCOUNT = "123456789012"
START_MS = 1_795_850_000_000  # 2026-11-28T07:13:20Z


def _event_id(rng: random.Random, timestamp_ms: int) -> str:
    # CloudWatch ids are 56 digits; uniqueness is what matters here.
    return f"{timestamp_ms:d}{rng.getrandbits(120):036d}"[:56]


def _invocation(rng: random.Random, runtime: str, json_format: bool, cold: bool, at_ms: int, memory: int) -> list[tuple[int, str]]:
    rid = str(uuid.UUID(int=rng.getrandbits(128)))
    duration = round(rng.uniform(2, 900), 2)
    init = round(rng.uniform(120, 900), 2) if cold else None
    used = rng.randint(40, min(120, memory))
    iso = "2026-11-28T09:14:07.123Z"
    lines: list[str] = []
    if json_format:
        lines.append(json.dumps({"time": iso, "type": "platform.start", "record": {"requestId": rid, "version": "$LATEST"}}))
    else:
        lines.append(f"START RequestId: {rid} Version: $LATEST")
    correlation = str(uuid.UUID(int=rng.getrandbits(128)))
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        if kind < 0.35:
            lines.append(json.dumps({
                "level": rng.choice(("INFO", "INFO", "DEBUG", "WARNING")), "location": "handler:42", "message": "order accepted",
                "timestamp": iso, "service": "orders", "cold_start": cold, "function_request_id": rid,
                "correlation_id": correlation, "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "debug": False,
                "order": {"id": rng.randint(1, 10**6), "items": rng.randint(1, 9)}, "xray_trace_id": "1-6746f0a7-3b4c5d6e7f8091a2b3c4d5e6",
            }))
        elif kind < 0.55 and runtime == "python":
            lines.append(f"[INFO]\t{iso}\t{rid}\tfetched {rng.randint(1, 500)} rows from the ledger")
        elif kind < 0.55:
            lines.append(f"{iso}\t{rid}\tINFO\tfetched {rng.randint(1, 500)} rows from the ledger")
        elif kind < 0.65 and runtime == "python":
            lines.append(f"[ERROR]\t{iso}\t{rid}\tpayment declined\rTraceback (most recent call last):\r  File \"/var/task/app.py\", line 31, in handler\r    charge(card)\rValueError: card expired")
        elif kind < 0.65:
            lines.append(f"{iso}\t{rid}\tERROR\tInvoke Error \tTypeError: Cannot read properties of undefined (reading 'id')\n    at handler (/var/task/index.js:12:20)\n    at Runtime.handleOnceNonStreaming (file:///var/runtime/index.mjs:1173:29)")
        elif kind < 0.80:
            unit = rng.choice(("count", "Count", "COUNT", "ms", "Milliseconds", "bytes", "percent"))
            lines.append(f"MONITORING|{rng.randint(1, 50)}|{unit}|orders_placed|shop")
        elif kind < 0.83:
            lines.append("MONITORING|lots|count|orders_placed|shop")  # malformed: shipped as an ordinary record
        else:
            lines.append(f"cache warm, {rng.randint(1, 99)} keys")
    if json_format:
        metrics: dict[str, Any] = {"durationMs": duration, "billedDurationMs": float(int(duration) + 1), "memorySizeMB": memory, "maxMemoryUsedMB": used}
        if init is not None:
            metrics["initDurationMs"] = init
        lines.append(json.dumps({"time": iso, "type": "platform.report", "record": {"requestId": rid, "metrics": metrics, "status": "success"}}))
    else:
        lines.append(f"END RequestId: {rid}")
        report = (f"REPORT RequestId: {rid}\tDuration: {duration} ms\tBilled Duration: {int(duration) + 1} ms\t"
                  f"Memory Size: {memory} MB\tMax Memory Used: {used} MB")
        if init is not None:
            report += f"\tInit Duration: {init} ms"
        lines.append(report + "\t\n")
        if rng.random() < 0.3:
            lines.append(f"XRAY TraceId: 1-6746f0a7-3b4c5d6e7f8091a2b3c4d5e6\tSegmentId: {rng.getrandbits(64):016x}\tSampled: true")
    return [(at_ms + i, line) for i, line in enumerate(lines)]


def lambda_log_events(count: int, *, seed: int = 7, runtime: str = "python", json_format: bool = False) -> list[dict[str, Any]]:
    """At least ``count`` log events of whole invocations, as one log stream (one execution
    environment) holds them: its first invocation is a cold start."""
    rng = random.Random(seed)
    memory = rng.choice((128, 256, 512, 1024))  # a function's setting, the same for every invocation
    events: list[dict[str, Any]] = []
    at = START_MS
    while len(events) < count:
        for timestamp, message in _invocation(rng, runtime, json_format, cold=not events or rng.random() < 0.05, at_ms=at, memory=memory):
            events.append({"id": _event_id(rng, timestamp), "timestamp": timestamp, "message": message})
        at += rng.randint(50, 5_000)
    return events


def subscription_document(log_group: str, events: list[dict[str, Any]], *, message_type: str = "DATA_MESSAGE",
                          stream: str = "2026/11/28/[$LATEST]0123456789abcdef0123456789abcdef",
                          filter_name: str = "log-group-governor", policy_level: str | None = None,
                          owner: str = ACCOUNT) -> dict[str, Any]:
    """``policy_level``: ``ACCOUNT_LEVEL_POLICY`` for a batch an account-level subscription filter policy
    delivers (its name is then the one in ``subscriptionFilters``); a group's own filter sends none."""
    document = {
        "messageType": message_type,
        "owner": owner,
        "logGroup": log_group,
        "logStream": stream,
        "subscriptionFilters": [filter_name],
        "logEvents": events,
    }
    if policy_level:
        document["policyLevel"] = policy_level
    return document


def subscription_event(log_group: str, events: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """The event CloudWatch Logs invokes a Lambda destination with."""
    return encode_batch(subscription_document(log_group, events, **kwargs))


def control_message_event(log_group: str = "testLogGroup") -> dict[str, Any]:
    """What CloudWatch Logs sends when a subscription is created."""
    return encode_batch({
        "messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
        "subscriptionFilters": [], "logEvents": [{
            "id": "", "timestamp": START_MS,
            "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}],
    })


def kinesis_event(documents: list[dict[str, Any]], *, region: str = "eu-west-1",
                  stream_arn: str = "arn:aws:kinesis:eu-west-1:111111111111:stream/log-archive") -> dict[str, Any]:
    """What Lambda's Kinesis event source hands the central archive's consumer: one record per
    subscription document a CloudWatch Logs destination wrote to the stream (base64 of gzip of JSON)."""
    records = []
    for n, document in enumerate(documents):
        data = encode_batch(document)["awslogs"]["data"]
        sequence = f"4959{n:052d}"
        records.append({
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": document.get("logStream", "x"), "sequenceNumber": sequence,
                        "data": data, "approximateArrivalTimestamp": 1795850000.123},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000000000000:{sequence}",
            "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::111111111111:role/log-archive-consumer",
            "awsRegion": region, "eventSourceARN": stream_arn,
        })
    return {"Records": records}


"""Event builders from recorded fixtures: change only what a test or the demo needs to vary."""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "events"


@cache
def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of ``events/<name>.json``."""
    return copy.deepcopy(_fixture(name))


def create_log_group_event(log_group_name: str, *, region: str = "eu-west-1", account: str = "123456789012",
                           error_code: str | None = None, log_group_class: str | None = None) -> dict[str, Any]:
    """The EventBridge event CloudTrail emits for a CreateLogGroup call."""
    event = fixture("create_log_group")
    event["id"] = str(uuid.uuid4())
    event["region"] = event["detail"]["awsRegion"] = region
    event["account"] = event["detail"]["recipientAccountId"] = account
    event["detail"]["eventID"] = str(uuid.uuid4())
    event["detail"]["requestParameters"]["logGroupName"] = log_group_name
    if log_group_class:
        event["detail"]["requestParameters"]["logGroupClass"] = log_group_class
    if error_code:
        event["detail"]["errorCode"] = error_code
        event["detail"]["errorMessage"] = "The specified log group already exists"
    return event


def dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, indent=2)


def sqs_batch(events: list[dict[str, Any]], *, queue_arn: str = "arn:aws:sqs:eu-west-1:123456789012:governor-subscribe",
              receive_count: int = 1) -> dict[str, Any]:
    """What Lambda's SQS event source hands a function: EventBridge events as the queue's message bodies."""
    records = []
    for event in events:
        body = json.dumps(event)
        records.append({
            "messageId": str(uuid.uuid4()),
            "receiptHandle": f"AQEB{uuid.uuid4().hex}",
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": str(receive_count),
                "SentTimestamp": "1764379200000",
                "SenderId": "AIDAEXAMPLEEVENTBRIDGE",
                "ApproximateFirstReceiveTimestamp": "1764379200123",
            },
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": queue_arn.split(":")[3],
        })
    return {"Records": records}

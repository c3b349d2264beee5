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


#: Fixture of each call that can change a log group after it was created.
CALL_FIXTURES = {
    "PutRetentionPolicy": "put_retention_policy", "DeleteRetentionPolicy": "delete_retention_policy",
    "PutSubscriptionFilter": "put_subscription_filter", "DeleteSubscriptionFilter": "delete_subscription_filter",
    "TagResource": "tag_resource", "UntagResource": "untag_resource", "TagLogGroup": "tag_log_group", "UntagLogGroup": "untag_log_group",
    "DeleteLogGroup": "delete_log_group",
    # Modelled on the other records (*assumed*, localaws/FIDELITY.md E6): the request's logGroupIdentifier.
    "PutLogGroupDeletionProtection": "put_log_group_deletion_protection",
    "AssociateKmsKey": "associate_kms_key", "DisassociateKmsKey": "disassociate_kms_key",  # E7, modelled likewise
    "PutDataProtectionPolicy": "put_data_protection_policy", "DeleteDataProtectionPolicy": "delete_data_protection_policy",  # E8
    "PutIndexPolicy": "put_index_policy", "DeleteIndexPolicy": "delete_index_policy",  # E9, modelled likewise
}


def log_group_call_event(event_name: str, log_group_name: str, *, role_arn: str | None = None, region: str = "eu-west-1",
                         account: str = "123456789012", error_code: str | None = None, **parameters: Any) -> dict[str, Any]:
    """The EventBridge event CloudTrail emits for ``event_name`` on a log group, made by an assumed
    role (``role_arn``: the fixture's platform-admin by default); ``parameters`` replace request parameters."""
    event = fixture(CALL_FIXTURES[event_name])
    event["id"] = str(uuid.uuid4())
    event["region"] = event["detail"]["awsRegion"] = region
    event["account"] = event["detail"]["recipientAccountId"] = account
    event["detail"]["eventID"] = str(uuid.uuid4())
    request = event["detail"]["requestParameters"]
    if "resourceArn" in request:
        request["resourceArn"] = f"arn:aws:logs:{region}:{account}:log-group:{log_group_name}"
    elif "logGroupIdentifier" in request:
        request["logGroupIdentifier"] = log_group_name
    else:
        request["logGroupName"] = log_group_name
    request.update(parameters)
    if role_arn:
        identity = event["detail"]["userIdentity"]
        role_name = role_arn.rsplit("/", 1)[-1]
        identity["arn"] = f"arn:aws:sts::{account}:assumed-role/{role_name}/session"
        identity["sessionContext"]["sessionIssuer"].update(arn=role_arn, userName=role_name)
    if error_code:
        event["detail"]["errorCode"] = error_code
        event["detail"]["errorMessage"] = "refused"
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


def account_policy_call_event(event_name: str, policy_name: str, *, policy_type: str = "SUBSCRIPTION_FILTER_POLICY",
                              role_arn: str | None = None, region: str = "eu-west-1", account: str = "123456789012") -> dict[str, Any]:
    """The EventBridge event of a PutAccountPolicy or DeleteAccountPolicy call (the record's shape for
    these calls is *assumed*: the request's parameters, as CloudTrail records other CloudWatch Logs calls)."""
    event = log_group_call_event("PutRetentionPolicy", "/unused", role_arn=role_arn, region=region, account=account)
    event["detail"]["eventName"] = event_name
    event["detail"]["requestParameters"] = {"policyName": policy_name, "policyType": policy_type}
    if event_name == "PutAccountPolicy":
        event["detail"]["requestParameters"].update(policyDocument="{}", scope="ALL")
    return event


def lambda_call_event(event_name: str, function_name: str, *, role_arn: str = "arn:aws:iam::123456789012:role/platform-admin",
                      logging_group: str | None = None, region: str = "eu-west-1", account: str = "123456789012") -> dict[str, Any]:
    """The EventBridge event of a Lambda API call as CloudTrail records it: source aws.lambda, the call
    named with its API version (``UpdateFunctionConfiguration20150331v2``, as in a real record of a
    public detection-rule corpus)."""
    event = log_group_call_event("PutRetentionPolicy", "/unused", role_arn=role_arn, region=region, account=account)
    event["source"] = "aws.lambda"
    detail = event["detail"]
    detail.update(eventSource="lambda.amazonaws.com", eventName=event_name, apiVersion="2015-03-31")
    detail["requestParameters"] = {"functionName": function_name}
    if logging_group:
        detail["requestParameters"]["loggingConfig"] = {"logFormat": "JSON", "logGroup": logging_group}
    detail["responseElements"] = {"functionName": function_name, "functionArn": f"arn:aws:lambda:{region}:{account}:function:{function_name}"}
    return event

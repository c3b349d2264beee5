"""The one layer of ship-logs that talks to boto3: CloudWatch metrics, Firehose, secrets, the
dead-letter queue, SigV4 signing, and the redrive's function invoker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import boto3

from shared.clients import client_config

class CloudWatchGateway:
    def __init__(self, client: Any = None) -> None:
        self.client = client or boto3.client("cloudwatch", config=client_config())

    def put_metric_data(self, request: Mapping[str, Any]) -> None:
        self.client.put_metric_data(**request)


class FirehoseAnswer(NamedTuple):
    #: Indexes (into the records sent) that Firehose did not take, with its error code.
    failed: tuple[tuple[int, str], ...]


class FirehoseGateway:
    def __init__(self, stream_arn: str, client: Any = None) -> None:
        self.stream_name = stream_arn.rsplit("/", 1)[-1]
        self.client = client or boto3.client("firehose", config=client_config())

    def put_record_batch(self, records: list[bytes]) -> FirehoseAnswer:
        answer = self.client.put_record_batch(DeliveryStreamName=self.stream_name, Records=[{"Data": r} for r in records])
        if not answer.get("FailedPutCount"):
            return FirehoseAnswer(())
        return FirehoseAnswer(tuple(
            (i, entry.get("ErrorCode", "unknown")) for i, entry in enumerate(answer["RequestResponses"]) if entry.get("ErrorCode")
        ))


class SecretsGateway:
    """Secrets Manager secrets and SSM SecureString parameters holding a JSON object, cached a while so
    a rotated secret is picked up without a redeploy."""

    TTL_S = 300.0

    def __init__(self, secrets_client: Any = None, ssm_client: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._secrets_client, self._ssm_client = secrets_client, ssm_client
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._clock = clock

    def json_value(self, arn: str) -> dict[str, Any]:
        cached = self._cache.get(arn)
        if cached and self._clock() - cached[0] < self.TTL_S:
            return cached[1]
        if ":ssm:" in arn:
            self._ssm_client = self._ssm_client or boto3.client("ssm", config=client_config())
            name = "/" + arn.split(":parameter/", 1)[1]
            text = self._ssm_client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        else:
            self._secrets_client = self._secrets_client or boto3.client("secretsmanager", config=client_config())
            text = self._secrets_client.get_secret_value(SecretId=arn)["SecretString"]
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(f"the secret {arn} is not a JSON object") from None
        if not isinstance(value, dict):
            raise ValueError(f"the secret {arn} is not a JSON object")
        self._cache[arn] = (self._clock(), value)
        return value


class QueueGateway:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self.client = client or boto3.client("sqs", config=client_config())

    def send(self, body: str) -> None:
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def receive(self, max_messages: int = 10, wait_s: int = 1) -> list[tuple[str, str, str, int]]:
        """(message id, receipt handle, body, sent at in epoch milliseconds) of each message."""
        answer = self.client.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_s,
                                             MessageSystemAttributeNames=["SentTimestamp"])
        return [(m["MessageId"], m["ReceiptHandle"], m["Body"], int(m.get("Attributes", {}).get("SentTimestamp", 0)))
                for m in answer.get("Messages", [])]

    def delete(self, receipt_handle: str) -> None:
        self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt_handle)


class SigV4Signer:
    """Signs requests to Amazon OpenSearch Service with the function's own credentials."""

    def __init__(self, region: str, service: str = "es", session: Any = None) -> None:
        self.region, self.service = region, service
        self._credentials = (session or boto3.Session()).get_credentials()

    def headers(self, method: str, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(self._credentials.get_frozen_credentials(), self.service, self.region).add_auth(request)
        return dict(request.headers.items())


class LambdaInvoker:
    """Invokes a function synchronously with a payload (the ship-logs redrive)."""

    def __init__(self, function_name: str, client: Any = None) -> None:
        self.function_name = function_name
        self.client = client or boto3.client("lambda", config=client_config())

    def __call__(self, payload: str) -> None:
        answer = self.client.invoke(FunctionName=self.function_name, InvocationType="RequestResponse", Payload=payload.encode())
        if answer.get("FunctionError"):
            raise RuntimeError(f"{self.function_name} failed: {answer['Payload'].read().decode(errors='replace')[:500]}")

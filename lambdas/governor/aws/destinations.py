"""A replay's writes to a same-account destination: a Lambda function, a Kinesis stream or a Firehose stream (``ReplayWriter``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3

from .common import DEFAULT_RETRY_ATTEMPTS, client_config


class ReplayWriter:
    """Delivers a replayed subscription document to a same-account destination, as CloudWatch Logs would: a Lambda
    invoked asynchronously, one Kinesis or Firehose record. Clients are made on first use (most events replay nothing)."""

    def __init__(self, clients: Callable[[str], Any] | None = None, *, max_attempts: int = DEFAULT_RETRY_ATTEMPTS) -> None:
        self._make = clients or (lambda service: boto3.client(service, config=client_config(max_attempts)))
        self._clients: dict[str, Any] = {}
        self.calls: Counter[str] = Counter()

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._make(service)
        return self._clients[service]

    def deliver(self, destination: Any, payload: bytes, *, partition_key: str) -> None:
        kind = destination.kind.value
        if kind == "lambda":
            self._client("lambda").invoke(FunctionName=destination.arn, InvocationType="Event", Payload=payload)
        elif kind == "kinesis":
            self._client("kinesis").put_record(StreamName=destination.name, Data=payload, PartitionKey=partition_key or "replay")
        elif kind == "firehose":
            self._client("firehose").put_record(DeliveryStreamName=destination.name, Record={"Data": payload})
        else:
            raise ValueError(f"replay cannot write to a {kind} destination")
        self.calls[kind] += 1

"""SQS: an event handler's own queue, where work that goes on in a later invocation is sent (``EventQueueSender``)."""

from __future__ import annotations

from typing import Any

import boto3

from .common import client_config


class EventQueueSender:
    """An event handler's own queue: a record whose work goes on in a later invocation is sent to it again."""

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, body: str) -> None:
        if self._client is None:
            self._client = boto3.client("sqs", config=client_config())
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=body)

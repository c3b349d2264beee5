"""The buffer between EventBridge and an event handler: a burst of CreateLogGroup records waits here
and is drained by at most ``max_concurrency`` containers, each pacing its calls (see governor.pacing)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from governor.pacing import (
    EVENT_BATCH_SIZE,
    EVENT_MAX_RECEIVE_COUNT,
    EVENT_VISIBILITY_TIMEOUT_S,
)

from .dead_letters import encrypted_queue

BATCHING_WINDOW = Duration.seconds(5)
#: Long enough for the slowest burst to drain (5,000 groups take under two hours at the default share).
RETENTION = Duration.days(4)


class EventQueue(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, consumer: lambda_.IFunction,
                 dead_letter_queue: sqs.IQueue, max_concurrency: int) -> None:
        super().__init__(scope, construct_id)
        self.queue = encrypted_queue(
            self,
            "Queue",
            retention_period=RETENTION,
            visibility_timeout=Duration.seconds(EVENT_VISIBILITY_TIMEOUT_S),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead_letter_queue, max_receive_count=EVENT_MAX_RECEIVE_COUNT),
        )
        consumer.add_event_source(sources.SqsEventSource(
            self.queue,
            batch_size=EVENT_BATCH_SIZE,
            max_batching_window=BATCHING_WINDOW,
            max_concurrency=max_concurrency,
            report_batch_item_failures=True,
        ))

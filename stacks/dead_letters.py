"""Where failed events end: an encrypted queue, and an alarm that says something landed there."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .alarms import Alarms

#: SQS keeps a message at most 14 days: the time there is to look at and redrive a failed event.
DLQ_RETENTION = Duration.days(14)


def encrypted_queue(scope: Construct, construct_id: str, **props: object) -> sqs.Queue:
    """An SQS queue with server-side encryption that refuses requests without TLS."""
    return sqs.Queue(scope, construct_id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, **props)


class DeadLetters(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, alarms: Alarms, what: str) -> None:
        """``what``: what lands here, for the alarm's description."""
        super().__init__(scope, construct_id)
        self.queue = encrypted_queue(self, "Queue", retention_period=DLQ_RETENTION)
        self.alarm = alarms.alarm(
            self,
            "NotEmpty",
            metric=self.queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
            description=f"{what} failed after all retries and wait in the dead-letter queue",
        )

"""The one layer that talks to boto3. Everything above it sees plain dataclasses and these exceptions.

Clients are injected (``client or boto3.client(...)``) so tests and the CLI can hand in their own
(moto, another profile, an endpoint URL). Throttling is retried by botocore's standard retry mode,
within a budget that fits the functions' timeouts (``retry_budget_s``). ``OperationAbortedException``
is not retried by botocore (its standard mode knows neither the code nor a model trait for it): it
propagates like a throttle that outlasted the retries, and the caller tries again later (the event
queue redelivers the message; the backfill does the page again). ``LimitExceededException`` from
PutSubscriptionFilter, which botocore counts as throttling, means the group's filter slots filled
up: it is not retried at all but reported as a conflict.

One module per service, each importing only ``common`` (and the pacer, for CloudWatch Logs): ``common`` (the errors, the
retry classification, the clients' configuration), ``pacer``, ``logs`` (CloudWatch Logs), ``lambda_`` (AWS Lambda),
``destinations`` (a replay's writes to Lambda, Kinesis and Firehose), ``kms``, ``metrics`` (CloudWatch's AWS/Logs delivery metrics), ``queue`` (SQS), ``tagging`` (the Resource
Groups Tagging API), ``state_table`` (DynamoDB), ``events`` (EventBridge) and ``s3``. This package re-exports their names,
so ``from governor.aws import LogsGateway`` reads as before.
"""

from __future__ import annotations

from .common import (DEFAULT_RETRY_ATTEMPTS, RETRYABLE_ERROR_CODES, THROTTLING_ERROR_CODES, ConfigurationRefused, DestinationUnavailable,
                     ExpiredPageToken, LogGroupGone, NoFreeFilterSlot, RetryLater, SenderRoleNotAssumable, client_config, is_retryable,
                     retry_budget_s)
from .destinations import ReplayWriter
from .events import FleetBus
from .kms import KmsGateway
from .lambda_ import LambdaGateway
from .metrics import DeliveryMetrics
from .logs import (BULK_IDENTIFIERS, DESCRIBE_LOG_GROUPS_PAGE_SIZE, FILTER_LOG_EVENTS_PAGE_SIZE, LOGS_EVENT_SERVICE, FilterInPlace,
                   IngestedEvent, LogGroupInfo, LogGroupPage, LogsGateway)
from .pacer import Pacer
from .queue import EventQueueSender
from .s3 import S3RunStore
from .state_table import Conflict, ReplayProgress, StateTable
from .tagging import TaggingGateway

__all__ = [
    "BULK_IDENTIFIERS", "DEFAULT_RETRY_ATTEMPTS", "DESCRIBE_LOG_GROUPS_PAGE_SIZE", "FILTER_LOG_EVENTS_PAGE_SIZE", "LOGS_EVENT_SERVICE",
    "RETRYABLE_ERROR_CODES", "THROTTLING_ERROR_CODES", "ConfigurationRefused", "Conflict", "DeliveryMetrics", "DestinationUnavailable", "EventQueueSender",
    "ExpiredPageToken", "FilterInPlace", "FleetBus", "IngestedEvent", "KmsGateway", "LambdaGateway", "LogGroupGone", "LogGroupInfo",
    "LogGroupPage", "LogsGateway", "NoFreeFilterSlot", "Pacer", "ReplayProgress", "ReplayWriter", "RetryLater", "S3RunStore",
    "SenderRoleNotAssumable", "StateTable", "TaggingGateway", "client_config", "is_retryable", "retry_budget_s",
]

"""What every service's adapter shares: the errors the layers above see, which AWS answers mean "not now" (retried later)
and which mean a throttle, and the clients' configuration (``client_config``, ``retry_budget_s``: shared.clients)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from shared.clients import DEFAULT_RETRY_ATTEMPTS, client_config, retry_budget_s  # noqa: F401 (re-exported)

#: Error codes that say "not now" rather than "not ever": botocore's throttling codes and the
#: transient ones CloudWatch Logs answers.
RETRYABLE_ERROR_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "RequestThrottled", "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
    "OperationAbortedException", "ServiceUnavailableException", "ServiceUnavailable", "InternalFailure",
    "InternalServerError", "RequestTimeout", "RequestTimeoutException",
})
#: Codes a pacer reads as "the account's quota is exhausted": slow down.
THROTTLING_ERROR_CODES = frozenset(RETRYABLE_ERROR_CODES - {
    "OperationAbortedException", "ServiceUnavailableException", "ServiceUnavailable", "InternalFailure",
    "InternalServerError", "RequestTimeout", "RequestTimeoutException", "TransactionInProgressException",
})


def is_retryable(error: BaseException) -> bool:
    """True when trying the same call later may succeed (throttling, conflicts, outages, timeouts)."""
    if isinstance(error, RetryLater):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return _error_code(error) in RETRYABLE_ERROR_CODES or status >= 500
    return isinstance(error, BotoCoreError)  # connection errors, read timeouts


class LogGroupGone(Exception):
    """The log group was deleted before we got to it: nothing to do, nothing to retry."""


class NoFreeFilterSlot(Exception):
    """PutSubscriptionFilter answered LimitExceededException: the group filled up since we looked (or, under load, AWS
    answered so with a slot free: the caller counts the filters before it calls it a conflict)."""


class SenderRoleNotAssumable(Exception):
    """PutSubscriptionFilter answered ValidationException "Make sure you have given CloudWatch Logs permission to assume the
    provided role.": the sender role is missing, does not trust logs.amazonaws.com, or is too new for IAM to have
    propagated it (a StackSet creates it with the functions). Asked again for a while, then a conflict with its fix."""


class RetryLater(Exception):
    """AWS refused a call for a reason that passes: asking again later can succeed. The event comes back; a run does the
    page again."""


class DestinationUnavailable(Exception):
    """PutSubscriptionFilter refused the destination (deleted, not permitted, wrong region) while the
    log group exists: a misconfiguration that every new group would meet. It alarms; the work is
    kept and retried, since fixing the destination fixes it."""


class ConfigurationRefused(Exception):
    """AWS refused what the configuration asks for (``LogsGateway.group_call``'s refusals: a control's write of what a rule
    says, such as a key that does not exist or a document naming a missing audit group): asking again cannot help until
    the configuration is fixed."""


class ExpiredPageToken(Exception):
    """DescribeLogGroups or FilterLogEvents refused a page token (a resumed run's or replay's token can be days old)."""


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")

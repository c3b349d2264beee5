"""How fast the event handlers may call CloudWatch Logs: a bounded share of the account's quotas.

Each handler paces itself per container, so the share holds however many events arrive at once:
the queue in front of the handlers absorbs the burst, and at most ``concurrency`` containers per
handler drain it.
"""

from __future__ import annotations

from collections.abc import Mapping

from .controls import PLUGGED

#: CloudWatch Logs operations each event handler makes (the subscription handler looks tags and
#: filters up, removes its filter from a group that opted out, and reads what a new group held before
#: its filter for the replay; both describe the group and read tags).
OPERATIONS_BY_ASPECT: Mapping[str, tuple[str, ...]] = {
    "subscription": ("DescribeLogGroups", "ListTagsForResource", "DescribeSubscriptionFilters", "PutSubscriptionFilter",
                     "DeleteSubscriptionFilter", "FilterLogEvents"),
    "retention": ("DescribeLogGroups", "ListTagsForResource", "PutRetentionPolicy"),
    # The controls that plug in whole, as their modules say.
    **{control.aspect: control.calls for control in PLUGGED},
}
#: The event source mapping's maximum concurrency per handler (SQS' minimum is 2).
DEFAULT_EVENT_CONCURRENCY = 2


#: The event handlers every stack deploys; a control's joins them when a rule sets it.
BASE_ASPECTS = ("subscription", "retention")


def event_handler_rates_tps(quotas_tps: Mapping[str, float], share: float, aspect: str, concurrency: int, *,
                            deployed: tuple[str, ...] = BASE_ASPECTS) -> dict[str, float]:
    """Requests per second one container of ``aspect``'s handler may make, per operation: the event
    handlers' ``share`` of each quota, split between the ``deployed`` handlers that use the operation and
    their containers."""
    rates = {}
    for operation in OPERATIONS_BY_ASPECT[aspect]:
        sharing = sum(operation in OPERATIONS_BY_ASPECT[other] for other in {*deployed, aspect})
        rates[operation] = quotas_tps[operation] * share / (sharing * concurrency)
    return rates

# The event path's shape, shared by the stack that builds it and the simulation that measures it.
#: Each event handler's timeout: twice the longest one API call can take (aws.retry_budget_s), plus a batch's work.
EVENT_HANDLER_TIMEOUT_S = 180
#: Messages a handler takes at once: as many groups as one DescribeLogGroups look-up by ``logGroupIdentifiers``
#: answers (the model: 50), so a burst costs one look-up per 50 groups (#20). SQS takes more than 10 only with a
#: batching window (the event queue's is 5 s). At the default share a full batch takes about a minute of paced writes.
EVENT_BATCH_SIZE = 50
#: AWS' advice for SQS event sources: a visibility timeout of six times the function's timeout.
EVENT_VISIBILITY_TIMEOUT_S = 6 * EVENT_HANDLER_TIMEOUT_S
#: Receives before a message goes to the dead-letter queue: a failure must repeat for about three hours.
EVENT_MAX_RECEIVE_COUNT = 10

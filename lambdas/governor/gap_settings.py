"""The delivery-gap function's settings the stack reads too (governor.delivery_gaps), importable without boto3: the CDK
app synthesizes with requirements.txt alone."""

from __future__ import annotations

#: How often the watch reads the delivery metrics (its schedule).
WATCH_EVERY_MINUTES = 5
#: The gap queue's URL, in the delivery-gaps function's environment.
ENV_GAP_QUEUE_URL = "GOVERNOR_GAP_QUEUE_URL"
#: The calls a gap's replay makes and the share of each CloudWatch Logs quota it spends (the event handlers keep
#: eventQuotaShare, a backfill its own).
GAP_OPERATIONS = ("DescribeLogGroups", "DescribeSubscriptionFilters", "FilterLogEvents")
GAP_QUOTA_SHARE = 0.2
#: Containers replaying gaps at once (an SQS event source's least maximum concurrency): each paces at its part of the share.
GAP_CONCURRENCY = 2

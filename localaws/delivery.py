"""Subscription delivery as CloudWatch Logs makes it, failures and the gap they leave included
(localaws/FIDELITY.md, "Delivery gaps", rows S1-S8).

While inside ``subscription_delivery(account, clock)``, moto's delivery of each PutLogEvents batch to each of a
group's subscription filters (``moto.logs.models.LogStream._send_log_events``) goes through one ``DeliveryModel``:

- a batch to a filter that is disabled (``clock() < disabled_until[(group, filter)]``) is skipped: not delivered,
  no metric, each event in ``model.skipped`` (S3);
- else a batch to a destination that refuses (``model.refuse(arn)``) or does not exist fails: each event in
  ``model.failed``, one ``DeliveryErrors`` datapoint of the batch's event count, and the filter is disabled for
  ``DISABLED_FOR_S`` (S1, S2);
- else it is delivered (moto's own send to Kinesis or Firehose; a Lambda function needs Docker and is not called)
  and ``ForwardedLogEvents`` counts it (S4).

Time follows ``clock`` (epoch seconds): moto's ingestion and creation times (S5), the datapoints' timestamps, and
CloudWatch's ``RecentlyActive`` window (S6). ``GetMetricData`` gets two moto errors fixed (S7) and ``ListMetrics``
one (S8). ``localaws.deployment.LocalDeployment.running()`` uses the same model.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

from .account import LocalAccount

#: How long a filter stays disabled after a non-retryable delivery error. The guide ("Subscriptions"): "the
#: subscription filter is disabled for up to 10 minutes"; the model takes the bound: **assumed** (S2).
DISABLED_FOR_S = 600.0
#: ListMetrics' RecentlyActive: "metrics that have had data points published in the past three hours" (S6).
RECENTLY_ACTIVE = timedelta(hours=3)
_DESTINATION_TYPES = {"lambda": "Lambda", "kinesis": "Kinesis", "firehose": "Firehose"}
_recently_active: contextvars.ContextVar[bool] = contextvars.ContextVar("recently_active", default=False)


@dataclass(frozen=True)
class UndeliveredEvent:
    """One event of a batch that was not delivered (``DeliveryModel.skipped`` or ``.failed``)."""

    log_group: str
    filter_name: str
    destination_arn: str
    message: str
    timestamp_ms: int
    ingestion_ms: int


@dataclass
class DeliveryModel:
    account: LocalAccount
    clock: Callable[[], float] = time.time
    #: Events of batches sent while their filter was disabled (no metric counts them).
    skipped: list[UndeliveredEvent] = field(default_factory=list)
    #: Events of batches the destination refused (each batch counted in DeliveryErrors).
    failed: list[UndeliveredEvent] = field(default_factory=list)
    #: (log group, filter name) -> epoch seconds until which the filter is disabled.
    disabled_until: dict[tuple[str, str], float] = field(default_factory=dict)
    refusing: set[str] = field(default_factory=set)

    def refuse(self, destination_arn: str) -> None:
        """The destination refuses deliveries with a non-retryable error (as when the delivery role loses its permission)."""
        self.refusing.add(destination_arn)

    def accept(self, destination_arn: str) -> None:
        self.refusing.discard(destination_arn)

    def now(self) -> datetime:
        """The clock as moto keeps time: naive UTC."""
        return datetime.fromtimestamp(self.clock(), timezone.utc).replace(tzinfo=None)

    def disabled(self, log_group: str, filter_name: str) -> bool:
        return self.clock() < self.disabled_until.get((log_group, filter_name), float("-inf"))

    def deliver(self, log_group: str, filter_name: str, destination_arn: str, log_events: list[dict[str, Any]],
                send: Callable[[], None] | None = None) -> str:
        """One batch to one filter: "skipped", "failed" or "delivered" (``send`` makes the delivery, if any)."""
        if not log_events:
            return "delivered"
        now_ms = int(self.clock() * 1000)

        def undelivered() -> list[UndeliveredEvent]:
            return [UndeliveredEvent(log_group, filter_name, destination_arn, e["message"], int(e["timestamp"]), now_ms) for e in log_events]

        if self.disabled(log_group, filter_name):
            self.skipped.extend(undelivered())
            return "skipped"
        if destination_arn in self.refusing or not destination_exists(self.account, destination_arn):
            self.failed.extend(undelivered())
            self._metric(log_group, filter_name, destination_arn, "DeliveryErrors", len(log_events))
            self.disabled_until[(log_group, filter_name)] = self.clock() + DISABLED_FOR_S
            return "failed"
        if send is not None:
            send()
        self._metric(log_group, filter_name, destination_arn, "ForwardedLogEvents", len(log_events))
        return "delivered"

    def _metric(self, log_group: str, filter_name: str, destination_arn: str, name: str, count: int) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        kind = _DESTINATION_TYPES.get(destination_arn.split(":")[2], "Destination")
        cloudwatch_backends[self.account.account_id][self.account.region].put_metric_data("AWS/Logs", [{
            "MetricName": name, "Value": float(count), "Unit": "None", "Timestamp": self.now(),
            "Dimensions": [{"Name": "LogGroupName", "Value": log_group}, {"Name": "DestinationType", "Value": kind},
                           {"Name": "FilterName", "Value": filter_name}]}])


def destination_exists(account: LocalAccount, arn: str) -> bool:
    """Does CloudWatch Logs find the destination (a Lambda function, Kinesis or Firehose stream of ``account``)?"""
    client = {"lambda": ("lambda", lambda c: c.get_function(FunctionName=arn)),
              "kinesis": ("kinesis", lambda c: c.describe_stream_summary(StreamARN=arn)),
              "firehose": ("firehose", lambda c: c.describe_delivery_stream(DeliveryStreamName=arn.rsplit("/", 1)[-1]))}.get(arn.split(":")[2])
    if client is None:
        return True  # a cross-account destination: localaws.organization delivers
    try:
        client[1](account.client(client[0]))
        return True
    except Exception:  # the destination is gone: CloudWatch Logs' delivery fails (AccessDenied, ResourceNotFound)
        return False


@contextmanager
def subscription_delivery(account: LocalAccount, clock: Callable[[], float] | None = None) -> Iterator[DeliveryModel]:
    """Subscription delivery through a ``DeliveryModel`` (module docstring), while inside."""
    from moto.cloudwatch.models import CloudWatchBackend, Dimension
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.logs import models as logs_models

    model = DeliveryModel(account, clock or time.time)
    send = logs_models.LogStream._send_log_events
    list_metrics, get_metric_data = CloudWatchResponse.list_metrics, CloudWatchBackend.get_metric_data

    def send_log_events(stream: Any, service: str, destination_arn: str, filter_name: str, log_events: list[dict[str, Any]]) -> None:
        deliver = (lambda: send(stream, service, destination_arn, filter_name, log_events)) if service in ("kinesis", "firehose") else None
        model.deliver(stream.log_group.name, filter_name, destination_arn, log_events, deliver)

    def list_metrics_recently_active(response: Any) -> Any:
        token = _recently_active.set(response._get_param("RecentlyActive") == "PT3H")
        try:
            return list_metrics(response)
        finally:
            _recently_active.reset(token)

    def get_filtered_metrics(backend: Any, metric_name: str, namespace: str, dimensions: list[dict[str, str]]) -> list[Any]:
        """One entry per metric (moto's dedupe compares every dimension with every other: S8), those with a datapoint in
        the past three hours by the clock when RecentlyActive is PT3H (moto ignores it: S6)."""
        latest: dict[tuple[str, str, frozenset[tuple[str, str]]], Any] = {}
        for datum in backend.get_all_metrics():
            if not datum.filter(namespace=namespace, name=metric_name, dimensions=dimensions):
                continue
            key = (datum.namespace, datum.name, frozenset((d.name, d.value) for d in datum.dimensions))
            if key not in latest or latest[key].timestamp < datum.timestamp:
                latest[key] = datum
        found = list(latest.values())
        if _recently_active.get():
            since = model.now() - RECENTLY_ACTIVE
            found = [d for d in found if d.timestamp >= since]
        return found

    def get_metric_data_fixed(backend: Any, queries: list[dict[str, Any]], start_time: datetime, end_time: datetime,
                              scan_by: str = "TimestampAscending") -> list[dict[str, Any]]:
        """moto's, with the start rounded down to the whole minute (S7: "Start time less than 15 days ago - Round down to
        the nearest whole minute") and a metric's namespace compared when the query names dimensions (moto forgets it)."""
        start_time = start_time.replace(second=0, microsecond=0)
        if any("Expression" in q for q in queries):  # metric math reads the other queries' results: moto's, rounded only
            return get_metric_data(backend, queries, start_time, end_time, scan_by)
        answers = []
        for query in queries:
            stat = query.get("MetricStat")
            if stat is None:
                answers.extend(get_metric_data(backend, [query], start_time, end_time, scan_by))
                continue
            # A metric is its dimensions' combination, in any order ("CloudWatch treats each unique combination of dimensions
            # as a separate metric", User Guide, "Dimensions"); moto's Dimension.__lt__ compares a value with a name, so its
            # sorted() match depends on the order asked in: ask in the stored metric's order (S7).
            asked = {(d["Name"], d["Value"]) for d in stat["Metric"].get("Dimensions", [])}
            stored = next((d for d in backend.metric_data if d.name == stat["Metric"]["MetricName"] and d.namespace == stat["Metric"]["Namespace"]
                           and {(x.name, x.value) for x in d.dimensions} == asked and len(d.dimensions) == len(asked)), None)
            if stored is not None:
                query = {**query, "MetricStat": {**stat, "Metric": {**stat["Metric"], "Dimensions": [{"Name": x.name, "Value": x.value}
                                                                                                         for x in stored.dimensions]}}}
                stat = query["MetricStat"]
            wanted = sorted(Dimension(d["Name"], d["Value"]) for d in stat["Metric"].get("Dimensions", []))
            others = [d for d in backend.metric_data if wanted and d.name == stat["Metric"]["MetricName"]
                      and d.namespace != stat["Metric"]["Namespace"] and sorted(d.dimensions) == wanted]
            with mock.patch.object(backend, "metric_data", [d for d in backend.metric_data if not any(d is o for o in others)]):
                answers.extend(get_metric_data(backend, [query], start_time, end_time, scan_by))
        return answers

    def utcnow() -> datetime:
        return model.now()

    with mock.patch.object(logs_models.LogStream, "_send_log_events", send_log_events), \
            mock.patch.object(logs_models, "utcnow", utcnow), \
            mock.patch.object(CloudWatchResponse, "list_metrics", list_metrics_recently_active), \
            mock.patch.object(CloudWatchBackend, "get_filtered_metrics", get_filtered_metrics), \
            mock.patch.object(CloudWatchBackend, "get_metric_data", get_metric_data_fixed):
        yield model

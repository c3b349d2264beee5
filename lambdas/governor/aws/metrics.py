"""CloudWatch: the governed filters' delivery metrics, which CloudWatch Logs publishes in ``AWS/Logs`` (``DeliveryMetrics``),
read by the delivery-gap watch (governor.delivery_gaps)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import boto3

from .common import client_config

NAMESPACE = "AWS/Logs"
ERRORS, FORWARDED = "DeliveryErrors", "ForwardedLogEvents"
#: GetMetricData: "You can include as many as 500 MetricDataQuery structures in one request" (the model).
MAX_QUERIES = 500


class DeliveryMetrics:
    """DeliveryErrors and ForwardedLogEvents of the filters named ``filter_name``, a minute at a time."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        self._client = self._client or boto3.client("cloudwatch", config=client_config())
        return self._client

    def groups_with_errors(self, filter_name: str) -> list[tuple[str, str]]:
        """(LogGroupName, DestinationType) of each filter named ``filter_name`` with a DeliveryErrors datapoint in the past
        three hours (``RecentlyActive``: "PT3H" is its one value, the model)."""
        found: set[tuple[str, str]] = set()
        request: dict[str, Any] = {"Namespace": NAMESPACE, "MetricName": ERRORS, "RecentlyActive": "PT3H",
                                   "Dimensions": [{"Name": "FilterName", "Value": filter_name}]}
        while True:
            answer = self.client.list_metrics(**request)
            for metric in answer.get("Metrics", []):
                dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                if dimensions.get("FilterName") == filter_name and "LogGroupName" in dimensions:
                    found.add((dimensions["LogGroupName"], dimensions.get("DestinationType", "")))
            if not answer.get("NextToken"):
                return sorted(found)
            request["NextToken"] = answer["NextToken"]

    def per_minute(self, groups: list[tuple[str, str]], filter_name: str, *, start_ms: int, end_ms: int
                   ) -> dict[str, tuple[dict[int, float], dict[int, float]]]:
        """Each group's (DeliveryErrors, ForwardedLogEvents) Sum per 60 s from ``start_ms`` to ``end_ms`` (minute start, epoch
        ms -> sum; a minute without a datapoint is absent)."""
        queries, owners = [], {}
        for index, (group, kind) in enumerate(groups):
            for metric, tag in ((ERRORS, "e"), (FORWARDED, "f")):
                dimensions = [{"Name": "LogGroupName", "Value": group}, {"Name": "FilterName", "Value": filter_name}]
                if kind:
                    dimensions.append({"Name": "DestinationType", "Value": kind})
                queries.append({"Id": f"{tag}{index}", "ReturnData": True, "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dimensions}, "Period": 60, "Stat": "Sum"}})
                owners[f"{tag}{index}"] = group
        found: dict[str, tuple[dict[int, float], dict[int, float]]] = {group: ({}, {}) for group, _ in groups}
        for chunk in _chunks(queries, MAX_QUERIES):
            request: dict[str, Any] = {"MetricDataQueries": chunk, "ScanBy": "TimestampAscending",
                                       "StartTime": datetime.fromtimestamp(start_ms / 1000, timezone.utc),
                                       "EndTime": datetime.fromtimestamp(end_ms / 1000, timezone.utc)}
            while True:
                answer = self.client.get_metric_data(**request)
                for result in answer.get("MetricDataResults", []):
                    group = owners[result["Id"]]
                    series = found[group][0 if result["Id"].startswith("e") else 1]
                    for at, value in zip(result.get("Timestamps", []), result.get("Values", [])):
                        minute = int(at.timestamp() * 1000) // 60_000 * 60_000
                        series[minute] = series.get(minute, 0.0) + float(value)
                if not answer.get("NextToken"):
                    break
                request["NextToken"] = answer["NextToken"]
        return found


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]

"""EventBridge: the organization's fleet bus, where a finished run's coverage goes (``FleetBus``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3

from .common import client_config


class FleetBus:
    """The organization's fleet bus in the central account: a finished run's coverage goes there."""

    SOURCE = "log-group-governor"
    DETAIL_TYPE = "log-group-governor coverage"

    def __init__(self, bus_arn: str, client: Any = None) -> None:
        self.bus_arn = bus_arn
        self._client = client

    def put_coverage(self, detail: Mapping[str, Any]) -> None:
        client = self._client = self._client or boto3.client("events", config=client_config())
        answer = client.put_events(Entries=[{"EventBusName": self.bus_arn, "Source": self.SOURCE, "DetailType": self.DETAIL_TYPE,
                                             "Detail": json.dumps(detail)}])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"the fleet bus refused the coverage event: {answer['Entries']}")

"""EventBridge: the organization's fleet bus, where a finished run's coverage goes, and a new group's replay request to the
archive (#31) (``FleetBus``)."""

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
    #: A member asks the archive to pull what a group held before its filter (#31): the group and the filter, nothing
    #: else. The archive takes the account from the event's ``account`` (EventBridge sets it from the sender) and every
    #: time from the member's CloudWatch Logs, read through the member's role: no claim of the detail is trusted.
    REPLAY_DETAIL_TYPE = "log-group-governor replay request"  # governor.archive_names' (tests check they agree)

    def __init__(self, bus_arn: str, client: Any = None) -> None:
        self.bus_arn = bus_arn
        self._client = client

    def put_coverage(self, detail: Mapping[str, Any]) -> None:
        self._put(self.DETAIL_TYPE, detail, "the coverage event")

    def request_replay(self, log_group: str, filter_name: str, bounds: Mapping[str, int] | None = None, *,
                       requested_at_ms: int | None = None, gap: tuple[int, int] | None = None) -> None:
        """Ask the archive to pull what ``log_group`` held before the filter ``filter_name`` (just put, to the archive's
        destination), within this member's ``bounds`` (replayWindowMinutes, replayMaxEvents, replayMaxBytes).
        ``requested_at_ms``: now, after the put (the archive tells the filter asked for from one put again later). A
        refusal raises: the event comes back, finds the filter in place and asks again (the archive's ledger sends nothing
        twice). ``gap``: a delivery gap's window instead (ingestion times, epoch ms, both included; governor.delivery_gaps)."""
        self._put(self.REPLAY_DETAIL_TYPE, {"logGroup": log_group, "filterName": filter_name, **(bounds or {}),
                                            **({"requestedAtMs": requested_at_ms} if requested_at_ms is not None else {}),
                                            **({"gapFromMs": gap[0], "gapUntilMs": gap[1]} if gap is not None else {})}, "the replay request")

    def _put(self, detail_type: str, detail: Mapping[str, Any], what: str) -> None:
        client = self._client = self._client or boto3.client("events", config=client_config())
        answer = client.put_events(Entries=[{"EventBusName": self.bus_arn, "Source": self.SOURCE, "DetailType": detail_type,
                                             "Detail": json.dumps(detail)}])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"the fleet bus refused {what}: {answer['Entries']}")

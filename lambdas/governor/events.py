"""Read the EventBridge event CloudTrail emits for a CreateLogGroup call.

Only the log group's name is taken from the event: class, tags and filters are looked up, because
the event can be stale, replayed or out of order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
LOGS_EVENT_SOURCE = "logs.amazonaws.com"
CREATE_LOG_GROUP = "CreateLogGroup"

#: The EventBridge pattern the stack's rule uses; kept here so the rule and the parser agree.
CREATE_LOG_GROUP_PATTERN: dict[str, Any] = {
    "source": ["aws.logs"],
    "detail-type": [CLOUDTRAIL_DETAIL_TYPE],
    "detail": {"eventSource": [LOGS_EVENT_SOURCE], "eventName": [CREATE_LOG_GROUP]},
}

MAX_LOG_GROUP_NAME_LENGTH = 512
#: The API's own rule for a log group name (botocore's service model, shape LogGroupName: 1-512 of
#: these characters). moto accepts any name; AWS answers InvalidParameterException.
LOG_GROUP_NAME = re.compile(r"[\.\-_/#A-Za-z0-9]{1,512}")


class IgnoredEvent(ValueError):
    """The event is not a usable CreateLogGroup call. Retrying cannot fix it, so it is logged and finished."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class CreateLogGroupCall:
    log_group_name: str
    event_id: str | None
    error_code: str | None


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise IgnoredEvent("malformed-event", f"{where} should be an object, got {type(value).__name__}")
    return value


def parse_create_log_group(event: Any) -> CreateLogGroupCall:
    event = _mapping(event, "the event")
    detail = _mapping(event.get("detail"), "detail")
    if event.get("detail-type") != CLOUDTRAIL_DETAIL_TYPE or detail.get("eventSource") != LOGS_EVENT_SOURCE:
        raise IgnoredEvent(
            "not-create-log-group",
            f"detail-type {event.get('detail-type')!r} from {detail.get('eventSource')!r} is not a CloudTrail record of CloudWatch Logs",
        )
    if detail.get("eventName") != CREATE_LOG_GROUP:
        raise IgnoredEvent("not-create-log-group", f"eventName is {detail.get('eventName')!r}, not {CREATE_LOG_GROUP}")
    parameters = _mapping(detail.get("requestParameters"), "detail.requestParameters")
    name = parameters.get("logGroupName")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_LOG_GROUP_NAME_LENGTH:
        raise IgnoredEvent("malformed-event", f"detail.requestParameters.logGroupName should be a log group name, got {name!r}")
    if not LOG_GROUP_NAME.fullmatch(name):
        # CloudTrail records refused calls too: no such group can exist, so there is nothing to govern.
        raise IgnoredEvent("invalid-log-group-name", f"{name!r} is not a name CloudWatch Logs accepts (1-512 of A-Z a-z 0-9 . - _ / #)")
    event_id = detail.get("eventID")
    error_code = detail.get("errorCode")
    return CreateLogGroupCall(
        log_group_name=name,
        event_id=event_id if isinstance(event_id, str) else None,
        error_code=error_code if isinstance(error_code, str) else None,
    )

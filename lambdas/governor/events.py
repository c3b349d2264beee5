"""Read the EventBridge events CloudTrail emits for the calls that create or change a log group.

A CreateLogGroup call, and the calls that can undo the governor's work afterwards (drift): its filter
deleted or replaced, retention put or deleted, tags added or removed. Only the log group's name (and
who made the call) is taken from the event: class, retention, tags and filters are looked up, because
the event can be stale, replayed or out of order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .controls import REGISTRY

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
LOGS_EVENT_SOURCE = "logs.amazonaws.com"
CREATE_LOG_GROUP = "CreateLogGroup"
#: Calls that change what the governor set, by the aspect they change (each control's module declares its own, with the
#: request fields naming the group and where the record's shape comes from): each makes that aspect's handler look the
#: group up again. A repair after one of them counts towards a fight.
DRIFT_EVENTS: Mapping[str, tuple[str, ...]] = {c.aspect: tuple(u.event_name for u in c.undone_by) for c in REGISTRY}
#: Tagging calls can add or remove an opt-out tag: both aspects look again (never counted as a fight).
TAG_EVENTS = ("TagResource", "UntagResource", "TagLogGroup", "UntagLogGroup")
EVENTS_BY_ASPECT: Mapping[str, tuple[str, ...]] = {
    aspect: (CREATE_LOG_GROUP, *drift, *TAG_EVENTS) for aspect, drift in DRIFT_EVENTS.items()
}
#: subscriptionMode account-policy also watches what undoes the account policy: a deleted group leaves
#: its name in the NOT IN list (25 KB fill up), and someone may replace or delete the policy itself.
DELETE_LOG_GROUP = "DeleteLogGroup"
ACCOUNT_POLICY_EVENTS = ("PutAccountPolicy", "DeleteAccountPolicy")
ACCOUNT_POLICY_MODE_EVENTS = (DELETE_LOG_GROUP, *ACCOUNT_POLICY_EVENTS)
#: The calls on one log group each handler reads (its rule sends a subset, by mode).
GROUP_CALLS_BY_ASPECT: Mapping[str, tuple[str, ...]] = {
    **EVENTS_BY_ASPECT, "subscription": (*EVENTS_BY_ASPECT["subscription"], DELETE_LOG_GROUP),
}


def event_pattern(aspect: str, *, account_policy: bool = False, own_roles: list[str] | None = None,
                  account: str | None = None, region: str | None = None) -> dict[str, Any]:
    """The EventBridge pattern of ``aspect``'s rule; kept here so the rules and the parser agree.
    ``account_policy``: the aspect is enforced by an account-level policy, so a group's own filter or
    retention calls are no drift of the governor's (only creation and tags matter). ``own_roles``: the
    governor's roles, whose calls never wake it. ``account``, ``region``: this governor's; a bus that
    also carries other accounts' or regions' records (an organization's, a replay) must not wake it."""
    names = [n for n in EVENTS_BY_ASPECT[aspect] if not (account_policy and n in DRIFT_EVENTS.get(aspect, ()))]
    if account_policy and aspect == "subscription":
        names += ACCOUNT_POLICY_MODE_EVENTS
    detail: dict[str, Any] = {"eventSource": [LOGS_EVENT_SOURCE], "eventName": names}
    if own_roles:
        # Any record but an assumed role of the governor's own. An absent field never matches
        # anything-but, so a record without a session issuer needs its own branch, or it is lost.
        detail["$or"] = [
            {"userIdentity": {"type": [{"anything-but": "AssumedRole"}]}},
            {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"anything-but": own_roles}]}}}},
            {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"exists": False}]}}}},
        ]
    pattern: dict[str, Any] = {"source": ["aws.logs"], "detail-type": [CLOUDTRAIL_DETAIL_TYPE], "detail": detail}
    if account:
        pattern["account"] = [account]
    if region:
        pattern["region"] = [region]
    return pattern

_LOG_GROUP_ARN = re.compile(r"^arn:[a-z-]+:logs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):log-group:(?P<name>[^:]+)(?::\*)?$")

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
class LogGroupCall:
    """A CloudTrail record of a call on one log group."""

    event_name: str
    log_group_name: str
    event_id: str | None
    error_code: str | None
    #: Who made the call: the role behind an assumed-role session, else the identity's ARN (or the
    #: service that made it); None when the record does not say.
    principal: str | None = None
    #: The tags a successful CreateLogGroup asked for (``requestParameters.tags``; None when the record names none).
    #: A bulk tag look-up made seconds after the creation may not show them yet: the handlers add these to it.
    created_with_tags: Mapping[str, str] | None = None

    @property
    def is_tag_change(self) -> bool:
        return self.event_name in TAG_EVENTS

    @property
    def is_drift(self) -> bool:
        """A call that can undo what the governor set (tagging is a choice, not drift)."""
        return any(self.event_name in names for names in DRIFT_EVENTS.values())



@dataclass(frozen=True)
class AccountPolicyCall:
    """A CloudTrail record of PutAccountPolicy or DeleteAccountPolicy (its request's policyName and
    policyType; the record's shape for these calls is *assumed*, localaws/FIDELITY.md E1)."""

    event_name: str
    policy_name: str
    policy_type: str
    event_id: str | None
    principal: str | None = None


def parse_account_policy_call(event: Any, *, origin: tuple[str, str] | None = None) -> AccountPolicyCall:
    event = _mapping(event, "the event")
    detail = _mapping(event.get("detail"), "detail")
    if origin is not None:
        _check_origin(event, detail, origin)
    if detail.get("eventName") not in ACCOUNT_POLICY_EVENTS or detail.get("eventSource") != LOGS_EVENT_SOURCE:
        raise IgnoredEvent("not-for-this-handler", f"eventName is {detail.get('eventName')!r}, not an account policy call")
    if isinstance(detail.get("errorCode"), str):
        raise IgnoredEvent("call-failed", f"{detail['eventName']} failed with {detail['errorCode']}: it changed nothing")
    parameters = _mapping(detail.get("requestParameters"), "detail.requestParameters")
    name, policy_type = parameters.get("policyName"), parameters.get("policyType")
    if not isinstance(name, str) or not isinstance(policy_type, str):
        raise IgnoredEvent("malformed-event", "detail.requestParameters should name policyName and policyType")
    event_id = detail.get("eventID")
    return AccountPolicyCall(detail["eventName"], name, policy_type, event_id if isinstance(event_id, str) else None,
                             _principal(detail.get("userIdentity")))


def is_account_policy_call(event: Any) -> bool:
    detail = event.get("detail") if isinstance(event, Mapping) else None
    return isinstance(detail, Mapping) and detail.get("eventName") in ACCOUNT_POLICY_EVENTS


#: Calls that can point a Lambda destination's own logs at another group (its LoggingConfig). CloudTrail
#: names Lambda's calls with their API version (``UpdateFunctionConfiguration20150331v2``): matched by prefix.
DESTINATION_CALL_PREFIXES = ("CreateFunction", "UpdateFunctionConfiguration")
LAMBDA_EVENT_SOURCE = "lambda.amazonaws.com"


def destination_pattern(function_name: str, *, account: str | None = None, region: str | None = None) -> dict[str, Any]:
    """The rule that wakes the subscribe handler when the Lambda destination is created or reconfigured."""
    pattern: dict[str, Any] = {
        "source": ["aws.lambda"], "detail-type": [CLOUDTRAIL_DETAIL_TYPE],
        "detail": {"eventSource": [LAMBDA_EVENT_SOURCE], "eventName": [{"prefix": p} for p in DESTINATION_CALL_PREFIXES],
                   "requestParameters": {"functionName": [function_name, {"suffix": f":function:{function_name}"}]}},
    }
    if account:
        pattern["account"] = [account]
    if region:
        pattern["region"] = [region]
    return pattern


@dataclass(frozen=True)
class DestinationCall:
    """A CloudTrail record of the Lambda destination being created or reconfigured."""

    event_name: str
    function_name: str
    event_id: str | None
    principal: str | None = None


def is_destination_call(event: Any) -> bool:
    detail = event.get("detail") if isinstance(event, Mapping) else None
    return isinstance(detail, Mapping) and detail.get("eventSource") == LAMBDA_EVENT_SOURCE


def parse_destination_call(event: Any, function_name: str, *, origin: tuple[str, str] | None = None) -> DestinationCall:
    event = _mapping(event, "the event")
    detail = _mapping(event.get("detail"), "detail")
    if origin is not None:
        _check_origin(event, detail, origin)
    name = detail.get("eventName")
    if not isinstance(name, str) or not name.startswith(DESTINATION_CALL_PREFIXES):
        raise IgnoredEvent("not-for-this-handler", f"eventName is {name!r}, not a change of the destination function")
    if isinstance(detail.get("errorCode"), str):
        raise IgnoredEvent("call-failed", f"{name} failed with {detail['errorCode']}: it changed nothing")
    parameters = _mapping(detail.get("requestParameters"), "detail.requestParameters")
    called = parameters.get("functionName")
    if not isinstance(called, str) or called.rsplit(":function:", 1)[-1].split(":", 1)[0] != function_name:
        raise IgnoredEvent("not-the-destination", f"{name} of {called!r}, not the destination function {function_name}")
    event_id = detail.get("eventID")
    return DestinationCall(name, function_name, event_id if isinstance(event_id, str) else None, _principal(detail.get("userIdentity")))


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise IgnoredEvent("malformed-event", f"{where} should be an object, got {type(value).__name__}")
    return value


def parse_log_group_call(event: Any, event_names: tuple[str, ...], *, origin: tuple[str, str] | None = None) -> LogGroupCall:
    """A CloudTrail record of one of ``event_names`` on a log group; anything else is an IgnoredEvent.
    ``origin``: this governor's (account, region); a record of another account or region names another
    group that happens to share the name, and is ignored."""
    event = _mapping(event, "the event")
    detail = _mapping(event.get("detail"), "detail")
    if origin is not None:
        _check_origin(event, detail, origin)
    if event.get("detail-type") != CLOUDTRAIL_DETAIL_TYPE or detail.get("eventSource") != LOGS_EVENT_SOURCE:
        raise IgnoredEvent(
            "not-a-log-group-call",
            f"detail-type {event.get('detail-type')!r} from {detail.get('eventSource')!r} is not a CloudTrail record of CloudWatch Logs",
        )
    event_name = detail.get("eventName")
    if event_name not in event_names:
        raise IgnoredEvent("not-for-this-handler", f"eventName is {event_name!r}; this handler acts on {', '.join(event_names)}")
    error_code = detail.get("errorCode")
    error_code = error_code if isinstance(error_code, str) else None
    if error_code and event_name != CREATE_LOG_GROUP:
        # A refused call changed nothing. (A refused CreateLogGroup may mean the group exists: governed.)
        raise IgnoredEvent("call-failed", f"{event_name} failed with {error_code}: it changed nothing")
    parameters = _mapping(detail.get("requestParameters"), "detail.requestParameters")
    name = _log_group_name(parameters, origin)
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_LOG_GROUP_NAME_LENGTH:
        raise IgnoredEvent("malformed-event", f"detail.requestParameters.logGroupName should be a log group name, got {name!r}")
    if not LOG_GROUP_NAME.fullmatch(name):
        # CloudTrail records refused calls too: no such group can exist, so there is nothing to govern.
        raise IgnoredEvent("invalid-log-group-name", f"{name!r} is not a name CloudWatch Logs accepts (1-512 of A-Z a-z 0-9 . - _ / #)")
    event_id = detail.get("eventID")
    return LogGroupCall(
        event_name=event_name,
        log_group_name=name,
        event_id=event_id if isinstance(event_id, str) else None,
        error_code=error_code,
        principal=_principal(detail.get("userIdentity")),
        created_with_tags=_created_with_tags(event_name, error_code, parameters),
    )


def _created_with_tags(event_name: str, error_code: str | None, parameters: Mapping[str, Any]) -> Mapping[str, str] | None:
    """The record's ``tags`` of a CreateLogGroup that succeeded (the request's shape: a map of strings; that
    CloudTrail records it is *assumed*, localaws/FIDELITY.md E5). A refused call tagged nothing."""
    tags = parameters.get("tags")
    if event_name != CREATE_LOG_GROUP or error_code or not isinstance(tags, Mapping):
        return None
    return {str(k): str(v) for k, v in tags.items() if isinstance(k, str) and isinstance(v, str)}


def _check_origin(event: Mapping[str, Any], detail: Mapping[str, Any], origin: tuple[str, str]) -> None:
    account, region = origin
    for where, value, expected in (("account", event.get("account"), account), ("detail.recipientAccountId", detail.get("recipientAccountId"), account),
                                   ("region", event.get("region"), region), ("detail.awsRegion", detail.get("awsRegion"), region)):
        if isinstance(value, str) and value and value != expected:
            raise IgnoredEvent("foreign-origin", f"{where} is {value}; this governor governs {account} in {region}")


def _log_group_name(parameters: Mapping[str, Any], origin: tuple[str, str] | None = None) -> Any:
    """``logGroupName``; TagResource and UntagResource name the group by ARN (``resourceArn``), the newer calls by
    ``logGroupIdentifier`` (a name or an ARN), some by either ``logGroupName`` or ``resourceIdentifier`` (an ARN; the API
    model; each control's module names the fields of the calls that undo it). Other resources (destinations, deliveries) can be tagged too: those are
    not ours, nor a group of another account or region."""
    if "logGroupName" in parameters:
        return parameters["logGroupName"]
    identifier = next((parameters[key] for key in ("resourceArn", "logGroupIdentifier", "resourceIdentifier") if key in parameters), None)
    if isinstance(identifier, str) and identifier.startswith("arn:"):
        match = _LOG_GROUP_ARN.match(identifier)
        if not match:
            raise IgnoredEvent("not-a-log-group", f"{identifier!r} is not a log group")
        if origin is not None and (match["account"], match["region"]) != origin:
            raise IgnoredEvent("foreign-origin", f"{identifier!r} is a group of {match['account']} in {match['region']}; "
                                                 f"this governor governs {origin[0]} in {origin[1]}")
        return match["name"]
    return identifier


def _principal(identity: Any) -> str | None:
    if not isinstance(identity, Mapping):
        return None
    issuer = identity.get("sessionContext", {}).get("sessionIssuer", {}) if isinstance(identity.get("sessionContext"), Mapping) else {}
    for candidate in (issuer.get("arn") if isinstance(issuer, Mapping) else None, identity.get("arn"), identity.get("invokedBy")):
        if isinstance(candidate, str) and candidate:
            return candidate
    return None

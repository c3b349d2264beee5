"""The CloudWatch Logs subscription event: {"awslogs": {"data": base64(gzip(JSON))}}."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import codec

DATA_MESSAGE = "DATA_MESSAGE"
#: CloudWatch Logs sends one when a subscription is created, to check the destination is reachable.
CONTROL_MESSAGE = "CONTROL_MESSAGE"


class CorruptPayload(ValueError):
    """The event cannot be decoded: retrying cannot fix it."""


class LogEvent(NamedTuple):
    """A tuple: ten thousand of them a batch cost a fraction of as many dataclass instances."""

    id: str
    timestamp_ms: int
    message: str


@dataclass(frozen=True)
class LogBatch:
    message_type: str
    owner: str
    log_group: str
    log_stream: str
    subscription_filters: tuple[str, ...]
    events: tuple[LogEvent, ...]
    #: Events left out because they were not {id, timestamp, message} (the rest of the batch is kept).
    malformed_events: int = 0
    #: ``ACCOUNT_LEVEL_POLICY`` for a batch an account-level subscription filter policy delivered.
    policy_level: str | None = None
    #: The source group's region (not in the payload: the invocation's, or the Kinesis record's,
    #: since a CloudWatch Logs destination takes only groups of its own region).
    region: str | None = None

    @property
    def is_control(self) -> bool:
        return self.message_type == CONTROL_MESSAGE


def decode_json(event: Any) -> dict[str, Any]:
    """base64, gunzip, JSON: the floor of what shipping a batch costs."""
    if not isinstance(event, Mapping) or not isinstance(event.get("awslogs"), Mapping):
        raise CorruptPayload('not a CloudWatch Logs subscription event: expected {"awslogs": {"data": ...}}')
    return decode_data(event["awslogs"].get("data"))


def decode_data(data: Any, what: str = "awslogs.data") -> dict[str, Any]:
    """One subscription document: base64 of gzip of JSON (the Lambda event's ``awslogs.data``, or a
    Kinesis record's ``kinesis.data``: CloudWatch Logs writes the same document to both)."""
    return _document(_gunzipped(data, what), what)


def _gunzipped(data: Any, what: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise CorruptPayload(f"{what} is missing or not a string")
    try:
        return codec.gunzip(base64.b64decode(data, validate=True))
    except codec.GzipError as error:
        raise CorruptPayload(f"{what} is not gzip: {error}") from None
    except (binascii.Error, ValueError) as error:
        raise CorruptPayload(f"{what} is not base64 of gzip of JSON: {error}") from None
    except MemoryError:
        raise CorruptPayload(f"{what} does not fit the function's memory once inflated") from None


def _document(raw: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise CorruptPayload(f"{what} is not base64 of gzip of JSON: {error}") from None
    except (RecursionError, MemoryError) as error:  # nested deeper than Python parses, or too large: this record alone
        raise CorruptPayload(f"{what} cannot be read: {type(error).__name__}") from None
    if not isinstance(document, dict):
        raise CorruptPayload(f"{what} decodes to {type(document).__name__}, not an object")
    return document


def decode_batch(event: Any, *, region: str | None = None) -> LogBatch:
    if not isinstance(event, Mapping) or not isinstance(event.get("awslogs"), Mapping):
        raise CorruptPayload('not a CloudWatch Logs subscription event: expected {"awslogs": {"data": ...}}')
    return _batch(event["awslogs"].get("data"), "awslogs.data", region)


def decode_kinesis_record(record: Any) -> LogBatch:
    """A Kinesis record of a stream behind a CloudWatch Logs destination (the central archive)."""
    if not isinstance(record, Mapping) or not isinstance(record.get("kinesis"), Mapping):
        raise CorruptPayload('not a Kinesis record: expected {"kinesis": {"data": ...}}')
    region = record.get("awsRegion")
    return _batch(record["kinesis"].get("data"), "kinesis.data", region if isinstance(region, str) else None)


def _batch(data: Any, what: str, region: str | None) -> LogBatch:
    raw = _gunzipped(data, what)
    # The compiled decoder reads a well-formed document straight into events; anything else (a
    # malformed event, an unexpected type) is read the standard library's way, which says why.
    batch = _typed_batch(raw, region) if _typed_batch is not None else None
    return batch if batch is not None else batch_of(_document(raw, what), region=region)


def batch_of(document: dict[str, Any], *, region: str | None = None) -> LogBatch:
    message_type = document.get("messageType")
    if message_type not in (DATA_MESSAGE, CONTROL_MESSAGE):
        raise CorruptPayload(f"messageType is {message_type!r}, not {DATA_MESSAGE} or {CONTROL_MESSAGE}")
    raw_events = document.get("logEvents") or []
    if not isinstance(raw_events, list):
        raise CorruptPayload("logEvents is not a list")
    events, malformed = [], 0
    for raw in raw_events:
        if (isinstance(raw, dict) and isinstance(raw.get("id"), str) and isinstance(raw.get("timestamp"), int)
                and isinstance(raw.get("message"), str)):
            events.append(LogEvent(raw["id"], raw["timestamp"], raw["message"]))
        else:
            malformed += 1
    return LogBatch(
        message_type=message_type,
        owner=str(document.get("owner", "")),
        log_group=str(document.get("logGroup", "")),
        log_stream=str(document.get("logStream", "")),
        subscription_filters=tuple(str(f) for f in document.get("subscriptionFilters") or ()),
        events=tuple(events),
        malformed_events=malformed,
        policy_level=str(document["policyLevel"]) if document.get("policyLevel") else None,
        region=region,
    )


_msgspec = codec.compiled_json()
_typed_batch: Any = None
if _msgspec is not None:
    class _Event(_msgspec.Struct, frozen=True, gc=False):
        """A LogEvent by its attributes, built by the decoder itself: no Python loop over the events."""

        id: str
        timestamp_ms: int = _msgspec.field(name="timestamp")
        message: str

    class _Document(_msgspec.Struct, gc=False):
        messageType: str
        owner: str = ""
        logGroup: str = ""
        logStream: str = ""
        subscriptionFilters: list[str] = []
        logEvents: list[_Event] | None = None
        policyLevel: str | None = None

    _decode_document = _msgspec.json.Decoder(_Document).decode
    _decode_errors = (_msgspec.DecodeError, _msgspec.ValidationError, RecursionError, MemoryError)

    def _typed_batch(raw: bytes, region: str | None) -> LogBatch | None:  # noqa: F811
        try:
            document = _decode_document(raw)
        except _decode_errors:
            return None
        if document.messageType not in (DATA_MESSAGE, CONTROL_MESSAGE):
            return None
        return LogBatch(
            message_type=document.messageType, owner=document.owner, log_group=document.logGroup,
            log_stream=document.logStream, subscription_filters=tuple(document.subscriptionFilters),
            events=tuple(document.logEvents or ()), policy_level=document.policyLevel or None, region=region,
        )


def encode_batch(document: Mapping[str, Any]) -> dict[str, Any]:
    """The subscription event CloudWatch Logs would send for ``document`` (for tests, demo, benchmarks)."""
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()}}

"""Every line Lambda and its runtimes write, into records; REPORT lines and MONITORING lines into metrics.

A record is a plain dict, ready to serialize:
``{"@timestamp", "eventId", "logGroup", "logStream", "owner" (the source account), "region", "function", "requestId", "level",
"type", "message", "fields"}``. ``type`` is ``app`` for what the function wrote and
``platform.<event>`` for Lambda's own lines (``platform.start``, ``platform.report``, ...).
``fields`` keeps every field of a structured (JSON) line, so correlation IDs, user agents and flags
stay searchable rather than buried in a string.

Lines are told apart by their first character, so the common cases cost one comparison and a
``split`` (or one ``json.loads``) rather than a regular expression.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .payload import LogBatch

LEVELS = frozenset({"TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"})
MONITORING_PREFIX = "MONITORING|"
#: Lines that continue the previous line's message (a stack trace written line by line).
_INDENTED = (" ", "\t")
#: Lines that go on a stack trace already begun, never an ordinary record.
_TRACE_LINKS = ("Caused by:", "During handling of the above exception", "The above exception was the direct cause")
TRACEBACK_START = "Traceback (most recent call last)"
#: The line a Python traceback ends with: ``ValueError: card expired`` (a dotted exception name).
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning|Iteration)\b")
#: A message's levels that a traceback printed after it belongs to (logger.error, then print_exc).
_ERROR_LEVELS = frozenset({"ERROR", "FATAL"})
#: The last millisecond ``datetime`` can show (9999-12-31T23:59:59.999Z); a timestamp beyond is clamped.
MAX_TIMESTAMP_MS = 253_402_300_799_999
#: CloudWatch metric units as people write them (lower-cased) -> the unit CloudWatch takes.
UNITS = {
    "count": "Count", "counts": "Count", "": "None", "none": "None",
    "percent": "Percent", "%": "Percent", "pct": "Percent",
    "seconds": "Seconds", "second": "Seconds", "s": "Seconds", "sec": "Seconds", "secs": "Seconds",
    "milliseconds": "Milliseconds", "millisecond": "Milliseconds", "ms": "Milliseconds", "msec": "Milliseconds",
    "microseconds": "Microseconds", "microsecond": "Microseconds", "us": "Microseconds", "µs": "Microseconds",
    "bytes": "Bytes", "byte": "Bytes", "b": "Bytes", "kilobytes": "Kilobytes", "kb": "Kilobytes",
    "megabytes": "Megabytes", "mb": "Megabytes", "gigabytes": "Gigabytes", "gb": "Gigabytes",
    "terabytes": "Terabytes", "tb": "Terabytes", "bits": "Bits", "bit": "Bits", "kilobits": "Kilobits",
    "megabits": "Megabits", "gigabits": "Gigabits", "terabits": "Terabits",
    "bytes/second": "Bytes/Second", "bytes/s": "Bytes/Second", "kilobytes/second": "Kilobytes/Second",
    "megabytes/second": "Megabytes/Second", "bits/second": "Bits/Second", "count/second": "Count/Second",
    "count/s": "Count/Second", "per second": "Count/Second",
}
_CANONICAL_UNITS = {unit.lower(): unit for unit in set(UNITS.values())}
MAX_METRIC_NAME = 255


@dataclass(frozen=True)
class UsageReport:
    """What a REPORT line says about one invocation."""

    function: str | None
    timestamp_ms: int
    duration_ms: float
    billed_duration_ms: float
    memory_size_mb: float
    max_memory_used_mb: float
    init_duration_ms: float | None

    @property
    def cold_start(self) -> bool:
        return self.init_duration_ms is not None


@dataclass(frozen=True)
class CustomMetric:
    """A MONITORING|<value>|<unit>|<name>|<namespace> line."""

    function: str | None
    timestamp_ms: int
    namespace: str
    name: str
    unit: str
    value: float


@dataclass
class Parsed:
    records: list[dict[str, Any]] = field(default_factory=list)
    usage: list[UsageReport] = field(default_factory=list)
    custom: list[CustomMetric] = field(default_factory=list)
    #: MONITORING lines that could not be read: shipped as ordinary records, kept here to be logged.
    malformed_monitoring: list[str] = field(default_factory=list)


def function_name(log_group: str) -> str | None:
    return log_group[len("/aws/lambda/"):] if log_group.startswith("/aws/lambda/") else None


def iso_time(timestamp_ms: int) -> str:
    return _IsoTimes()(timestamp_ms)


class _IsoTimes:
    """iso_time with the date and time formatted once per second: a batch's events share their seconds."""

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}

    def __call__(self, timestamp_ms: int) -> str:
        # A timestamp out of datetime's range (a producer's bug) must not sink the batch: clamp it.
        second, millis = divmod(min(max(timestamp_ms, 0), MAX_TIMESTAMP_MS), 1000)
        prefix = self._seconds.get(second)
        if prefix is None:
            prefix = self._seconds[second] = datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
        return f"{prefix}{millis:03d}Z"


def parse_batch(batch: LogBatch) -> Parsed:
    parsed = Parsed()
    function = function_name(batch.log_group)
    previous: dict[str, Any] | None = None
    #: Where ``previous`` stands in a Python traceback (_PLAIN: it is not one); blank lines held back.
    trace = _PLAIN
    blanks = 0
    # A log stream is one execution environment, which runs one invocation at a time: lines without
    # a request id (print() output) belong to the invocation whose START came last.
    current_request: str | None = None
    iso = _IsoTimes()
    log_group, log_stream, owner, region = batch.log_group, batch.log_stream, batch.owner, batch.region
    records = parsed.records
    for event in batch.events:
        message = event.message
        if "\r" in message:  # the Python runtime writes multi-line messages with \r as the line break
            message = message.replace("\r", "\n")
        if message.endswith("\n"):
            message = message.rstrip("\n")
        if previous is not None and previous["type"] == "app":
            step = _trace_step(trace, previous, message)
            if step is not None:
                trace = step
                if not message:
                    blanks += 1  # kept only if the trace goes on after it
                    continue
                previous["message"] += "\n" * (blanks + 1) + message
                blanks = 0
                continue
        blanks = 0
        trace = _OPEN if message.startswith(TRACEBACK_START) else _PLAIN
        record = {
            "@timestamp": iso(event.timestamp_ms),
            "eventId": event.id,
            "logGroup": log_group,
            "logStream": log_stream,
            "owner": owner,
            "region": region,
            "function": function,
            "requestId": None,
            "level": None,
            "type": "app",
            "message": message,
            "fields": None,
        }
        _read_line(record, message, event.timestamp_ms, function, parsed)
        if trace == _OPEN and record["level"] is None:
            record["level"] = "ERROR"
        if record["requestId"] is None:
            record["requestId"] = current_request
        elif record["type"] == "platform.start":
            current_request = record["requestId"]
        records.append(record)
        previous = record
    return parsed


_PLAIN, _OPEN, _CLOSED, _LINKED = "plain", "open", "closed", "linked"


def _trace_step(trace: str, previous: dict[str, Any], message: str) -> str | None:
    """If ``message`` goes on the previous record, where its traceback stands after it (_PLAIN for
    none); None if it is a record of its own.

    Indented lines (stack frames) always go on. A Python traceback ends with its exception line;
    a chained one (``During handling ...``, blank lines, another ``Traceback``) goes on after it. A
    traceback printed right after a logged error belongs to it; after anything else it is a record
    of its own.
    """
    if message.startswith(_INDENTED):
        return trace
    if trace == _OPEN:
        if _EXCEPTION_LINE.match(message):
            return _CLOSED
        return _OPEN if not message or message.startswith(_TRACE_LINKS) else None
    if trace in (_CLOSED, _LINKED):
        if not message or message.startswith(_TRACE_LINKS):
            return _LINKED if message else trace
        if trace == _LINKED and message.startswith(TRACEBACK_START):
            return _OPEN
        return None
    if message.startswith(TRACEBACK_START):
        return _OPEN if previous["level"] in _ERROR_LEVELS and "\n" not in previous["message"] else None
    if "\n" in previous["message"] and message.startswith(_TRACE_LINKS):
        return _PLAIN  # a chain after a stack written line by line (Java's "Caused by:")
    return None


def _read_line(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    first = message[:1]
    if first == "{":
        _read_json(record, message, timestamp_ms, function, parsed)
    elif first == "[":
        _read_bracketed_level(record, message)
    elif first == "S" and message.startswith("START RequestId: "):
        _read_start(record, message)
    elif first == "E" and message.startswith("END RequestId: "):
        record["type"], record["requestId"], record["level"] = "platform.end", message[15:].split(" ", 1)[0].strip(), "INFO"
    elif first == "R" and message.startswith("REPORT RequestId: "):
        _read_report(record, message, timestamp_ms, function, parsed)
    elif first == "I" and message.startswith(("INIT_START ", "INIT_REPORT ")):
        record["type"] = "platform.initStart" if message.startswith("INIT_START") else "platform.initReport"
        record["fields"] = _tab_pairs(message.split(" ", 1)[1])
    elif first.isdigit():
        _read_tabbed(record, message)
    else:
        _read_plain(record, message)
    text = record["message"]
    if text.startswith(MONITORING_PREFIX) and function is not None:
        _read_monitoring(text, timestamp_ms, function, parsed)


def _no_constant(name: str) -> None:
    """NaN and Infinity are not JSON: OpenSearch refuses a document holding them. Kept as null."""
    return None


#: The C scanner behind json.loads, called directly: two Python frames fewer per structured line.
_scan_json = json.JSONDecoder(parse_constant=_no_constant).scan_once


def _read_json(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    try:
        document, end = _scan_json(message, 0)
    except (StopIteration, ValueError, RecursionError):  # RecursionError: nested deeper than Python parses
        document, end = None, 0
    if end != len(message) and message[end:].strip():  # not one JSON value: plain text that starts with {
        document = None
    if not isinstance(document, dict):
        _read_plain(record, message)
        return
    kind = document.get("type")
    if isinstance(kind, str) and kind.startswith("platform.") and isinstance(document.get("record"), dict):
        # Lambda's JSON log format for its own lines.
        platform = document["record"]
        record["type"], record["requestId"], record["fields"] = kind, platform.get("requestId"), platform
        record["level"] = "INFO"
        if kind == "platform.report":
            _usage_from_json(platform, timestamp_ms, function, parsed)
        return
    record["fields"] = document
    level = document.get("level") or document.get("levelname") or document.get("severity") or document.get("log_level")
    record["level"] = _level(level) if isinstance(level, str) else None
    text = document.get("message", document.get("msg"))
    record["message"] = text if isinstance(text, str) else json.dumps(text) if text is not None else message
    request_id = document.get("requestId") or document.get("function_request_id") or document.get("request_id") or document.get("AWSRequestId")
    record["requestId"] = request_id if isinstance(request_id, str) else None
    if record["function"] is None and isinstance(document.get("function_name"), str):
        # Searchable on the record; never a metric dimension (metrics come from the log group alone).
        record["function"] = document["function_name"]


def _read_bracketed_level(record: dict[str, Any], message: str) -> None:
    """The Python runtime: ``[LEVEL]\\t<time>\\t<request id>\\t<message>``, or ``[ERROR] Exception: ...`` for an uncaught one."""
    close = message.find("]")
    level = message[1:close] if 0 < close < 10 else ""
    if level.upper() not in LEVELS:
        _read_plain(record, message)
        return
    record["level"] = _level(level)
    parts = message.split("\t", 3)
    if len(parts) == 4:
        record["requestId"], record["message"] = parts[2], parts[3]
    else:
        record["message"] = message[close + 1:].lstrip()


def _read_tabbed(record: dict[str, Any], message: str) -> None:
    """Node.js, Java and .NET runtimes: ``<time>\\t<request id>\\t<LEVEL>\\t<message>``."""
    parts = message.split("\t", 3)
    if len(parts) == 4 and parts[2].upper() in LEVELS:
        record["requestId"], record["level"], record["message"] = parts[1], _level(parts[2]), parts[3]
    elif len(parts) == 3 and parts[2].upper() in LEVELS:  # an empty message
        record["requestId"], record["level"], record["message"] = parts[1], _level(parts[2]), ""
    else:
        _read_plain(record, message)


def _read_plain(record: dict[str, Any], message: str) -> None:
    head = message[:9].split(":", 1)[0].split(" ", 1)[0].upper()
    if head in LEVELS:
        record["level"] = _level(head)


def _read_start(record: dict[str, Any], message: str) -> None:
    # START RequestId: <id> Version: <version>
    words = message.split()
    record["type"], record["requestId"], record["level"] = "platform.start", words[2] if len(words) > 2 else None, "INFO"
    if len(words) > 4 and words[3] == "Version:":
        record["fields"] = {"version": words[4]}


def _tab_pairs(text: str) -> dict[str, str]:
    pairs = {}
    for part in text.split("\t"):
        key, sep, value = part.partition(":")
        if sep:
            pairs[key.strip()] = value.strip()
    return pairs


def _read_report(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    # REPORT RequestId: <id>\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms
    pairs = _tab_pairs(message[7:])
    record["type"], record["requestId"], record["level"], record["fields"] = "platform.report", pairs.get("RequestId"), "INFO", pairs
    if function is None:
        return  # only a Lambda function's own log group says which function this was
    try:
        parsed.usage.append(UsageReport(
            function=function,
            timestamp_ms=timestamp_ms,
            duration_ms=_number(pairs["Duration"]),
            billed_duration_ms=_number(pairs["Billed Duration"]),
            memory_size_mb=_number(pairs["Memory Size"]),
            max_memory_used_mb=_number(pairs["Max Memory Used"]),
            init_duration_ms=_number(pairs["Init Duration"]) if "Init Duration" in pairs else None,
        ))
    except (KeyError, ValueError):
        pass  # a REPORT line of another shape: shipped as a record, no metric


def _usage_from_json(platform: dict[str, Any], timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    metrics = platform.get("metrics")
    if function is None or not isinstance(metrics, dict):
        return
    try:
        init = metrics.get("initDurationMs")
        parsed.usage.append(UsageReport(
            function=function,
            timestamp_ms=timestamp_ms,
            duration_ms=float(metrics["durationMs"]),
            billed_duration_ms=float(metrics["billedDurationMs"]),
            memory_size_mb=float(metrics["memorySizeMB"]),
            max_memory_used_mb=float(metrics["maxMemoryUsedMB"]),
            init_duration_ms=float(init) if init is not None else None,
        ))
    except (KeyError, TypeError, ValueError):
        pass


def _read_monitoring(text: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    parts = text.split("|")
    metric = _monitoring(parts, timestamp_ms, function)
    if metric is None:
        parsed.malformed_monitoring.append(text)
    else:
        parsed.custom.append(metric)


def _monitoring(parts: list[str], timestamp_ms: int, function: str | None) -> CustomMetric | None:
    if len(parts) != 5:
        return None
    _, value, unit, name, namespace = (p.strip() for p in parts)
    unit = UNITS.get(unit.lower()) or _CANONICAL_UNITS.get(unit.lower())
    try:
        number = float(value)
    except ValueError:
        return None
    if unit is None or not name or len(name) > MAX_METRIC_NAME or not namespace or len(namespace) > MAX_METRIC_NAME:
        return None
    if namespace.startswith("AWS/") or number != number or number in (float("inf"), float("-inf")):
        return None  # AWS/ is reserved; NaN and infinities are refused by CloudWatch
    return CustomMetric(function, timestamp_ms, namespace, name, unit, number)


def _number(text: str) -> float:
    return float(text.split(" ", 1)[0])


def _level(level: str) -> str:
    level = level.upper()
    return "WARN" if level == "WARNING" else "FATAL" if level == "CRITICAL" else level

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
from datetime import datetime, timezone
from math import isfinite
from collections.abc import Iterator
from typing import Any, NamedTuple

from .codec import LINE_ERRORS, decode_line, decode_line_fast
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


class UsageReport(NamedTuple):
    """What a REPORT line says about one invocation (a tuple: its columns are summed with builtins)."""

    function: str | None
    timestamp_ms: int
    duration_ms: float
    #: None where the report does not say (a platform.report of Lambda Managed Instances: durationMs only).
    billed_duration_ms: float | None
    memory_size_mb: float | None
    max_memory_used_mb: float | None
    init_duration_ms: float | None

    @property
    def cold_start(self) -> bool:
        return self.init_duration_ms is not None


class CustomMetric(NamedTuple):
    """A MONITORING|<value>|<unit>|<name>|<namespace> line."""

    function: str | None
    timestamp_ms: int
    namespace: str
    name: str
    unit: str
    value: float


class Parsed:
    """What a batch gave. (Plain classes here and in the sinks and service: a dataclass costs its
    module most of a millisecond to create, and ship-logs' import is part of every cold start.)"""

    __slots__ = ("records", "usage", "custom", "malformed_monitoring")

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.usage: list[UsageReport] = []
        self.custom: list[CustomMetric] = []
        #: MONITORING lines that could not be read: shipped as ordinary records, kept here to be logged.
        self.malformed_monitoring: list[str] = []


def function_name(log_group: str) -> str | None:
    return log_group[len("/aws/lambda/"):] if log_group.startswith("/aws/lambda/") else None


def iso_time(timestamp_ms: int) -> str:
    return _iso_time(timestamp_ms, {}, {})


#: ``000Z`` ... ``999Z``: a timestamp's milliseconds and zone, looked up rather than formatted.
_MILLIS = tuple(f"{millis:03d}Z" for millis in range(1000))
_SECONDS = tuple(f"{second:02d}." for second in range(60))


def _iso_time(timestamp_ms: int, seconds: dict[int, str], minutes: dict[int, str]) -> str:
    """The ISO 8601 time (see _second for the two caches)."""
    # A timestamp out of datetime's range (a producer's bug) must not sink the batch: clamp it.
    second, millis = divmod(min(max(timestamp_ms, 0), MAX_TIMESTAMP_MS), 1000)
    return (seconds.get(second) or _second(second, seconds, minutes)) + _MILLIS[millis]


def _second(second: int, seconds: dict[int, str], minutes: dict[int, str]) -> str:
    """``2026-11-28T07:14:07.`` for a second in datetime's range, kept in ``seconds``; each minute's
    part is kept in ``minutes`` (a batch's events share their minutes: one strftime a minute)."""
    minute, second_of_minute = divmod(second, 60)
    minute_prefix = minutes.get(minute)
    if minute_prefix is None:
        minute_prefix = minutes[minute] = datetime.fromtimestamp(minute * 60, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:")
    prefix = seconds[second] = minute_prefix + _SECONDS[second_of_minute]
    return prefix


def parse_batch(batch: LogBatch) -> Parsed:
    """Every record of the batch, and its metrics."""
    parsed = Parsed()
    parsed.records = list(iter_records(batch, parsed))
    return parsed


def iter_records(batch: LogBatch, parsed: Parsed) -> Iterator[dict[str, Any]]:
    """The batch's records one by one, each once its continuation lines are joined to it; its usage
    reports, custom metrics and malformed MONITORING lines go to ``parsed`` (``parsed.records`` is
    left alone). One pass over the events; per line, a dict copy and one dispatch on its first character."""
    function = function_name(batch.log_group)
    # What every record of the batch shares; each record is a copy with its own time, id and message.
    # A log stream is one execution environment, which runs one invocation at a time: lines without a
    # request id (print() output) belong to the invocation whose START came last, the template's.
    template = {
        "@timestamp": None, "eventId": None, "logGroup": batch.log_group, "logStream": batch.log_stream,
        "owner": batch.owner, "region": batch.region, "function": function, "requestId": None, "level": None,
        "type": "app", "message": None, "fields": None,
    }
    previous: dict[str, Any] = _NO_RECORD
    #: Where ``previous`` stands in a Python traceback (_PLAIN: it is not one); blank lines held back.
    trace = _PLAIN
    blanks = 0
    seconds: dict[int, str] = {}
    minutes: dict[int, str] = {}
    millis, read_other, plain, may_continue, no_record = _MILLIS, _read_other, _PLAIN, _MAY_CONTINUE, _NO_RECORD
    new_record, second_of, minute_of, reader_of, seconds_of_minute = template.copy, seconds.get, minutes.get, _READERS.get, _SECONDS
    for event in batch.events:
        message = event.message
        if "\r" in message:  # the Python runtime writes multi-line messages with \r as the line break
            message = message.replace("\r", "\n")
        if message.endswith("\n"):
            message = message.rstrip("\n")
        first = message[:1]
        if (trace is not plain or first in may_continue) and previous["type"] == "app":
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
        timestamp_ms = event.timestamp_ms
        record = new_record()
        second = timestamp_ms // 1000
        prefix = second_of(second)
        if prefix is None and 0 <= timestamp_ms <= MAX_TIMESTAMP_MS:  # a new second: its minute is usually known
            minute_prefix = minute_of(second // 60)
            prefix = _second(second, seconds, minutes) if minute_prefix is None else minute_prefix + seconds_of_minute[second % 60]
            seconds[second] = prefix
        record["@timestamp"] = _iso_time(timestamp_ms, seconds, minutes) if prefix is None else prefix + millis[timestamp_ms % 1000]
        record["eventId"] = event.id
        record["message"] = message
        reader = reader_of(first, read_other)
        if reader is not None:
            started = reader(record, message, timestamp_ms, function, parsed)
            if started is not None:
                template["requestId"] = started
        if first == "T" and message.startswith(TRACEBACK_START):
            trace = _OPEN
            if record["level"] is None:
                record["level"] = "ERROR"
        else:
            trace = plain
        if previous is not no_record:
            yield previous
        previous = record
    if previous is not no_record:
        yield previous


_PLAIN, _OPEN, _CLOSED, _LINKED = "plain", "open", "closed", "linked"
#: The first characters of a line that may go on a previous plain record (indented, a traceback, a
#: link of a chain); a line starting otherwise is a record of its own.
_MAY_CONTINUE = frozenset(prefix[0] for prefix in (*_INDENTED, TRACEBACK_START, *_TRACE_LINKS))
#: ``previous`` before the first record: no line goes on it.
_NO_RECORD: dict[str, Any] = {"type": None}


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


_ABSENT = object()

# Readers: each fills in a record from its line; a START line's reader returns the invocation's
# request id. A reader never writes None over the request id the record was given.


def _read_json(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> Any:
    try:
        document = decode_line_fast(message)
    except LINE_ERRORS:
        document = decode_line(message)
    if not isinstance(document, dict):
        return _read_plain(record, message, timestamp_ms, function, parsed)
    kind = document.get("type")
    if isinstance(kind, str) and kind.startswith("platform.") and isinstance(document.get("record"), dict):
        # Lambda's JSON log format for its own lines.
        platform = document["record"]
        record["type"], record["fields"], record["level"] = kind, platform, "INFO"
        request_id = platform.get("requestId")
        if request_id is not None:
            record["requestId"] = request_id
        if kind == "platform.report":
            _usage_from_json(platform, timestamp_ms, function, parsed)
        return request_id if kind == "platform.start" else None
    record["fields"] = document
    level = document.get("level") or document.get("levelname") or document.get("severity") or document.get("log_level")
    if isinstance(level, str):
        record["level"] = _LEVEL_NAMES.get(level) or _level(level)
    text = document.get("message", _ABSENT)
    if text is _ABSENT:
        text = document.get("msg")
    if isinstance(text, str):
        record["message"] = text
        if function is not None and text.startswith(MONITORING_PREFIX):
            _read_monitoring(text, timestamp_ms, function, parsed)
    elif text is not None:
        record["message"] = json.dumps(text)
    request_id = document.get("requestId") or document.get("function_request_id") or document.get("request_id") or document.get("AWSRequestId")
    if isinstance(request_id, str):
        record["requestId"] = request_id
    if function is None and isinstance(document.get("function_name"), str):
        # Searchable on the record; never a metric dimension (metrics come from the log group alone).
        record["function"] = document["function_name"]
    return None


def _read_bracketed_level(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    """The Python runtime: ``[LEVEL]\\t<time>\\t<request id>\\t<message>``, or ``[ERROR] Exception: ...`` for an uncaught one."""
    close = message.find("]")
    level = _known_level(message[1:close]) if 0 < close < 10 else None
    if level is None:
        _read_plain(record, message, timestamp_ms, function, parsed)
        return
    record["level"] = level
    parts = message.split("\t", 3)
    if len(parts) == 4:
        record["requestId"], record["message"] = parts[2], parts[3]
        text = parts[3]
    else:
        record["message"] = text = message[close + 1:].lstrip()
    if function is not None and text.startswith(MONITORING_PREFIX):
        _read_monitoring(text, timestamp_ms, function, parsed)


def _read_tabbed(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    """Node.js, Java and .NET runtimes: ``<time>\\t<request id>\\t<LEVEL>\\t<message>``; older Node.js
    runtimes write no level column (``<time>\\t<request id>\\t<message>``); Lambda's own timeout and
    out-of-memory lines are space-separated (``<time> <request id> Task timed out after 3.00 seconds``)."""
    parts = message.split("\t", 3)
    level = _known_level(parts[2]) if 3 <= len(parts) else None
    if level is None:
        spaced = _SPACED_RUNTIME_LINE.fullmatch(message) if len(parts) == 1 else None
        if spaced is not None:  # Lambda's line about the invocation: its request id, whatever the batch began with
            record["requestId"], record["message"] = spaced["request_id"], spaced["text"]
            if spaced["text"].startswith(_RUNTIME_FAILURES):
                record["level"] = "ERROR"
            else:
                _read_level_word(record, spaced["text"], timestamp_ms, function, parsed)
            return
        if 3 <= len(parts) and _REQUEST_ID.fullmatch(parts[1]) and _TIME_COLUMN.match(parts[0]):
            text = message.split("\t", 2)[2]  # no level column: the rest is the message
            record["requestId"], record["message"] = parts[1], text
            _read_plain(record, text, timestamp_ms, function, parsed)
            return
        _read_plain(record, message, timestamp_ms, function, parsed)
        return
    text = parts[3] if len(parts) == 4 else ""  # three parts: an empty message
    record["requestId"], record["level"], record["message"] = parts[1], level, text
    if function is not None and text.startswith(MONITORING_PREFIX):
        _read_monitoring(text, timestamp_ms, function, parsed)


def _read_other(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    """A line starting with a character not in _READERS (not ASCII)."""
    if message[:1].isdigit():  # a digit of another script: read as the runtimes' tabbed lines, as ever
        _read_tabbed(record, message, timestamp_ms, function, parsed)
    else:
        _read_plain(record, message, timestamp_ms, function, parsed)


def _read_plain(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    """Plain text: a level if the line starts with one; a MONITORING line's metric."""
    _read_level_word(record, message, timestamp_ms, function, parsed)
    _read_monitoring_line(record, message, timestamp_ms, function, parsed)


def _read_level_word(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    """``ERROR: ...``, ``warning something``: a level as the line's first word."""
    level = _known_level(message[:9].partition(":")[0].partition(" ")[0])
    if level is not None:
        record["level"] = level


def _read_monitoring_line(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    if function is not None and message.startswith(MONITORING_PREFIX):
        _read_monitoring(message, timestamp_ms, function, parsed)


def _read_start(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> Any:
    # START RequestId: <id> Version: <version>
    if not message.startswith("START RequestId: "):
        return _read_plain(record, message, timestamp_ms, function, parsed)
    words = message.split()
    record["type"], record["level"] = "platform.start", "INFO"
    if len(words) > 4 and words[3] == "Version:":
        record["fields"] = {"version": words[4]}
    if len(words) > 2:
        record["requestId"] = words[2]
        return words[2]
    return None


def _tab_pairs(text: str) -> dict[str, str]:
    """``Key: value\\tKey: value``; a part without a colon is left out."""
    return {key.strip(): value.strip() for key, sep, value in [part.partition(":") for part in text.split("\t")] if sep}


def _read_end(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    if message.startswith("END RequestId: "):
        record["type"], record["requestId"], record["level"] = "platform.end", message[15:].split(" ", 1)[0].strip(), "INFO"
    else:
        _read_plain(record, message, timestamp_ms, function, parsed)


def _read_init(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    if message.startswith(("INIT_START ", "INIT_REPORT ")):
        record["type"] = "platform.initStart" if message.startswith("INIT_START") else "platform.initReport"
        record["fields"] = _tab_pairs(message.split(" ", 1)[1])
    else:
        _read_plain(record, message, timestamp_ms, function, parsed)


def _read_report(record: dict[str, Any], message: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    # REPORT RequestId: <id>\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms
    if not message.startswith("REPORT RequestId: "):
        _read_plain(record, message, timestamp_ms, function, parsed)
        return
    usual = _USUAL_REPORT.fullmatch(message)
    if usual is None:  # not the usual shape: read pair by pair (tabs, or spaces before each key Lambda writes)
        text = message[7:]
        pairs = _tab_pairs(text) if "\t" in text else {m["key"]: m["value"] for m in _REPORT_PAIR.finditer(text)}
        _read_report_pairs(record, pairs, timestamp_ms, function, parsed)
        return
    # One C call for the line's usual shape; the pairs are those _tab_pairs would read.
    request_id, duration, duration_ms, billed, billed_ms, memory, memory_mb, max_memory, max_memory_mb, init, init_ms = usual.groups()
    pairs = {"RequestId": request_id, "Duration": duration, "Billed Duration": billed, "Memory Size": memory, "Max Memory Used": max_memory}
    if init is not None:
        pairs["Init Duration"] = init
    record["type"], record["level"], record["fields"], record["requestId"] = "platform.report", "INFO", pairs, request_id
    if function is not None:  # only a Lambda function's own log group says which function this was
        try:
            parsed.usage.append(_new_tuple(UsageReport, (function, timestamp_ms, float(duration_ms), float(billed_ms), float(memory_mb),
                                                         float(max_memory_mb), float(init_ms) if init_ms is not None else None)))
        except ValueError:
            pass  # "1.2.3 ms": shipped as a record, no metric


def _read_report_pairs(record: dict[str, Any], pairs: dict[str, str], timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    record["type"], record["level"], record["fields"] = "platform.report", "INFO", pairs
    request_id = pairs.get("RequestId")
    if request_id is not None:
        record["requestId"] = request_id
    if function is None:
        return
    try:
        init = pairs.get("Init Duration")
        parsed.usage.append(UsageReport(
            function, timestamp_ms, float(pairs["Duration"].split(" ", 1)[0]), float(pairs["Billed Duration"].split(" ", 1)[0]),
            float(pairs["Memory Size"].split(" ", 1)[0]), float(pairs["Max Memory Used"].split(" ", 1)[0]),
            float(init.split(" ", 1)[0]) if init is not None else None,
        ))
    except (KeyError, ValueError):
        pass  # a REPORT line of another shape: shipped as a record, no metric


#: A REPORT line written with spaces: each key Lambda writes and its value (one token and its unit).
#: Longer keys first, and the scan meets "Billed Duration" before the "Duration" inside it.
_REPORT_PAIR = re.compile(r"(?:^|\s)(?P<key>Billed Restore Duration|Billed Duration|Max Memory Used|Restore Duration|Init Duration|"
                          r"Memory Size|Duration|RequestId|XRAY TraceId|SegmentId|Sampled): (?P<value>\S+(?: ms| MB)?)")
#: Lambda's own lines about an invocation: ``<time> <request id> <text>``, space-separated.
_SPACED_RUNTIME_LINE = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+Z (?P<request_id>[0-9a-fA-F-]{36}) (?P<text>.+)", re.DOTALL)
_RUNTIME_FAILURES = ("Task timed out", "Runtime exited", "Error: Runtime exited", "Runtime.OutOfMemory")
_REQUEST_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TIME_COLUMN = re.compile(r"\d{4}-\d\d-\d\dT")
#: REPORT lines as Lambda writes them (a tab may end the line); the groups are the values _tab_pairs reads.
_USUAL_REPORT = re.compile(
    r"REPORT RequestId: ([^\t ]+)\tDuration: (([0-9.]+) ms)\tBilled Duration: (([0-9]+) ms)\tMemory Size: (([0-9]+) MB)"
    r"\tMax Memory Used: (([0-9]+) MB)(?:\tInit Duration: (([0-9.]+) ms))?\t?"
)


def _usage_from_json(platform: dict[str, Any], timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    metrics = platform.get("metrics")
    if function is None or not isinstance(metrics, dict):
        return
    try:
        init = metrics.get("initDurationMs")
        duration = float(metrics["durationMs"])
        # Lambda Managed Instances report only durationMs: the invocation and its duration still count.
        billed, memory, used = (float(metrics[k]) if metrics.get(k) is not None else None
                                for k in ("billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"))
        parsed.usage.append(_new_tuple(UsageReport, (function, timestamp_ms, duration, billed, memory, used,
                                                     float(init) if init is not None else None)))
    except (KeyError, TypeError, ValueError):
        pass


def _read_monitoring(text: str, timestamp_ms: int, function: str | None, parsed: Parsed) -> None:
    metric = _monitoring(text.split("|"), timestamp_ms, function)
    if metric is None:
        parsed.malformed_monitoring.append(text)
    else:
        parsed.custom.append(metric)


def _monitoring(parts: list[str], timestamp_ms: int, function: str | None) -> CustomMetric | None:
    if len(parts) != 5:
        return None
    _, value, unit, name, namespace = map(str.strip, parts)
    unit = unit.lower()
    unit = UNITS.get(unit) or _CANONICAL_UNITS.get(unit)
    try:
        number = float(value)
    except ValueError:
        return None
    if unit is None or not name or len(name) > MAX_METRIC_NAME or not namespace or len(namespace) > MAX_METRIC_NAME:
        return None
    if namespace.startswith("AWS/") or not isfinite(number):
        return None  # AWS/ is reserved; NaN and infinities are refused by CloudWatch
    return _new_tuple(CustomMetric, (function, timestamp_ms, namespace, name, unit, number))


#: A NamedTuple made from a tuple in C: without the Python frame of its generated __new__.
_new_tuple = tuple.__new__


def _readers() -> dict[str, Any]:
    """One reader per first character of a line: every ASCII character and the empty line; None where
    there is nothing to read (plain text that cannot start with a level or MONITORING|)."""
    readers: dict[str, Any] = {chr(code): None for code in range(128)} | {"": None}
    readers |= dict.fromkeys(_LEVEL_INITIALS, _read_level_word)
    readers |= dict.fromkeys("0123456789", _read_tabbed)
    readers |= {"{": _read_json, "[": _read_bracketed_level, "S": _read_start, "E": _read_end, "R": _read_report, "I": _read_init,
                "M": _read_monitoring_line}
    return readers


def _level(level: str) -> str:
    level = level.upper()
    return "WARN" if level == "WARNING" else "FATAL" if level == "CRITICAL" else level


#: The levels as runtimes write them (upper, lower, capitalized) -> the record's level, looked up.
_LEVEL_NAMES = {spelling: _level(name) for name in LEVELS for spelling in (name, name.lower(), name.capitalize())}
_LEVEL_INITIALS = frozenset(name[0] for name in _LEVEL_NAMES)


#: One dispatch per line, on its first character (_read_other for a character not in it).
_READERS = _readers()


def _known_level(text: str) -> str | None:
    """The record's level for one of LEVELS in any case; None for any other text."""
    level = _LEVEL_NAMES.get(text)
    if level is None and text.upper() in LEVELS:
        level = _level(text)
    return level

"""Records against the index template the project ships: every field path has one type, whatever the
line format, so one daily index takes every record (a dynamic mapping refused 6,758 of 40,000)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ship_logs.parse import parse_batch
from ship_logs.payload import LogBatch, LogEvent
from ship_logs.sinks import encode_record
from localaws.payloads import lambda_log_events

TEMPLATE = Path(__file__).resolve().parents[2] / "lambdas/ship_logs/opensearch_index_template.json"
MAPPING = json.loads(TEMPLATE.read_text())["template"]["mappings"]
#: What each mapping type takes as a JSON value (null is always allowed: it indexes nothing).
ACCEPTS = {
    "keyword": (str,),
    "text": (str,),
    "boolean": (bool,),
    "flat_object": (dict,),
}


def _violations(document: dict[str, Any]) -> list[str]:
    found = []
    for key, value in document.items():
        field = MAPPING["properties"].get(key)
        if field is None:
            found.append(f"{key}: not in the mapping (dynamic: strict refuses the document)")
        elif value is None:
            continue
        elif field["type"] == "date":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except (AttributeError, ValueError):
                found.append(f"{key}: {value!r} is not an ISO date")
        elif not isinstance(value, ACCEPTS[field["type"]]):
            found.append(f"{key}: {type(value).__name__} where the mapping says {field['type']}")
    return found


def _mixed_records() -> list[dict[str, Any]]:
    """Every format the parser reads, as the shipper sends it (encoded, decoded again)."""
    records = []
    for runtime in ("python", "node"):
        for json_format in (False, True):
            events = lambda_log_events(400, seed=3, runtime=runtime, json_format=json_format)
            batch = LogBatch("DATA_MESSAGE", "123456789012", f"/aws/lambda/{runtime}-{json_format}", "s", ("f",),
                             tuple(LogEvent(e["id"], e["timestamp"], e["message"]) for e in events))
            records.extend(parse_batch(batch).records)
    hostile = ['{"message": {"nested": "an object where others have a string"}, "level": 3}',
               '{"level": "INFO", "message": "x", "fields": "a field named fields"}', "[" * 3000 + "]" * 3000,
               '{"level": "INFO", "message": "bad \\udcff", "n": NaN}', "plain text", "Traceback (most recent call last):"]
    batch = LogBatch("DATA_MESSAGE", "123456789012", "/ecs/payments", "s", ("f",),
                     tuple(LogEvent(f"h{i}", 1_795_850_047_123 + i, m) for i, m in enumerate(hostile)))
    records.extend(parse_batch(batch).records)
    return [json.loads(encode_record(r)) for r in records]


def test_the_template_maps_every_top_level_key_a_record_has() -> None:
    assert MAPPING["dynamic"] == "strict"
    assert MAPPING["properties"]["fields"]["type"] == "flat_object"  # any structure, no type conflicts inside


def test_every_record_of_every_line_format_fits_the_template() -> None:
    records = _mixed_records()

    assert len(records) > 1000
    problems = {p for record in records for p in _violations(record)}
    assert problems == set()


def test_each_top_level_path_has_one_type_across_formats() -> None:
    types: dict[str, set[str]] = {}
    for record in _mixed_records():
        for key, value in record.items():
            if value is not None:
                types.setdefault(key, set()).add(type(value).__name__)
    assert {key: kinds for key, kinds in types.items() if len(kinds) > 1} == {}


@pytest.mark.parametrize("record", [
    {"@timestamp": "2026-11-28T07:14:07.123Z", "message": {"an": "object"}},
    {"@timestamp": "2026-11-28T07:14:07.123Z", "message": "x", "extra": 1},
])
def test_the_check_is_not_vacuous(record: dict[str, Any]) -> None:
    assert _violations(record)

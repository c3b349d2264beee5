"""ship-logs with its compiled libraries (msgspec, isal) and with the standard library alone: the same
records, the same bytes' meaning, the same metrics (#11). The standard library's side runs in a
process of its own, since the codecs are chosen once, at import."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ship_logs import codec
from ship_logs.metrics import MetricSet
from ship_logs.parse import parse_batch
from ship_logs.payload import LogBatch, LogEvent, decode_batch, encode_batch
from ship_logs.sinks import encode_record
from localaws.payloads import lambda_log_events, subscription_document

ROOT = Path(__file__).resolve().parents[2]
T = 1_795_850_047_123

#: Lines each decoder may see differently: the compiled one hands them to the standard library.
HOSTILE = [
    '{"level": "INFO", "message": "file \\udcff.txt"}',                    # a lone surrogate escape
    '{"level": "INFO", "message": "ratio", "value": NaN, "limit": Infinity}',
    '{"level": "INFO", "message": "huge", "value": 1e400}',                  # out of a float's range
    '{"level": "INFO", "message": "trace", "id": 123456789012345678901234567890}',  # beyond 64 bits
    '{"level": "INFO", "message": ' + '{"a": ' * 3000 + "1" + "}" * 3000 + "}",
    '{"level": "INFO", "message": "two values"} {"x": 1}',
    '{"level": "INFO", "message": "trailing blanks"}  \t',
    '{"level": "INFO", "message": "x", "fields": {"fields": null}}',
    '{"message": {"nested": "an object where others have a string"}, "level": 3}',
    '{"msg": "msg, not message", "levelname": "warning", "AWSRequestId": "r-1"}',
    '{"message": null, "msg": "message is null"}',
    '{"type": "platform.start", "record": {"requestId": 7}}',
    '{"unterminated": ',
    "١\t2026\tINFO\ta digit of another script",
    "MONITORING|1e400|ms|latency|shop",
    "critical: disk full", "ınfo: a dotless i", "WARNING:short", "cache warm",
    "\u2028 a line separator", "é accents ü", "emoji 🎉 in a line",
]


def _corpus_batches() -> list[dict[str, Any]]:
    documents = []
    for runtime in ("python", "node"):
        for json_format in (False, True):
            events = lambda_log_events(600, seed=11, runtime=runtime, json_format=json_format)
            documents.append(subscription_document(f"/aws/lambda/{runtime}-{json_format}", events))
    hostile = [{"id": f"h{i}", "timestamp": T + i, "message": m} for i, m in enumerate(HOSTILE)]
    documents.append(subscription_document("/aws/lambda/hostile", hostile))
    documents.append(subscription_document("/ecs/payments", hostile))
    return [encode_batch(d) for d in documents]


def _shipped(events: list[dict[str, Any]]) -> list[Any]:
    """What a batch becomes: each record as the sink is sent it (decoded again), and its metric data."""
    shipped = []
    for event in events:
        parsed = parse_batch(decode_batch(event))
        metric_set = MetricSet()
        metric_set.add_usage(parsed.usage)
        metric_set.add_custom(parsed.custom)
        requests = [{**r, "MetricData": [{**d, "Timestamp": d["Timestamp"].isoformat()} for d in r["MetricData"]]}
                    for r in metric_set.requests()]
        shipped.append({"records": [json.loads(encode_record(r)) for r in parsed.records], "metrics": requests,
                        "malformed": parsed.malformed_monitoring})
    return shipped


def test_the_compiled_libraries_are_what_this_suite_runs_with() -> None:
    """requirements-dev.txt pins them as the asset does: the other tests here compare both paths."""
    assert (codec.JSON_LIBRARY, codec.GZIP_LIBRARY) == ("msgspec", "isal")


def test_the_standard_library_alone_ships_the_same_records_and_metrics() -> None:
    events = _corpus_batches()
    script = ("import json, sys; from tests.unit.test_codecs import _corpus_batches, _shipped; "
              "from ship_logs import codec; print(json.dumps([codec.JSON_LIBRARY, codec.GZIP_LIBRARY, _shipped(_corpus_batches())]))")
    answer = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={**os.environ, codec.ENV_STDLIB_CODECS: "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'lambdas'}"})
    json_library, gzip_library, stdlib = json.loads(answer.stdout)

    compiled = json.loads(json.dumps(_shipped(events)))
    assert (json_library, gzip_library) == ("json", "zlib")
    assert sum(len(batch["records"]) for batch in compiled) > 2_000
    for ours, theirs in zip(compiled, stdlib, strict=True):
        assert ours["records"] == theirs["records"]
        assert ours["metrics"] == theirs["metrics"] and ours["malformed"] == theirs["malformed"]


def test_the_fidelity_tests_pass_with_the_standard_library_alone() -> None:
    """The tests that pin parsing, unchanged, in a process without the compiled libraries."""
    answer = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_parse.py",
                             "tests/unit/test_record_mapping.py"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, codec.ENV_STDLIB_CODECS: "1"})
    assert answer.returncode == 0, answer.stdout[-2000:]
    assert " passed" in answer.stdout and "failed" not in answer.stdout


@pytest.mark.parametrize("line", HOSTILE)
def test_a_line_reads_as_the_standard_library_reads_it(line: str) -> None:
    """Where the compiled decoder refuses a line, the standard library decides, as it did before #11."""
    try:
        compiled = codec.decode_line_fast(line)
    except codec.LINE_ERRORS:
        compiled = codec.decode_line(line)

    assert json.dumps(compiled, default=repr) == json.dumps(codec.decode_line(line), default=repr)


def test_a_number_out_of_a_floats_range_is_kept_as_null_by_both_decoders() -> None:
    """1e400 is refused by msgspec and read as infinity by json; neither is JSON a sink takes."""
    [record] = parse_batch(LogBatch("DATA_MESSAGE", "1", "/aws/lambda/f", "s", (), (LogEvent("a", T, HOSTILE[2]),))).records

    assert record["fields"]["value"] is None
    assert json.loads(encode_record(record))["fields"] == {"level": "INFO", "message": "huge", "value": None}


def test_integers_beyond_64_bits_are_kept_exactly() -> None:
    """A trace id written as a number: orjson would turn it into a float; msgspec keeps it."""
    [record] = parse_batch(LogBatch("DATA_MESSAGE", "1", "/aws/lambda/f", "s", (), (LogEvent("a", T, HOSTILE[3]),))).records

    assert record["fields"]["id"] == 123456789012345678901234567890
    assert b'"id":123456789012345678901234567890' in encode_record(record)


def test_a_malformed_payload_is_read_the_standard_librarys_way() -> None:
    """The compiled reader takes only a well-formed document; one bad event sends the batch down the
    lenient path, which keeps the rest and counts the bad one."""
    events = [{"id": "1", "timestamp": T, "message": "kept"}, {"id": 2, "timestamp": T, "message": "bad id"},
              {"id": "3", "timestamp": True, "message": "a boolean timestamp, as Python's int takes it"}]

    batch = decode_batch(encode_batch(subscription_document("/aws/lambda/x", events)))

    assert [e.id for e in batch.events] == ["1", "3"] and batch.malformed_events == 1


def test_gzip_bodies_are_standard_gzip() -> None:
    body = b"".join(encode_record({"n": i, "message": "x" * (i % 50)}) + b"\n" for i in range(2_000))

    compressor = codec.gzip_stream()
    compressed = compressor.compress(body[:5_000]) + compressor.compress(body[5_000:]) + compressor.flush()

    assert gzip.decompress(compressed) == body and compressed[:2] == b"\x1f\x8b"
    assert codec.gunzip(gzip.compress(body)) == body
    with pytest.raises(Exception):  # noqa: B017 (zlib.error or EOFError, as gzip.decompress raises)
        codec.gunzip(base64.b64decode("SGVsbG8="))


# --- gzip: one behaviour on both paths (#18) ------------------------------------------------------------

def _hostile_gzip() -> dict[str, bytes]:
    import zlib

    body = b'{"messageType": "DATA_MESSAGE"}'
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    return {
        "one member": gzip.compress(body),
        "two members": gzip.compress(body[:10]) + gzip.compress(body[10:]),
        "trailing garbage": gzip.compress(body) + b"garbage",
        "trailing zeros": gzip.compress(body) + b"\0\0\0\0",
        "a zlib stream": zlib.compress(body),
        "raw deflate": deflate.compress(body) + deflate.flush(),
        "truncated": gzip.compress(body)[:-6],
        "empty": b"",
        "a bomb": gzip.compress(b"\0" * (codec.MAX_GUNZIPPED_BYTES + 1), compresslevel=9),
    }


def _gunzip_outcomes() -> dict[str, str]:
    """What gunzip makes of each hostile input: the inflated bytes' digest, or the refusal."""
    import hashlib

    found = {}
    for name, data in _hostile_gzip().items():
        try:
            found[name] = "ok " + hashlib.sha256(codec.gunzip(data)).hexdigest()
        except codec.GzipError as error:
            found[name] = f"refused: {error}"
    return found


def test_gunzip_reads_every_member_and_refuses_what_is_not_gzip_or_inflates_too_far() -> None:
    outcomes = _gunzip_outcomes()

    body = b'{"messageType": "DATA_MESSAGE"}'
    assert codec.gunzip(_hostile_gzip()["two members"]) == body  # every member, never only the first
    assert outcomes["one member"] == outcomes["two members"]
    assert outcomes["trailing garbage"] == "refused: 7 bytes after the last gzip member"
    assert outcomes["trailing zeros"] == "refused: 4 bytes after the last gzip member"
    assert outcomes["a zlib stream"] == "refused: not a gzip member" and outcomes["raw deflate"] == "refused: not a gzip member"
    assert outcomes["truncated"] == "refused: a truncated gzip member"
    assert outcomes["empty"] == "refused: empty"
    assert outcomes["a bomb"] == f"refused: inflates past {codec.MAX_GUNZIPPED_BYTES:,} bytes"


def test_gunzip_decides_the_same_with_the_standard_library_alone() -> None:
    script = ("import json; from tests.unit.test_codecs import _gunzip_outcomes; from ship_logs import codec; "
              "print(json.dumps([codec.GZIP_LIBRARY, _gunzip_outcomes()]))")
    answer = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={**os.environ, codec.ENV_STDLIB_CODECS: "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'lambdas'}"})
    library, stdlib = json.loads(answer.stdout)

    assert (codec.GZIP_LIBRARY, library) == ("isal", "zlib")
    assert _gunzip_outcomes() == stdlib

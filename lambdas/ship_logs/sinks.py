"""Where records go: an OpenSearch/Elasticsearch `_bulk` endpoint, a generic HTTPS NDJSON endpoint, or Firehose.

Every sink batches to its limits, retries what the sink says to retry (429, 5xx, unreachable; for
bulk requests, only the items that failed) with exponential backoff and full jitter, and reports
what the sink refused for good (a mapping error, an oversized record) as rejected, for the dead-letter
queue. A sink that stays down past the retries raises SinkUnavailable: the invocation fails and
Lambda tries the whole batch again later; the CloudWatch event id is each record's document id (or
``eventId`` field), so what already arrived is not duplicated.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .aws import FirehoseGateway, SecretsGateway, SigV4Signer
from .codec import encode_json, gzip_stream
from .config import ShipLogsConfig, SinkAuth, SinkKind

#: Firehose PutRecordBatch limits.
FIREHOSE_MAX_RECORDS = 500
FIREHOSE_MAX_BATCH_BYTES = 4 * 1024 * 1024
FIREHOSE_MAX_RECORD_BYTES = 1_000 * 1024
HTTP_TIMEOUT_S = 10.0


class SinkUnavailable(Exception):
    """The sink kept failing (429, 5xx, unreachable) past the retries: fail the invocation."""


class SinkRefused(Exception):
    """The sink refused our credentials (401/403): no retry here can fix it; fail the invocation."""


class ShipResult:
    """What a sink made of the records it was given (a plain class: see parse.Parsed)."""

    __slots__ = ("records", "shipped", "rejected", "degraded", "requests", "retries", "bytes_sent")

    def __init__(self) -> None:
        #: Records the sink was given.
        self.records = self.shipped = 0
        #: (record, why the sink refused it for good)
        self.rejected: list[tuple[dict[str, Any], str]] = []
        #: Records that could only be written as plain text (their fields could not be encoded).
        self.degraded = 0
        self.requests = self.retries = self.bytes_sent = 0


class _Delivery:
    """What became of one request's records, by their position in it."""

    __slots__ = ("ok", "retry", "rejected", "split", "error", "retry_all")

    def __init__(self, *, ok: int = 0, retry: list[int] | None = None, split: bool = False, error: str = "",
                 retry_all: bool = False) -> None:
        self.ok = ok
        self.retry: list[int] = retry if retry is not None else []
        self.rejected: list[tuple[int, str]] = []
        #: The sink refused the batch as a whole (too large, or a record it cannot take): halve it to find out.
        self.split = split
        self.error = error
        #: Every record is to be sent again: the same request body serves.
        self.retry_all = retry_all


class _Lines:
    """A request body of separate lines (Firehose records)."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def add(self, line: bytes) -> None:
        self.lines.append(line)

    def finish(self) -> list[bytes]:
        return self.lines


class _Joined:
    """A request body of lines joined (an uncompressed HTTP body)."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def add(self, line: bytes) -> None:
        self.lines.append(line)

    def finish(self) -> bytes:
        return b"".join(self.lines)


class _Gzipped:
    """A gzip'd HTTP body, compressed as its lines come: a batch's lines are never all held at once."""

    def __init__(self) -> None:
        self.compressor = gzip_stream()
        self.pending = bytearray()
        self.parts: list[bytes] = []

    def add(self, line: bytes) -> None:
        self.pending += line
        if len(self.pending) >= _GZIP_CHUNK_BYTES:
            self.parts.append(self.compressor.compress(self.pending))
            self.pending.clear()

    def finish(self) -> bytes:
        self.parts.append(self.compressor.compress(self.pending))
        self.parts.append(self.compressor.flush())
        return b"".join(self.parts)


#: Lines are handed to the compressor in chunks this large (one call per chunk, not per line).
_GZIP_CHUNK_BYTES = 256 * 1024


class Backoff:
    """Exponential backoff with full jitter, bounded by attempts and by the time the invocation has left."""

    def __init__(self, *, attempts: int = 6, base_s: float = 0.2, max_s: float = 5.0,
                 time_left_s: Callable[[], float] = lambda: float("inf"), sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random) -> None:
        self.attempts, self.base_s, self.max_s = attempts, base_s, max_s
        self.time_left_s, self.sleep, self.rand = time_left_s, sleep, rand
        self.used = 0

    def wait(self, error: str) -> None:
        self.used += 1
        pause = self.rand() * min(self.max_s, self.base_s * 2 ** self.used)
        if self.used >= self.attempts or pause >= self.time_left_s():
            raise SinkUnavailable(f"gave up after {self.used} attempts: {error}")
        self.sleep(pause)


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect turns the POST into a body-less GET and hands the credentials to another host:
    never follow one; the 3xx comes back as the answer."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibTransport:
    """HTTP POST; status 0 for a connection that failed or timed out (retryable). Redirects are not followed."""

    def __init__(self, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._opener = urllib.request.build_opener(_NoRedirects())

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:  # noqa: S310 (URL validated as https)
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
            return 0, str(error).encode()


class UnencodableRecord(ValueError):
    """A record that cannot be written as standard JSON even as plain text: dead-lettered alone."""


def encode_record(record: dict[str, Any]) -> bytes:
    """``record`` as one JSON line; a record whose fields cannot be written (nested too deep, not
    standard JSON) is written as plain text: its message, without fields."""
    return _encoded(record)[0]


def _encoded(record: dict[str, Any]) -> tuple[bytes, bool]:
    """The record's JSON line, and whether it had to be written as plain text (degraded)."""
    try:
        return encode_json(record), False
    except (ValueError, RecursionError, TypeError):
        pass
    try:
        return encode_json(_as_plain_text(record)), record.get("fields") is not None
    except (ValueError, RecursionError, TypeError) as error:
        raise UnencodableRecord(f"cannot be written as JSON: {type(error).__name__}") from None


def _as_plain_text(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "fields": None, "message": str(record.get("message", ""))}


class Sink(ABC):
    """Batching and retrying, common to every sink; subclasses say how a batch is delivered."""

    max_batch_bytes: int = 5 * 1024 * 1024
    max_batch_records: int = 10_000_000

    def encode(self, record: dict[str, Any]) -> tuple[bytes, bool]:
        """What the sink is sent for ``record``, and whether it was degraded to plain text."""
        line, degraded = _encoded(record)
        return line + b"\n", degraded

    @abstractmethod
    def deliver(self, payload: Any, count: int) -> _Delivery:
        """Send one request of ``count`` records; say what arrived, what to send again and what the sink
        refused for good."""

    def new_body(self) -> Any:
        """What collects a request's lines (``add``) and makes its payload (``finish``)."""
        return _Joined()

    #: ``refusal(line)``: why the sink cannot take a line at all (then it is dead-lettered alone), or
    #: None; a sink that takes any line has none (no call per record).
    refusal: Callable[[bytes], str | None] | None = None

    def ship(self, records: Iterable[dict[str, Any]], backoff: Callable[[], Backoff] = Backoff) -> ShipResult:
        """``records`` is iterated once to ship them, and again only to find the few a sink asks for
        again or refuses (so a batch's records need not be held: see service.BatchRecords). Each
        request is sent as soon as it is full. ``backoff`` makes the retry budget of each request
        (bounded by the invocation's time left)."""
        if isinstance(records, Iterator):  # a one-way iterator cannot be gone through again: keep what it gives
            records = list(records)
        result = ShipResult()
        encode, refusal, max_bytes, max_records = self.encode, self.refusal, self.max_batch_bytes, self.max_batch_records
        # The request being filled: its records' indexes, its size, its body (kept in locals: this runs per record).
        indexes: list[int] = []
        size, body = 0, self.new_body()
        add, degraded, count = body.add, 0, 0
        for index, record in enumerate(records):
            count += 1
            try:
                line, was_degraded = encode(record)
            except UnencodableRecord as error:
                result.rejected.append((_as_plain_text(record), str(error)))
                continue
            degraded += was_degraded
            if refusal is not None:
                refused = refusal(line)
                if refused is not None:
                    result.rejected.append((record, refused))
                    continue
            if indexes and (size + len(line) > max_bytes or len(indexes) >= max_records):
                self._send(indexes, size, body.finish(), records, result, backoff)
                indexes, size, body = [], 0, self.new_body()
                add = body.add
            indexes.append(index)
            size += len(line)
            add(line)
        if indexes:
            self._send(indexes, size, body.finish(), records, result, backoff)
        result.records, result.degraded = count, result.degraded + degraded
        return result

    def _send(self, indexes: list[int], size: int, payload: Any, records: Iterable[dict[str, Any]], result: ShipResult,
              new_backoff: Callable[[], Backoff]) -> None:
        """Sends one request; what the sink asks for again is sent again (re-encoded from ``records``)."""
        backoff = new_backoff()
        while indexes:
            result.requests += 1
            result.bytes_sent += size
            delivery = self.deliver(payload, len(indexes))
            if delivery.split:
                if len(indexes) == 1:
                    result.rejected.append((_records_at(records, indexes)[0], delivery.error))
                    return
                middle = len(indexes) // 2
                for half in (indexes[:middle], indexes[middle:]):
                    self._send(half, *self._payload(records, half), records, result, new_backoff)
                return
            result.shipped += delivery.ok
            if delivery.rejected:
                refused = _records_at(records, [indexes[position] for position, _ in delivery.rejected])
                result.rejected.extend(zip(refused, [why for _, why in delivery.rejected]))
            if delivery.retry_all:
                pending = indexes
            else:
                pending = [indexes[position] for position in delivery.retry]
                if pending:
                    size, payload = self._payload(records, pending)
            indexes = pending
            if indexes:
                result.retries += 1
                backoff.wait(delivery.error)

    def _payload(self, records: Iterable[dict[str, Any]], indexes: list[int]) -> tuple[int, Any]:
        """The request body of the records at ``indexes`` (all encodable: they were encoded once)."""
        body, size = self.new_body(), 0
        for record in _records_at(records, indexes):
            line = self.encode(record)[0]
            size += len(line)
            body.add(line)
        return size, body.finish()


def _records_at(records: Iterable[dict[str, Any]], indexes: list[int]) -> list[dict[str, Any]]:
    """The records at ``indexes`` (ascending), found by going through ``records`` again."""
    if isinstance(records, Sequence):
        return [records[i] for i in indexes]
    wanted, found = set(indexes), {}
    for index, record in enumerate(records):
        if index in wanted:
            found[index] = record
            if len(found) == len(wanted):
                break
    return [found[i] for i in indexes]


class HttpSink(Sink):
    """NDJSON over HTTPS (Logz.io, Loki-style gateways, Vector, Fluent Bit): one record per line."""

    def __init__(self, config: ShipLogsConfig, transport: Transport, auth: Callable[[str, bytes, dict[str, str]], dict[str, str]]) -> None:
        self.url, self.compress, self.transport, self.auth = config.endpoint, config.compress, transport, auth
        self.max_batch_bytes = config.max_batch_bytes

    def new_body(self) -> Any:
        return _Gzipped() if self.compress else _Joined()

    def _post(self, url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type}
        if self.compress:
            headers["Content-Encoding"] = "gzip"
        headers = self.auth(url, body, headers)
        status, answer = self.transport.post(url, body, headers)
        if status in (401, 403):
            raise SinkRefused(f"{url} answered {status}: check the credentials in secretArn / the function's role")
        if 300 <= status < 400:
            raise SinkRefused(f"{url} answered {status} (a redirect): ship-logs does not follow redirects, which would "
                              f"drop the body and send the credentials elsewhere; set the endpoint to the final https URL")
        return status, answer

    def deliver(self, payload: bytes, count: int) -> _Delivery:
        status, answer = self._post(self.url, payload, "application/x-ndjson")
        return _by_status(status, answer, count)


def _by_status(status: int, answer: bytes, count: int) -> _Delivery:
    text = answer[:300].decode(errors="replace")
    if 200 <= status < 300:
        return _Delivery(ok=count)
    if status == 0 or status == 429 or status >= 500:
        return _Delivery(retry_all=True, error=f"{status or 'unreachable'}: {text}")
    # 413, or a 4xx for the request as a whole: halve the batch until the records it refuses stand alone.
    return _Delivery(split=True, error=f"{status}: {text}")


class OpenSearchSink(HttpSink):
    """The `_bulk` API of OpenSearch / Elasticsearch. `create` with the CloudWatch event id as `_id`:
    a redelivered record answers 409 and counts as shipped, so retries never duplicate."""

    def __init__(self, config: ShipLogsConfig, transport: Transport, auth: Callable[[str, bytes, dict[str, str]], dict[str, str]]) -> None:
        super().__init__(config, transport, auth)
        self.url = config.endpoint.rstrip("/") + "/_bulk"
        self.index_pattern = config.index
        self.template_url = config.endpoint.rstrip("/") + "/_index_template/" + INDEX_TEMPLATE_NAME
        #: None until the index template was put (once per container, before its first _bulk); then its answer.
        self.template_status: int | None = None
        #: Each hour's action line up to the document id: built once, not per record.
        self._action_by_hour: dict[str, bytes] = {}

    def index(self, timestamp: str) -> str:
        return datetime.fromisoformat(timestamp[:13] + ":00:00").strftime(self.index_pattern)

    def encode(self, record: dict[str, Any]) -> tuple[bytes, bool]:
        hour = record["@timestamp"][:13]
        action = self._action_by_hour.get(hour)
        if action is None:
            action = self._action_by_hour[hour] = b'{"create":{"_index":' + encode_json(self.index(hour)) + b',"_id":'
        try:
            line, degraded = encode_json(record), False
        except (ValueError, RecursionError, TypeError):
            line, degraded = _encoded(record)  # written as plain text, or refused
        return b"".join((action, encode_json(record["eventId"]), b"}}\n", line, b"\n")), degraded

    def ensure_template(self) -> int:
        """Put the documented index template (idempotent: the same body each time), so a fresh cluster
        never maps a field one way from the first line and refuses every record that has it another way.
        Its ``index_patterns`` follow the configured index. Answers the status; a refusal (an older
        cluster without flat_object) is reported by the caller, and the records still go."""
        if self.template_status is None:
            body = index_template(self.index_pattern)
            if self.compress:  # _post says the body is gzip'd when the sink compresses
                compressor = gzip_stream()
                body = compressor.compress(body) + compressor.flush()
            status, _ = self._post(self.template_url, body, "application/json")
            self.template_status = status
        return self.template_status

    def deliver(self, payload: bytes, count: int) -> _Delivery:
        self.ensure_template()
        status, answer = self._post(self.url, payload, "application/x-ndjson")
        if status != 200:
            return _by_status(status, answer, count)
        try:
            response = json.loads(answer)
            results = response["items"]
        except (ValueError, KeyError, TypeError):
            return _Delivery(retry_all=True, error=f"unreadable _bulk answer: {answer[:200].decode(errors='replace')}")
        if not response.get("errors"):
            return _Delivery(ok=count)
        delivery = _Delivery()
        for position, result in zip(range(count), results):
            outcome = next(iter(result.values()), {}) if isinstance(result, dict) else {}
            code = outcome.get("status", 0)
            if 200 <= code < 300 or code == 409:  # 409: already there (a redelivered batch)
                delivery.ok += 1
            elif code == 429 or code >= 500 or code == 0:
                delivery.retry.append(position)
                delivery.error = f"{code}: {json.dumps(outcome.get('error'))[:200]}"
            else:
                error = outcome.get("error") or {}
                delivery.rejected.append((position, f"{code} {error.get('type', '')}: {error.get('reason', '')}"[:500]))
        return delivery


INDEX_TEMPLATE_NAME = "log-group-governor"
INDEX_TEMPLATE_FILE = Path(__file__).resolve().parent / "opensearch_index_template.json"


def index_template(index_pattern: str) -> bytes:
    """The documented template (opensearch_index_template.json) for indexes named by ``index_pattern``
    (its strftime fields become a wildcard: ``logs-%Y.%m.%d`` covers ``logs-*``)."""
    template = json.loads(INDEX_TEMPLATE_FILE.read_text())
    prefix = index_pattern.split("%", 1)[0]
    template["index_patterns"] = [prefix + "*" if "%" in index_pattern else index_pattern]
    return json.dumps(template, separators=(",", ":")).encode()


class FirehoseSink(Sink):
    """PutRecordBatch: at most 500 records and 4 MiB a call; only the records Firehose failed are sent again."""

    max_batch_bytes = FIREHOSE_MAX_BATCH_BYTES
    max_batch_records = FIREHOSE_MAX_RECORDS

    def __init__(self, gateway: FirehoseGateway) -> None:
        self.gateway = gateway

    def new_body(self) -> Any:
        return _Lines()

    def refusal(self, line: bytes) -> str | None:
        return "larger than Firehose's 1,000 KiB per record" if len(line) > FIREHOSE_MAX_RECORD_BYTES else None

    def deliver(self, payload: list[bytes], count: int) -> _Delivery:
        answer = self.gateway.put_record_batch(payload)
        failed = dict(answer.failed)
        return _Delivery(ok=count - len(failed), retry=sorted(failed), error=", ".join(sorted(set(failed.values()))))


def build_sink(config: ShipLogsConfig, *, secrets: SecretsGateway | None = None, transport: Transport | None = None,
               firehose: FirehoseGateway | None = None, signer: SigV4Signer | None = None) -> Sink:
    if config.sink is SinkKind.FIREHOSE:
        return FirehoseSink(firehose or FirehoseGateway(config.delivery_stream_arn))
    auth = _auth(config, secrets or SecretsGateway(), signer)
    sink_class = OpenSearchSink if config.sink is SinkKind.OPENSEARCH else HttpSink
    return sink_class(config, transport or UrllibTransport(), auth)


def _auth(config: ShipLogsConfig, secrets: SecretsGateway, signer: SigV4Signer | None) -> Callable[[str, bytes, dict[str, str]], dict[str, str]]:
    if config.auth is SinkAuth.BASIC:
        def basic(url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
            secret = secrets.json_value(config.secret_arn)
            token = base64.b64encode(f"{secret['username']}:{secret['password']}".encode()).decode()
            return {**headers, "Authorization": f"Basic {token}"}
        return basic
    if config.auth is SinkAuth.HEADER:
        def header(url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
            secret = secrets.json_value(config.secret_arn)
            return {**headers, str(secret["name"]): str(secret["value"])}
        return header
    if config.auth is SinkAuth.SIGV4:
        sign = signer or SigV4Signer(config.region or "")
        return lambda url, body, headers: sign.headers("POST", url, body, headers)
    return lambda url, body, headers: headers

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .aws import FirehoseGateway, SecretsGateway, SigV4Signer
from .codec import encode_json, gzip_compress
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


@dataclass
class ShipResult:
    shipped: int = 0
    #: (record, why the sink refused it for good)
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    #: Records that could only be written as plain text (their fields could not be encoded).
    degraded: int = 0
    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0


@dataclass
class _Delivery:
    ok: int = 0
    retry: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)
    rejected: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    #: The sink refused the batch as a whole (too large, or a record it cannot take): halve it to find out.
    split: bool = False
    error: str = ""


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
    def deliver(self, items: list[tuple[dict[str, Any], bytes]]) -> _Delivery:
        """Send one batch; say what arrived, what to send again and what the sink refused for good."""

    def encode_all(self, records: Sequence[dict[str, Any]], result: ShipResult) -> list[tuple[dict[str, Any], bytes]]:
        """Each record on its own: one that cannot be encoded goes to ``result.rejected``, not the batch."""
        items = []
        append, encode, degraded = items.append, self.encode, 0
        for record in records:
            try:
                line, was_degraded = encode(record)
            except UnencodableRecord as error:
                result.rejected.append((_as_plain_text(record), str(error)))
                continue
            append((record, line))
            degraded += was_degraded
        result.degraded += degraded
        return items

    def ship(self, records: Sequence[dict[str, Any]], backoff: Callable[[], Backoff] = Backoff) -> ShipResult:
        """``backoff`` makes the retry budget of each batch (bounded by the invocation's time left)."""
        result = ShipResult()
        for batch in self._batches(self.encode_all(records, result)):
            self._ship_batch(batch, result, backoff)
        return result

    def _batches(self, items: list[tuple[dict[str, Any], bytes]]) -> Iterator[list[tuple[dict[str, Any], bytes]]]:
        if len(items) <= self.max_batch_records and sum([len(line) for _, line in items]) <= self.max_batch_bytes:
            yield items  # the common case: the whole batch is one request
            return
        batch: list[tuple[dict[str, Any], bytes]] = []
        size = 0
        for item in items:
            if batch and (size + len(item[1]) > self.max_batch_bytes or len(batch) >= self.max_batch_records):
                yield batch
                batch, size = [], 0
            batch.append(item)
            size += len(item[1])
        if batch:
            yield batch

    def _ship_batch(self, batch: list[tuple[dict[str, Any], bytes]], result: ShipResult, new_backoff: Callable[[], Backoff]) -> None:
        backoff = new_backoff()
        pending = batch
        while pending:
            result.requests += 1
            result.bytes_sent += sum([len(line) for _, line in pending])
            delivery = self.deliver(pending)
            if delivery.split:
                if len(pending) == 1:
                    result.rejected.append((pending[0][0], delivery.error))
                    return
                middle = len(pending) // 2
                self._ship_batch(pending[:middle], result, new_backoff)
                self._ship_batch(pending[middle:], result, new_backoff)
                return
            result.shipped += delivery.ok
            result.rejected.extend(delivery.rejected)
            pending = delivery.retry
            if pending:
                result.retries += 1
                backoff.wait(delivery.error)


class HttpSink(Sink):
    """NDJSON over HTTPS (Logz.io, Loki-style gateways, Vector, Fluent Bit): one record per line."""

    def __init__(self, config: ShipLogsConfig, transport: Transport, auth: Callable[[str, bytes, dict[str, str]], dict[str, str]]) -> None:
        self.url, self.compress, self.transport, self.auth = config.endpoint, config.compress, transport, auth
        self.max_batch_bytes = config.max_batch_bytes

    def _post(self, url: str, items: list[tuple[dict[str, Any], bytes]], content_type: str) -> tuple[int, bytes]:
        body = b"".join([line for _, line in items])
        headers = {"Content-Type": content_type}
        if self.compress:
            body = gzip_compress(body)
            headers["Content-Encoding"] = "gzip"
        headers = self.auth(url, body, headers)
        status, answer = self.transport.post(url, body, headers)
        if status in (401, 403):
            raise SinkRefused(f"{url} answered {status}: check the credentials in secretArn / the function's role")
        if 300 <= status < 400:
            raise SinkRefused(f"{url} answered {status} (a redirect): ship-logs does not follow redirects, which would "
                              f"drop the body and send the credentials elsewhere; set the endpoint to the final https URL")
        return status, answer

    def deliver(self, items: list[tuple[dict[str, Any], bytes]]) -> _Delivery:
        status, answer = self._post(self.url, items, "application/x-ndjson")
        return _by_status(status, answer, items)


def _by_status(status: int, answer: bytes, items: list[tuple[dict[str, Any], bytes]]) -> _Delivery:
    text = answer[:300].decode(errors="replace")
    if 200 <= status < 300:
        return _Delivery(ok=len(items))
    if status == 0 or status == 429 or status >= 500:
        return _Delivery(retry=items, error=f"{status or 'unreachable'}: {text}")
    # 413, or a 4xx for the request as a whole: halve the batch until the records it refuses stand alone.
    return _Delivery(split=True, error=f"{status}: {text}")


class OpenSearchSink(HttpSink):
    """The `_bulk` API of OpenSearch / Elasticsearch. `create` with the CloudWatch event id as `_id`:
    a redelivered record answers 409 and counts as shipped, so retries never duplicate."""

    def __init__(self, config: ShipLogsConfig, transport: Transport, auth: Callable[[str, bytes, dict[str, str]], dict[str, str]]) -> None:
        super().__init__(config, transport, auth)
        self.url = config.endpoint.rstrip("/") + "/_bulk"
        self.index_pattern = config.index
        #: Each hour's action line up to the document id: built once, not per record.
        self._action_by_hour: dict[str, bytes] = {}

    def index(self, timestamp: str) -> str:
        return datetime.fromisoformat(timestamp[:13] + ":00:00").strftime(self.index_pattern)

    def encode(self, record: dict[str, Any]) -> tuple[bytes, bool]:
        hour = record["@timestamp"][:13]
        action = self._action_by_hour.get(hour)
        if action is None:
            action = self._action_by_hour[hour] = b'{"create":{"_index":' + encode_json(self.index(hour)) + b',"_id":'
        line, degraded = _encoded(record)
        event_id = record["eventId"]
        # CloudWatch's event ids are digits: written as they are; anything else (a redriven record) encoded.
        quoted = b'"' + event_id.encode() + b'"' if isinstance(event_id, str) and event_id.isdigit() and event_id.isascii() else encode_json(event_id)
        return b"".join((action, quoted, b"}}\n", line, b"\n")), degraded

    def deliver(self, items: list[tuple[dict[str, Any], bytes]]) -> _Delivery:
        status, answer = self._post(self.url, items, "application/x-ndjson")
        if status != 200:
            return _by_status(status, answer, items)
        try:
            response = json.loads(answer)
            results = response["items"]
        except (ValueError, KeyError, TypeError):
            return _Delivery(retry=items, error=f"unreadable _bulk answer: {answer[:200].decode(errors='replace')}")
        if not response.get("errors"):
            return _Delivery(ok=len(items))
        delivery = _Delivery()
        for item, result in zip(items, results):
            outcome = next(iter(result.values()), {}) if isinstance(result, dict) else {}
            code = outcome.get("status", 0)
            if 200 <= code < 300 or code == 409:  # 409: already there (a redelivered batch)
                delivery.ok += 1
            elif code == 429 or code >= 500 or code == 0:
                delivery.retry.append(item)
                delivery.error = f"{code}: {json.dumps(outcome.get('error'))[:200]}"
            else:
                error = outcome.get("error") or {}
                delivery.rejected.append((item[0], f"{code} {error.get('type', '')}: {error.get('reason', '')}"[:500]))
        return delivery


class FirehoseSink(Sink):
    """PutRecordBatch: at most 500 records and 4 MiB a call; only the records Firehose failed are sent again."""

    max_batch_bytes = FIREHOSE_MAX_BATCH_BYTES
    max_batch_records = FIREHOSE_MAX_RECORDS

    def __init__(self, gateway: FirehoseGateway) -> None:
        self.gateway = gateway

    def ship(self, records: Sequence[dict[str, Any]], backoff: Callable[[], Backoff] = Backoff) -> ShipResult:
        result = ShipResult()
        items = []
        for record, line in self.encode_all(records, result):
            if len(line) > FIREHOSE_MAX_RECORD_BYTES:
                result.rejected.append((record, "larger than Firehose's 1,000 KiB per record"))
            else:
                items.append((record, line))
        for batch in self._batches(items):
            self._ship_batch(batch, result, backoff)
        return result

    def deliver(self, items: list[tuple[dict[str, Any], bytes]]) -> _Delivery:
        answer = self.gateway.put_record_batch([line for _, line in items])
        failed = dict(answer.failed)
        return _Delivery(
            ok=len(items) - len(failed),
            retry=[item for i, item in enumerate(items) if i in failed],
            error=", ".join(sorted(set(failed.values()))),
        )


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

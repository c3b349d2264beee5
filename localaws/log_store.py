"""A log store on 127.0.0.1 for tests and the demo: OpenSearch's `_bulk` API and a plain NDJSON endpoint.

It keeps every request as received (method, path, headers, the decompressed body) and the
documents it accepted, answers `_bulk` item by item like OpenSearch (201 created, 409 when a
document with that `_id` exists), and can be scripted to fail: whole requests (status codes in
order), or single documents (a field value that makes it answer 400 or 429 for that item).
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    body: bytes


@dataclass
class LogStore:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    #: Documents accepted, by index then id (bulk), or in arrival order (NDJSON endpoint).
    indices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    lines: list[dict[str, Any]] = field(default_factory=list)
    #: Statuses to answer to the next requests, in order, before behaving normally.
    fail_next: list[int] = field(default_factory=list)
    #: A document whose message contains this string is refused with 400 (a mapping error).
    reject_marker: str = "\u0000never"
    #: A document whose message contains this string answers 429 the first time it is sent.
    busy_marker: str = "\u0000never"
    #: A request whose body contains this string answers 503, every time (a store down for that data).
    down_marker: str = "\u0000never"
    #: Index templates put (``_index_template/<name>``), by name, and the requests that put them.
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    template_requests: list[Received] = field(default_factory=list)
    _busy_seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def documents(self) -> list[dict[str, Any]]:
        return [doc for index in self.indices.values() for doc in index.values()]

    def answer(self, request: Received) -> tuple[int, dict[str, Any] | None]:
        with self.lock:
            if "/_index_template/" in request.path:  # OpenSearch: create or replace, idempotent
                self.template_requests.append(request)
                self.templates[request.path.rsplit("/", 1)[-1]] = json.loads(request.body)
                return 200, {"acknowledged": True}
            self.requests.append(request)
            if self.fail_next:
                return self.fail_next.pop(0), {"error": "scripted failure"}
            if self.down_marker.encode() in request.body:
                return 503, {"error": "scripted outage"}
            if request.path.endswith("/_bulk"):
                return 200, self._bulk(request.body)
            for line in request.body.splitlines():
                if line.strip():
                    self.lines.append(json.loads(line))
            return 200, {"accepted": True}

    def _bulk(self, body: bytes) -> dict[str, Any]:
        lines = body.splitlines()
        items, errors = [], False
        for action_line, document_line in zip(lines[::2], lines[1::2]):
            action = json.loads(action_line)
            op, meta = next(iter(action.items()))
            document = json.loads(document_line)
            index = self.indices.setdefault(meta["_index"], {})
            message = str(document.get("message", ""))
            if self.reject_marker in message:
                status, error = 400, {"type": "mapper_parsing_exception", "reason": "failed to parse field [fields.order]"}
            elif self.busy_marker in message and meta["_id"] not in self._busy_seen:
                self._busy_seen.add(meta["_id"])
                status, error = 429, {"type": "es_rejected_execution_exception", "reason": "rejected execution"}
            elif op == "create" and meta["_id"] in index:
                status, error = 409, {"type": "version_conflict_engine_exception", "reason": "document already exists"}
            else:
                index[meta["_id"]] = document
                status, error = 201, None
            errors = errors or status >= 300
            items.append({op: {"_index": meta["_index"], "_id": meta["_id"], "status": status, **({"error": error} if error else {})}})
        return {"took": 3, "errors": errors, "items": items}


def _handler(store: LogStore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
            status, answer = store.answer(Received("POST", self.path, {k: v for k, v in self.headers.items()}, raw, body))
            payload = json.dumps(answer or {}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return  # quiet

    return Handler


@contextmanager
def log_store() -> Iterator[LogStore]:
    store = LogStore()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(store))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield store
    finally:
        server.shutdown()
        thread.join()

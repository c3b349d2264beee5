"""A moto server on loopback that answers like AWS where it matters to the governor.

- **Quotas.** CloudWatch Logs operations beyond their published TPS (times ``quota_scale``, so a
  run takes seconds) answer ``ThrottlingException`` with HTTP 400, as AWS does; clients see it
  through botocore's normal retry path. Each operation has a token bucket holding one second of
  its rate, which is how AWS tolerates short bursts.
- **Gaps.** moto does not model a log group's class or a function's ``LoggingConfig``; the server
  records them from the create calls and adds them to the describe answers (the same fillers as
  the in-process account, applied on the wire, so any client sees them).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from governor.config import DEFAULT_API_QUOTAS_TPS

from .account import DEFAULT_REGION, LocalAccount, MotoGaps

LOGS_TARGET_PREFIX = "Logs_20140328."
_LAMBDA_FUNCTIONS_PATH = "/2015-03-31/functions"


@dataclass
class TokenBucket:
    rate_per_s: float
    capacity: float
    tokens: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class AwsLikeMiddleware:
    """WSGI middleware in front of moto: quotas and gap fillers (see module docstring)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], quotas_tps: Mapping[str, float] | None) -> None:
        self.app = app
        self.gaps = MotoGaps()
        self.lock = threading.Lock()
        self.set_quotas(quotas_tps or {})
        #: Off while a test or benchmark sets its account up.
        self.quotas_enabled = True
        #: Requests answered, by operation; and those refused with ThrottlingException.
        self.served: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        #: Deterministic throttling, for tests: operation -> n answers every n-th request with
        #: ThrottlingException, whatever the clock says (token buckets are not consulted).
        self.throttle_every: dict[str, int] = {}
        #: Called with each CloudWatch Logs operation before it is answered (tests act on progress).
        self.on_request: Callable[[str], None] | None = None
        #: For tests of the callers' error handling: CloudWatch Logs operation -> (error code, message) answered
        #: with HTTP 400 instead (an instrument, not a rule of AWS's: which call IAM refuses is the test's choice).
        self.refuse: dict[str, tuple[str, str]] = {}
        self._seen: Counter[str] = Counter()

    def set_quotas(self, quotas_tps: Mapping[str, float]) -> None:
        self.buckets = {op: TokenBucket(tps, capacity=max(1.0, tps)) for op, tps in quotas_tps.items()}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.removeprefix(LOGS_TARGET_PREFIX) if target.startswith(LOGS_TARGET_PREFIX) else None
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        body = _read_body(environ)

        if operation and self.on_request:
            self.on_request(operation)
        if operation in self.refuse:
            code, message = self.refuse[operation]
            payload = json.dumps({"__type": code, "message": message}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))])
            return [payload]
        if operation in self.throttle_every:
            with self.lock:
                self._seen[operation] += 1
                allowed = self._seen[operation] % self.throttle_every[operation] != 0
                (self.served if allowed else self.throttled)[operation] += 1
        elif operation in self.buckets and self.quotas_enabled:
            with self.lock:
                allowed = self.buckets[operation].take(time.monotonic())
                (self.served if allowed else self.throttled)[operation] += 1
        else:
            allowed = True
            if operation:
                self.served[operation] += 1
        if not allowed:
            payload = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))])
            return [payload]

        if operation == "CreateLogGroup":
            self.gaps.record_class(params=json.loads(body or b"{}"))
        if method == "POST" and path.rstrip("/") == _LAMBDA_FUNCTIONS_PATH:
            self.gaps.record_logging_config(params=json.loads(body or b"{}"))
        if method == "PUT" and path.startswith(_LAMBDA_FUNCTIONS_PATH) and path.endswith("/configuration"):
            name = path[len(_LAMBDA_FUNCTIONS_PATH) + 1:].removesuffix("/configuration")
            self.gaps.update_logging_config(params={**json.loads(body or b"{}"), "FunctionName": name})

        rewrite = None
        if operation == "DescribeLogGroups":
            rewrite = self.gaps.add_class
        elif method == "GET" and path.startswith(_LAMBDA_FUNCTIONS_PATH) and path.endswith("/configuration"):
            rewrite = self.gaps.add_logging_config
        if rewrite is None:
            return self.app(environ, start_response)
        return self._rewritten(environ, start_response, rewrite)

    def _rewritten(self, environ: dict[str, Any], start_response: Callable[..., Any], rewrite: Callable[..., None]) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"], captured["headers"] = status, headers

        raw = b"".join(self.app(environ, capture))
        if captured["status"].startswith("200"):
            parsed = json.loads(raw or b"{}")
            rewrite(parsed=parsed)
            raw = json.dumps(parsed).encode()
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"] + [("Content-Length", str(len(raw)))]
        start_response(captured["status"], headers)
        return [raw]


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back for moto."""
    import io

    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def scaled_quotas(scale: float) -> dict[str, float]:
    return {op: tps * scale for op, tps in DEFAULT_API_QUOTAS_TPS.items()}


@dataclass
class RunningServer:
    endpoint_url: str
    middleware: AwsLikeMiddleware
    region: str = DEFAULT_REGION

    def account(self) -> LocalAccount:
        return LocalAccount(self.region, endpoint_url=self.endpoint_url)

    def reset(self) -> None:
        """Forget every resource (moto's reset) and every count."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")).read()
        self.middleware.gaps = MotoGaps()
        self.middleware.served.clear()
        self.middleware.throttled.clear()
        self.middleware.throttle_every = {}
        self.middleware.on_request = None
        self.middleware.refuse = {}
        self.middleware._seen.clear()


@contextmanager
def aws_like_server(*, quota_scale: float | None = None, port: int = 0) -> Iterator[RunningServer]:
    """A moto server on 127.0.0.1 (``port``; 0: a free one); ``quota_scale`` turns on throttling at scaled quotas."""
    middleware = AwsLikeMiddleware(DomainDispatcherApplication(create_backend_app), scaled_quotas(quota_scale) if quota_scale else None)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = make_server("127.0.0.1", port, middleware, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield RunningServer(f"http://{host}:{port}", middleware)
    finally:
        server.shutdown()
        thread.join()


if __name__ == "__main__":  # `python -m localaws.server`: the local account with a governor deployed (localaws.sandbox)
    from localaws.sandbox import main

    sys.exit(main())

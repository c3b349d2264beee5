"""S3: a backfill run's checkpoint, decisions and summary, and the coverage objects (``S3RunStore``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .common import _error_code, client_config


class S3RunStore:
    """A backfill run's checkpoint, per-page decisions and summary, as objects under ``runs/<run id>/``."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self.client = client or boto3.client("s3", config=client_config())

    def load(self, run_id: str) -> dict[str, Any] | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=f"runs/{run_id}/checkpoint.json")["Body"].read()
        except ClientError as error:
            if _error_code(error) in ("NoSuchKey", "404"):
                return None
            raise
        return json.loads(body)

    def save(self, run_id: str, checkpoint: Mapping[str, Any]) -> None:
        self._put(f"runs/{run_id}/checkpoint.json", json.dumps(checkpoint))

    def write_page(self, run_id: str, page_number: int, outcomes: list[Any], position: int) -> int:
        """Decisions of one page, as JSON lines; a redone page overwrites its object. Returns the new position."""
        body = "".join(json.dumps(o.as_dict(), separators=(",", ":")) + "\n" for o in outcomes)
        self._put(f"runs/{run_id}/decisions/page-{page_number:06d}.jsonl", body)
        return position + 1

    def write_summary(self, run_id: str, summary: Mapping[str, Any]) -> str:
        key = f"runs/{run_id}/summary.json"
        self._put(key, json.dumps(summary, indent=2))
        return f"s3://{self.bucket}/{key}"

    def load_json(self, key: str) -> Any:
        """An object under ``runs/`` or ``coverage/`` as JSON; None when there is none."""
        try:
            return json.loads(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as error:
            if _error_code(error) in ("NoSuchKey", "404"):
                return None
            raise

    def save_json(self, key: str, value: Any) -> str:
        self._put(key, json.dumps(value, indent=2))
        return f"s3://{self.bucket}/{key}"

    def _put(self, key: str, body: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body.encode(), ContentType="application/json")

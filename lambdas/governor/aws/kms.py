"""KMS: a key's policy, read before the governor associates the key with a group (``KmsGateway``)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from .common import client_config, is_retryable


class KmsGateway:
    """KMS, for the one question the governor asks before associating a key: does its policy admit CloudWatch Logs."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def key_policy(self, key_arn: str) -> str | None:
        """The key's ``default`` policy; None when the key does not exist or the governor may not read it (a refusal that
        asking again cannot change, reported as the key being unusable)."""
        if self._client is None:
            self._client = boto3.client("kms", config=client_config())
        try:
            return self._client.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
        except ClientError as error:
            if is_retryable(error):
                raise
            return None

"""AWS Lambda: which functions exist and where a destination function writes its own logs (``LambdaGateway``)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from .common import DestinationUnavailable, _error_code, client_config


class LambdaGateway:
    """AWS Lambda: where the destination function writes its own logs (the guard), and which functions exist (orphans)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        """Made on first use: a container that never asks (no Lambda destination, no orphan) makes none."""
        if self._client is None:
            self._client = boto3.client("lambda", config=client_config())
        return self._client

    def function_log_group(self, function_arn: str) -> str | None:
        try:
            configuration = self.client.get_function_configuration(FunctionName=function_arn)
        except ClientError as error:
            if _error_code(error) == "ResourceNotFoundException":
                raise DestinationUnavailable(f"{function_arn}: the destination function does not exist in this account (CloudWatch "
                                             "Logs invokes no function of another account: 'Cross-account lambda invocation passing "
                                             "is not allowed')") from error
            raise
        return configuration.get("LoggingConfig", {}).get("LogGroup")

    def function_exists(self, name: str) -> bool:
        try:
            self.client.get_function_configuration(FunctionName=name)
        except ClientError as error:
            if _error_code(error) == "ResourceNotFoundException":
                return False
            raise
        return True

    def function_names(self) -> set[str]:
        """Every function of the account and region: one listing, a page of 50 per call."""
        names, request = set(), {"MaxItems": 50}
        while True:
            answer = self.client.list_functions(**request)
            names.update(f["FunctionName"] for f in answer.get("Functions", []))
            if not answer.get("NextMarker"):
                return names
            request["Marker"] = answer["NextMarker"]

"""The Resource Groups Tagging API: log groups' tags in bulk (``TaggingGateway``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import boto3

from .common import client_config


class TaggingGateway:
    """The Resource Groups Tagging API: log groups' tags in bulk instead of one ListTagsForResource per group.
    GetResources lists only resources that are or were tagged (the Tagging API reference): a group absent
    from an answer carries no tags."""

    PAGE = 100
    #: ARNs ``ResourceARNList`` takes at once (the model: 1-100, not together with TagFilters or ResourceTypeFilters).
    ARNS_AT_ONCE = 100

    def __init__(self, client: Any = None) -> None:
        self.client = client or boto3.client("resourcegroupstaggingapi", config=client_config())
        self.calls = 0

    def log_groups_tagged(self, keys: Iterable[str]) -> dict[str, dict[str, str]]:
        """Log group ARN (without ``:*``) -> all its tags, for the groups carrying any of ``keys``.
        One query per key: GetResources ANDs its tag filters."""
        found: dict[str, dict[str, str]] = {}
        for key in sorted(set(keys)):
            found.update(self._pages({"ResourceTypeFilters": ["logs:log-group"], "TagFilters": [{"Key": key}], "ResourcesPerPage": self.PAGE}))
        return found

    def tags_of(self, arns: Iterable[str]) -> dict[str, dict[str, str]]:
        """Log group ARN (without ``:*``) -> its tags, for each of ``arns`` (100 a call); an untagged group is
        absent from GetResources' answer and answered with no tags."""
        wanted = sorted(set(arns))
        found: dict[str, dict[str, str]] = {arn: {} for arn in wanted}
        for start in range(0, len(wanted), self.ARNS_AT_ONCE):
            answer = self._pages({"ResourceARNList": wanted[start:start + self.ARNS_AT_ONCE]})
            found.update((arn, tags) for arn, tags in answer.items() if arn in found)
        return found

    def _pages(self, request: dict[str, Any]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        while True:
            self.calls += 1
            answer = self.client.get_resources(**request)
            for mapping in answer.get("ResourceTagMappingList", []):
                found[mapping["ResourceARN"].removesuffix(":*")] = {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}
            if not answer.get("PaginationToken"):
                return found
            request = {**request, "PaginationToken": answer["PaginationToken"]}

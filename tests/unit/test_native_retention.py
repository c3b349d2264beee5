"""Compiling retention into native account-level policies: only where they say the same thing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from governor.config import parse_policy_config
from governor.native_retention import compile_retention

SHIPPER = "arn:aws:lambda:eu-west-1:123456789012:function:log-shipper"


def _compile(**raw: Any):
    return compile_retention(parse_policy_config({"destinationArn": SHIPPER, "retentionMode": "exact", **raw}))


def test_exact_retention_by_prefix_compiles_to_one_policy_a_target() -> None:
    compiled = _compile(defaultRetentionDays=30, retentionOverrides={"/aws/lambda/prod-": 365, "/audit/": 3653})

    assert compiled.expressible
    assert [(p.prefix, p.days) for p in compiled.policies] == [(None, 30), ("/audit/", 3653), ("/aws/lambda/prod-", 365)]
    default, audit, _ = compiled.policies
    assert default.name == "log-group-governor-default" and audit.name.startswith("log-group-governor-")
    assert default.request() == {"policyName": "log-group-governor-default", "policyType": "RETENTION_POLICY",
                                 "policyDocument": json.dumps({"retentionInDays": 30, "enforcementMode": "RETROACTIVE"})}
    assert audit.request(dry_run=True)["selectionCriteria"] == 'LogGroupNamePrefix IN ["/audit/"]'
    assert audit.request(dry_run=True)["dryRun"] is True


def test_overrides_alone_compile_without_a_default() -> None:
    compiled = _compile(defaultRetentionDays=None, retentionOverrides={"/a/": 90, "/b/": None})

    assert [(p.prefix, p.days) for p in compiled.policies] == [("/a/", 90)]


@pytest.mark.parametrize(("raw", "reason"), [
    ({"retentionMode": "minimum"}, "only \"exact\" can be expressed"),
    ({"retentionMode": "clamp", "retentionMinDays": 14, "retentionMaxDays": 90}, "only \"exact\" can be expressed"),
    ({"defaultRetentionDays": 14}, "defaultRetentionDays is 14 days: native retention policies keep at least 30"),
    ({"defaultRetentionDays": 90, "retentionOverrides": {"/dev/": 30}}, "retentionOverrides['/dev/'] is 30 days under defaultRetentionDays of 90"),
    ({"retentionOverrides": {"/a/": 365, "/a/b/": 90}}, "retentionOverrides['/a/b/'] is 90 days under retentionOverrides['/a/'] of 365"),
    ({"retentionOverrides": {"/legal/": None}}, "under a default policy no prefix can be left alone"),
    ({"excludeTags": {"opt-out": "true"}}, "cannot leave a group out"),
    ({"excludePatterns": ["-debug$"]}, "cannot leave a group out"),
    ({"orphanRetentionDays": 7}, "orphanRetentionDays"),
    ({"neverExpireCompliant": True}, "neverExpireCompliant"),
    ({"retentionOverrides": {f"/p{i:02d}/": 60 for i in range(20)}}, "at most 20 native retention policies"),
])
def test_what_native_policies_cannot_say_is_refused_with_the_reason(raw: dict, reason: str) -> None:
    compiled = _compile(**raw)

    assert not compiled.expressible and compiled.policies == ()
    assert any(reason in refusal for refusal in compiled.refusals), compiled.refusals

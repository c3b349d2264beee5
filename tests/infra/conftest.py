"""Synthesize the app as `cdk synth` does: cdk.json context, overrides, cdk-nag's AwsSolutions pack."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from app import build_app

REPO = Path(__file__).resolve().parents[2]
REPO_CONTEXT: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
ACCOUNT = "123456789012"
REGION = "eu-west-1"
SHIPPER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:log-shipper"


@dataclass
class Synthesized:
    template: Template
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.to_json()["Resources"]

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources.values() if r["Type"] == resource_type]

    def function(self, handler_suffix: str) -> dict[str, Any]:
        """The function whose handler ends so, or (a control only rules set: one entry for all) that governs that aspect."""
        [found] = self.functions(handler_suffix)
        return found

    def functions(self, handler_suffix: str) -> list[dict[str, Any]]:
        return [f for f in self.of_type("AWS::Lambda::Function") if f["Properties"]["Handler"].endswith(handler_suffix)
                or f["Properties"].get("Environment", {}).get("Variables", {}).get("GOVERNOR_ASPECT") == handler_suffix]

    def role_policy_of(self, function: dict[str, Any]) -> list[dict[str, Any]]:
        """The statements of the policies attached to a function's role."""
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        statements = []
        for policy in self.of_type("AWS::IAM::Policy"):
            if {"Ref": role_id} in policy["Properties"]["Roles"]:
                statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return statements


def synthesize(**overrides: Any) -> Synthesized:
    """Build and synthesize the app with ``governor:<key>`` overrides; cdk-nag findings raise."""
    context = {**REPO_CONTEXT, **{f"governor:{k}": v for k, v in overrides.items()}}
    outdir = Path(tempfile.mkdtemp(prefix="cdk.out-"))
    app = cdk.App(context=context, outdir=str(outdir))
    # cdk.json's nulls reach the app as the CLI passes them (jsii drops them from the App's context).
    stack = build_app(app, env=cdk.Environment(account=ACCOUNT, region=REGION), nulls={k: None for k, v in context.items() if v is None})
    app.synth()
    return Synthesized(Template.from_stack(stack), outdir)


@pytest.fixture(scope="session")
def default_stack() -> Synthesized:
    """The repository's cdk.json as it is."""
    return synthesize()


@pytest.fixture(scope="session")
def lambda_destination_stack() -> Synthesized:
    return synthesize(destinationArn=SHIPPER_ARN, excludeTags={}, alarmTopicArn=f"arn:aws:sns:{REGION}:{ACCOUNT}:ops", createTrail=False)


@pytest.fixture(scope="session")
def uninstall_stack() -> Synthesized:
    """Opt-ins that add resources and permissions: clean uninstall, orphan retention."""
    return synthesize(destinationArn=SHIPPER_ARN, removeFiltersOnDelete=True, orphanRetentionDays=7, createTrail=False)


from governor.controls import PLUGGED  # noqa: E402

#: Governance rules (#21) that use every control rules govern today.
RULES_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
RULES = [{"name": "production", "match": {"namePrefixes": ["/aws/lambda/prod-"]},
          # every control that plugs in whole (governor.controls), by its module's example, then the values these tests read
          **{c.name: c.example for c in PLUGGED}, "retention": {"days": 365}, "deletionProtection": True,
          "kmsKeyArn": RULES_KEY, "dataProtection": {"identifiers": ["EmailAddress", "CreditCardNumber"], "auditLogGroup": "/audit/findings"}},
         {"name": "noisy batch", "match": {"tags": {"workload": "batch"}}, "retention": {"days": 7},
          "shipping": {"enabled": True, "filterPattern": "ERROR"}},
         {"name": "scratch", "match": {"namePatterns": ["-scratch-"]}, "shipping": {"enabled": False}},
         {"name": "audit", "match": {"namePrefixes": ["/audit/"]}, "kmsKeyArn": "create"}]


@pytest.fixture(scope="session")
def rules_stack() -> Synthesized:
    """Rules with deletion protection, shipping by tag and shipping off, without any exclusion tag."""
    return synthesize(destinationArn=SHIPPER_ARN, excludeTags={}, rules=RULES, createTrail=False)


@pytest.fixture(scope="session")
def native_stack() -> Synthesized:
    """Both aspects through native account-level policies (issue #9)."""
    return synthesize(destinationArn=SHIPPER_ARN, subscriptionMode="account-policy", retentionVia="account-policy", retentionMode="exact",
                      excludeTags={}, excludePrefixes=[], createTrail=False, removeFiltersOnDelete=True)

"""docs/cost.md (#29 item 1): generated from the synthesized templates, current, and refusing a resource type it
cannot price; an organization member deploys no dashboard and, with an organization trail, no trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stacks import cost

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return cost.synthesize_all(REPO)


def test_every_resource_of_every_stack_is_priced_and_docs_cost_md_is_what_make_cost_writes(templates: dict[str, dict[str, Any]]) -> None:
    assert {title: cost.unknown_types(t) for title, t in templates.items()} == {title: [] for title in templates}
    assert (REPO / "docs" / "cost.md").read_text() == cost.render(templates), "run `make cost`"


def test_a_resource_the_model_cannot_price_is_named() -> None:
    template = {"Resources": {"Nat": {"Type": "AWS::EC2::NatGateway"}, "Role": {"Type": "AWS::IAM::Role"},
                              "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}}}}

    assert cost.unknown_types(template) == ["AWS::EC2::NatGateway"]


def test_the_fixed_cost_counts_each_priced_resource_from_the_template(templates: dict[str, dict[str, Any]]) -> None:
    default = templates["default (cdk.json as shipped)"]
    alarms = [r for r in default["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    lines = {line.resource_type: line for line in cost.fixed_lines(default)}

    assert lines["AWS::CloudWatch::Alarm"].count == len(alarms) and lines["AWS::CloudWatch::Dashboard"].count == 1
    assert lines["AWS::KMS::Key"].monthly == cost.PRICES["kms_customer_managed_key"].usd
    member = {line.resource_type for line in cost.fixed_lines(templates["organization member (the rollout's template)"])}
    assert "AWS::CloudWatch::Dashboard" not in member  # the fleet view is central
    archive = {line.resource_type: line for line in cost.fixed_lines(templates["organization archive (logging account, per region)"])}
    assert archive["AWS::Kinesis::Stream"].count == cost.HOURS_PER_MONTH  # one shard by default


def test_the_price_table_is_dated_and_every_price_names_its_page() -> None:
    assert cost.PRICES_AS_OF and cost.PRICE_REGION == "us-east-1"
    assert all(p.source.startswith("https://aws.amazon.com/") and p.usd > 0 and p.unit for p in cost.PRICES.values())
    used = {f.price for f in cost.FIXED.values()} | {p for prices in cost.USAGE.values() for p in prices}
    assert used <= set(cost.PRICES)

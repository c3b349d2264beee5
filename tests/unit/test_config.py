"""The configuration parser: what cdk.json, -c overrides and the Lambda environment go through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from governor.config import ConfigError, DestinationKind, parse_destination, parse_policy_config
from stacks.powertools_layer import locked_requirements, powertools_version
from stacks.settings import ALL_KEYS, DeploymentSettings

LAMBDA_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:log-shipper"
STREAM_ARN = "arn:aws:kinesis:eu-west-1:123456789012:stream/central-logs"
FIREHOSE_ARN = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/to-s3"
LOGS_DESTINATION_ARN = "arn:aws:logs:eu-west-1:210987654321:destination:central"
ROLE_ARN = "arn:aws:iam::123456789012:role/logs-delivery"
REPO_CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]


def test_repository_cdk_json_is_valid_and_uses_the_built_in_destination() -> None:
    settings = DeploymentSettings.from_context(REPO_CONTEXT)

    assert settings.policy.destination is None
    assert settings.policy.default_retention_days == 30
    assert settings.create_trail is True


def test_the_shipped_cdk_json_sets_every_governor_key() -> None:
    """Every key, so a new user sees them all (docs/configuration.md, generated, explains each)."""
    keys = {k.removeprefix("governor:") for k in REPO_CONTEXT if k.startswith("governor:")}

    assert keys == set(ALL_KEYS)


@pytest.mark.parametrize(
    ("arn", "role", "kind", "name"),
    [
        (LAMBDA_ARN, None, DestinationKind.LAMBDA, "log-shipper"),
        (LAMBDA_ARN + ":live", None, DestinationKind.LAMBDA, "log-shipper"),
        (STREAM_ARN, ROLE_ARN, DestinationKind.KINESIS, "central-logs"),
        (FIREHOSE_ARN, ROLE_ARN, DestinationKind.FIREHOSE, "to-s3"),
        (LOGS_DESTINATION_ARN, None, DestinationKind.LOGS_DESTINATION, "central"),
        # An organization-wide destination: the sender's role (CreateSubscriptionFilter-IAMrole).
        (LOGS_DESTINATION_ARN, ROLE_ARN, DestinationKind.LOGS_DESTINATION, "central"),
        ("arn:aws-cn:lambda:cn-north-1:123456789012:function:shipper", None, DestinationKind.LAMBDA, "shipper"),
    ],
)
def test_destination_kinds(arn: str, role: str | None, kind: DestinationKind, name: str) -> None:
    destination = parse_destination(arn, role)

    assert (destination.kind, destination.name, destination.role_arn) == (kind, name, role)


def test_lambda_destination_knows_its_default_log_group() -> None:
    assert parse_destination(LAMBDA_ARN, None).default_log_group == "/aws/lambda/log-shipper"
    assert parse_destination(STREAM_ARN, ROLE_ARN).default_log_group is None


@pytest.mark.parametrize(
    ("arn", "role", "message"),
    [
        ("", None, "destinationArn: expected the ARN"),
        ("log-shipper", None, "is not a supported destination"),
        ("arn:aws:sqs:eu-west-1:123456789012:queue", None, "is not a supported destination"),
        ("arn:aws:lambda:eu-west-1:1234:function:x", None, "is not a supported destination"),
        (STREAM_ARN, None, "destinationRoleArn: a kinesis destination needs"),
        (FIREHOSE_ARN, "", "destinationRoleArn: a firehose destination needs"),
        (LAMBDA_ARN, ROLE_ARN, "destinationRoleArn: a Lambda destination takes no role"),
        (STREAM_ARN, "logs-delivery", "destinationRoleArn: expected an IAM role ARN"),
    ],
)
def test_bad_destinations_name_the_key(arn: str, role: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_destination(arn, role)


def _policy(**raw: Any):
    return parse_policy_config({"destinationArn": LAMBDA_ARN, **raw})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"defaultRetentionDays": 45}, r"defaultRetentionDays: 45 is not a retention .*valid values \(days\): 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"),
        ({"defaultRetentionDays": True}, "defaultRetentionDays: expected a whole number or null"),
        ({"defaultRetentionDays": "thirty"}, "defaultRetentionDays: 'thirty' is not valid JSON"),
        ({"retentionOverrides": {"/aws/lambda/": 2}}, r"retentionOverrides\['/aws/lambda/'\]: 2 is not a retention"),
        ({"retentionOverrides": {"": 30}}, "retentionOverrides: a prefix must not be empty"),
        ({"retentionOverrides": [30]}, "retentionOverrides: expected an object"),
        ({"shortenRetention": "yes"}, "shortenRetention: 'yes' is not valid JSON"),
        ({"shortenRetention": 1}, "shortenRetention: expected true or false"),
        ({"excludePrefixes": "/aws/"}, "excludePrefixes: '/aws/' is not valid JSON"),
        ({"excludePrefixes": ["/aws/", 3]}, "excludePrefixes: expected a list of non-empty strings"),
        ({"excludePatterns": ["(unclosed"]}, r"excludePatterns: '\(unclosed' is not a valid regular expression"),
        ({"excludeTags": {"team": ""}}, "excludeTags: expected tag key -> value"),
        ({"excludeTags": ["team"]}, "excludeTags: expected an object"),
        ({"filterName": ""}, "filterName: expected 1 to 512 characters"),
        ({"filterName": "a:b"}, "filterName: expected 1 to 512 characters without ':'"),
        ({"filterPattern": "x" * 1025}, "filterPattern: at most 1024"),
        ({"maxFiltersPerLogGroup": 0}, "maxFiltersPerLogGroup: expected 1 to 10"),
        ({"shippingPathLogGroups": [""]}, "shippingPathLogGroups: expected a list of non-empty strings"),
    ],
)
def test_bad_values_name_the_key_and_what_it_accepts(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _policy(**raw)


def test_command_line_overrides_arrive_as_strings_and_are_decoded() -> None:
    # cdk synth -c governor:defaultRetentionDays=90 -c 'governor:excludePrefixes=["/aws/lambda/dev-"]'
    policy = _policy(defaultRetentionDays="90", shortenRetention="true", excludePrefixes='["/aws/lambda/dev-"]',
                     retentionOverrides='{"/aws/lambda/prod-": 365}', excludeTags='{"env": "*"}', maxFiltersPerLogGroup="5")

    assert policy.default_retention_days == 90
    assert policy.shorten_retention is True
    assert policy.exclude_prefixes == ("/aws/lambda/dev-",)
    assert policy.retention_overrides == {"/aws/lambda/prod-": 365}
    assert policy.exclude_tags == {"env": "*"}
    assert policy.max_filters_per_log_group == 5


def test_null_retention_means_leave_retention_alone() -> None:
    assert _policy(defaultRetentionDays=None).default_retention_days is None
    assert _policy(defaultRetentionDays="null").default_retention_days is None


def test_canonical_form_round_trips() -> None:
    policy = _policy(excludePatterns=["^/tmp/"], retentionOverrides={"/a": None, "/b": 7}, excludeTags={"k": "v"})

    again = parse_policy_config(json.loads(json.dumps(policy.to_json_dict())))

    assert again.to_json_dict() == policy.to_json_dict()


def test_unknown_governor_key_is_a_typo() -> None:
    with pytest.raises(ConfigError, match=r"unknown context key.*governor:defaultRetentionDay \(did you mean governor:defaultRetentionDays\?\); every key: docs/configuration.md$"):
        DeploymentSettings.from_context({"governor:defaultRetentionDay": 30})


def test_other_context_keys_such_as_feature_flags_are_not_ours() -> None:
    settings = DeploymentSettings.from_context({"@aws-cdk/core:checkSecretUsage": True, "governor:createTrail": "false"})

    assert settings.create_trail is False


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"governor:alarmTopicArn": "ops-alerts"}, "alarmTopicArn: expected an SNS topic ARN"),
        ({"governor:eventHandlerConcurrency": 1}, "eventHandlerConcurrency: expected 2 to 1000"),
        ({"governor:alarmEmail": "not an address"}, "alarmEmail: expected an e-mail address"),
        ({"governor:eventQuotaShare": 1.5}, "eventQuotaShare: expected a fraction"),
        ({"governor:powertoolsLayerArn": "powertools"}, "powertoolsLayerArn: expected a Lambda layer version ARN"),
        ({"governor:createTrail": "maybe"}, "createTrail: 'maybe' is not valid JSON"),
        ({"governor:destinationRoleArn": ROLE_ARN}, "destinationArn: expected the ARN"),
    ],
)
def test_deployment_settings_errors_name_the_key(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DeploymentSettings.from_context(context)


def test_the_layer_is_built_from_the_locked_powertools_the_tests_import() -> None:
    import importlib.metadata

    assert powertools_version() == importlib.metadata.version("aws-lambda-powertools")
    requirements = locked_requirements()
    assert requirements.count("--hash=sha256:") >= 3 and "aws-lambda-powertools==" in requirements

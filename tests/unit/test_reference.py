"""The configuration reference is the parsers' own: docs/configuration.md and the JSON Schema are
generated from the key registries the parsers read their types and defaults from, and each key's
documented default and example are what the parser accepts. Synth reports every error at once and
warns of look-alike keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared.config import ConfigError, Key, Keys, every_error, key_errors, override_key
from ship_logs.config import SHIP_LOGS, parse_ship_logs_config
from stacks import reference
from stacks.archive import ARCHIVE, ArchiveSettings
from stacks.rollout import ROLLOUT, RolloutSettings
from stacks.settings import DEPLOYMENT, GOVERNOR, DeploymentSettings
from governor.config import POLICY

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "cdk.json.schema.json").read_text())
KINESIS = "arn:aws:kinesis:eu-west-1:123456789012:stream/logs"
ORG_DESTINATION = "arn:aws:logs:eu-west-1:111111111111:destination:central-log-archive"
ROLLOUT_BASE = {"rollout:centralAccount": "111111111111", "rollout:regions": ["eu-west-1"], "rollout:waves": [["ou-exam-11111111"]]}
#: What a key's example needs beside it to be valid (the parser checks keys against each other).
COMPANIONS: dict[str, dict[str, Any]] = {
    "governor:destinationRoleArn": {"governor:destinationArn": KINESIS},
    "governor:retentionMinDays": {"governor:retentionMode": "clamp", "governor:retentionMaxDays": 365},
    "governor:retentionMaxDays": {"governor:retentionMode": "clamp", "governor:retentionMinDays": 7},
    "governor:senderRole": {"governor:destinationArn": ORG_DESTINATION},
    "governor:retentionVia": {"governor:retentionMode": "exact"},
    "governor:alarmTopic": {"governor:fleetBusArn": "arn:aws:events:eu-west-1:111111111111:event-bus/log-group-governor-fleet"},
    "archive:memberAccounts": {"archive:organizationId": ""},
    "rollout:wave": {"rollout:waves": [["ou-exam-11111111"], ["ou-exam-22222222"]]},
}
#: A key the base sets, tested with the base saying the same another way.
OTHER_WAY = {"archive:organizationId": {"archive:memberAccounts": ["222222222222"]}}
PARSERS: dict[str, tuple[Callable[[dict[str, Any]], Any], dict[str, Any]]] = {
    "governor:": (DeploymentSettings.from_context, {}),
    "archive:": (ArchiveSettings.from_context, {"archive:organizationId": "o-exampleorg1"}),
    "rollout:": (RolloutSettings.from_context, ROLLOUT_BASE),
}
APP_KEYS: list[tuple[Keys, Key]] = [(keys, key) for keys in (POLICY, DEPLOYMENT, ARCHIVE, ROLLOUT) for key in keys.values()]


def _ids(pairs: list[tuple[Keys, Key]]) -> list[str]:
    return [keys.prefix + key.name for keys, key in pairs]


def test_the_generated_reference_and_schema_are_current() -> None:
    for path, text in reference.render().items():
        assert path.read_text() == text, f"{path.name} is stale: run `make docs`"


def test_every_key_of_each_app_is_in_the_reference() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    for name in [*(k.prefix + n for k in (POLICY, DEPLOYMENT, ARCHIVE, ROLLOUT) for n in k), *(f"shipLogs.{n}" for n in SHIP_LOGS)]:
        assert f"| `{name}` |" in text
    assert set(GOVERNOR) == set(POLICY) | set(DEPLOYMENT)


def test_the_shipped_cdk_json_validates_against_the_schema_and_a_typo_does_not() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    shipped = json.loads((REPO / "cdk.json").read_text())
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert list(validator.iter_errors(shipped)) == []

    typo = {**shipped, "context": {**shipped["context"], "governor:defaultRetentionDay": 30, "governor:filterName": 3,
                                   "governor:shipLogs": {"sink": "kafka"}}}
    errors = sorted(e.message for e in validator.iter_errors(typo))
    assert len(errors) == 3 and any("governor:defaultRetentionDay" in e for e in errors) and any("kafka" in e for e in errors)


@pytest.mark.parametrize(("keys", "key"), APP_KEYS, ids=_ids(APP_KEYS))
def test_each_keys_default_and_example_are_what_the_parser_and_the_schema_accept(keys: Keys, key: Key) -> None:
    parse, base = PARSERS[keys.prefix]
    name = keys.prefix + key.name
    base = {k: v for k, v in base.items() if k != name} | OTHER_WAY.get(name, {})
    validator = jsonschema.Draft202012Validator(SCHEMA["properties"]["context"]["properties"][name])

    if key.required:  # its default means "not set", which the parser refuses
        with pytest.raises(ConfigError, match=name):
            parse({**base, name: key.default})
    else:
        assert parse({**base, name: key.default}) == parse(base), f"{name}: the documented default is not what the parser does without it"
    assert key.example is not None and key.example != key.default, f"{name}: document an example other than the default"
    parse({**base, **COMPANIONS.get(name, {}), name: key.example})
    assert list(validator.iter_errors(key.example)) == [], f"{name}: the schema refuses its example {key.example!r}"
    assert validator.is_valid(key.default) is not key.required, f"{name}: the schema and the parser disagree on the default"


@pytest.mark.parametrize("key", list(SHIP_LOGS.values()), ids=list(SHIP_LOGS))
def test_each_ship_logs_keys_default_and_example_parse(key: Key) -> None:
    companions = {"sink": {"endpoint": "https://search.example.com"}, "endpoint": {"sink": "http"}, "index": {"sink": "opensearch", "endpoint": "https://search.example.com"},
                  "auth": {"sink": "opensearch", "endpoint": "https://search.example.com",
                           "domainArn": "arn:aws:es:eu-west-1:123456789012:domain/logs"},
                  "secretArn": {"sink": "http", "endpoint": "https://logs.example.com", "auth": "basic"},
                  "domainArn": {"sink": "opensearch", "endpoint": "https://search.example.com", "auth": "sigv4"},
                  "customMetricNamespaces": {"metrics": {"custom": True}}}
    assert parse_ship_logs_config({key.name: key.default}, require_stream=False) == parse_ship_logs_config({}, require_stream=False)
    parse_ship_logs_config({**companions.get(key.name, {}), key.name: key.example}, require_stream=False)


def test_synth_reports_every_error_at_once() -> None:
    context = {"governor:defaultRetentionDays": 45, "governor:filterName": "a:b", "governor:maxFiltersPerLogGroup": 0,
               "governor:retentionMod": "exact", "governor:eventQuotaShare": 2}

    errors = every_error(DeploymentSettings.from_context, context)

    assert len(errors) == 5
    assert errors[0].startswith("unknown context key(s) governor:retentionMod (did you mean governor:retentionMode?); every key: docs/configuration.md")
    assert {e.split(":")[0] for e in errors[1:]} == {"filterName", "defaultRetentionDays", "maxFiltersPerLogGroup", "eventQuotaShare"}
    assert every_error(DeploymentSettings.from_context, {"governor:defaultRetentionDays": 90}) == []


def test_an_error_between_two_keys_is_reported_with_the_others() -> None:
    errors = every_error(DeploymentSettings.from_context, {"governor:retentionMinDays": 7, "governor:filterName": ""})

    assert len(errors) == 2 and errors[0].startswith("filterName") and "retentionMinDays / retentionMaxDays" in errors[1]


def test_look_alike_keys_are_errors_named_with_the_key_they_likely_mean() -> None:
    context = {"defaultRetentionDays": 31, "govenor:filterName": "x", "Governor:excludePrefixes": [], "archive:shard": 2,
               "@aws-cdk/core:checkSecretUsage": True, "aws:cdk:version-reporting": False, "my-team:owner": "platform",
               "governor:filterName": "kept"}

    errors = key_errors(context, (GOVERNOR, ARCHIVE, ROLLOUT))

    assert errors == [
        "unknown context key defaultRetentionDays: it has no prefix, so nothing would read it; did you mean governor:defaultRetentionDays?",
        "unknown context key govenor:filterName: its prefix 'govenor:' is not one of the project's (governor:, archive:, rollout:), "
        "so nothing would read it; did you mean governor:filterName?",
        "unknown context key Governor:excludePrefixes: its prefix 'Governor:' is not one of the project's (governor:, archive:, rollout:), "
        "so nothing would read it; did you mean governor:excludePrefixes?",
        "unknown context key archive:shard: did you mean archive:shards?",
    ]


@pytest.mark.parametrize(("given", "expected"), [("filterName", "governor:filterName"), ("governor:filterName", "governor:filterName")])
def test_issue30_the_clis_override_key_takes_a_key_with_or_without_its_prefix(given: str, expected: str) -> None:
    assert override_key(given, GOVERNOR, (ARCHIVE, ROLLOUT)) == expected


@pytest.mark.parametrize(("given", "message"), [
    ("filterNam", "unknown context key governor:filterNam: did you mean governor:filterName?"),
    ("govenor:filterName", "its prefix 'govenor:' is not one of the project's (governor:, archive:, rollout:), so nothing would read it; did you mean governor:filterName?"),
    ("archive:shards", "-c archive:shards: this tool reads governor: keys only"),
])
def test_issue30_the_clis_override_key_refuses_a_typo_by_the_synth_rule(given: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        override_key(given, GOVERNOR, (ARCHIVE, ROLLOUT))
    assert message in str(refused.value) and "valid keys" not in str(refused.value)


def test_issue30_figures_the_docs_give_are_the_codes() -> None:
    """A limit typed in prose is checked against the code that enforces it; configuration.md is generated."""
    from stacks.archive import DESTINATION_POLICY_LIMIT_BYTES, max_listed_accounts

    organization = " ".join((REPO / "docs" / "organization.md").read_text().split())
    assert f"(at most {max_listed_accounts()}: the policy holds {DESTINATION_POLICY_LIMIT_BYTES:,} bytes" in organization
    assert f"at most {max_listed_accounts()}:" in ARCHIVE["memberAccounts"].help
    assert "hundred" not in ARCHIVE["memberAccounts"].help
    assert "0 rolls out the first wave" in ROLLOUT["wave"].help and "how many waves are out" not in ROLLOUT["wave"].help.lower()


def test_issue30_the_rollout_of_wave_0_is_the_first_wave_as_documented() -> None:
    settings = RolloutSettings.from_context({**ROLLOUT_BASE, "rollout:waves": [["ou-exam-11111111"], ["ou-exam-22222222"]], "rollout:wave": 0})
    assert settings is not None and settings.organizational_units == ("ou-exam-11111111",)


def test_an_unknown_key_of_a_known_prefix_stops_synth_with_the_nearest_key() -> None:
    with pytest.raises(ConfigError, match=r"archive:shard \(did you mean archive:shards\?\)"):
        ArchiveSettings.from_context({"archive:organizationId": "o-exampleorg1", "archive:shard": 2})

"""Data protection by rule (#21): the policy the API model describes put on a new group, a policy someone else set widened
(never narrowed), a deletion by another principal repaired, through the real handler against localaws (G15)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from governor.handlers.create_log_group import entry_for
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, log_group_call_event, sqs_batch
from tests.conftest import call

protect_data = entry_for("data-protection")  # the control's function: govern, its GOVERNOR_ASPECT data-protection

PROD = "/aws/lambda/prod-orders"
OTHER_TOOL = "arn:aws:iam::123456789012:role/terraform-apply"
RULES = [{"name": "pii", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "dataProtection": {"identifiers": ["EmailAddress"]}}]


@pytest.fixture
def masked(account: LocalAccount, configure: Any) -> str:
    configure(rules=RULES)
    account.create_log_group(PROD)
    account.create_log_group("/aws/lambda/dev-orders")
    return PROD


def _identifiers(account: LocalAccount, name: str) -> list[str] | None:
    document = account.logs.get_data_protection_policy(logGroupIdentifier=name).get("policyDocument")
    if document is None:
        return None
    audit, redact = json.loads(document)["Statement"]
    assert audit["DataIdentifier"] == redact["DataIdentifier"]
    return sorted(arn.rsplit("/", 1)[-1] for arn in redact["DataIdentifier"])


def test_a_new_group_the_rule_matches_gets_the_policy_and_the_others_none(account: LocalAccount, masked: str) -> None:
    invocation = call(protect_data, sqs_batch([create_log_group_event(PROD), create_log_group_event("/aws/lambda/dev-orders")]))

    assert invocation.result == {"batchItemFailures": []}
    assert account.calls["logs.GetDataProtectionPolicy"] == 0  # DescribeLogGroups said neither had a policy: none read
    assert _identifiers(account, PROD) == ["EmailAddress"] and _identifiers(account, "/aws/lambda/dev-orders") is None
    assert invocation.metrics()[("DataProtectionSet", None)] == 1


def test_a_policy_someone_else_set_keeps_its_identifiers_and_gains_the_rules(account: LocalAccount, masked: str) -> None:
    theirs = {"Name": "team", "Version": "2021-06-01", "Statement": [
        {"Sid": "a", "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/AwsSecretKey"], "Operation": {"Audit": {"FindingsDestination": {}}}},
        {"Sid": "r", "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/AwsSecretKey"], "Operation": {"Deidentify": {"MaskConfig": {}}}}]}
    account.logs.put_data_protection_policy(logGroupIdentifier=PROD, policyDocument=json.dumps(theirs))

    widened = call(protect_data, create_log_group_event(PROD))

    assert (widened.result["action"], widened.result["reason"]) == ("put-data-protection-policy", "data-protection-narrower")
    assert _identifiers(account, PROD) == ["AwsSecretKey", "EmailAddress"]


def test_a_policy_deleted_by_another_principal_is_put_back(account: LocalAccount, masked: str) -> None:
    call(protect_data, create_log_group_event(PROD))
    account.logs.delete_data_protection_policy(logGroupIdentifier=PROD)

    repaired = call(protect_data, log_group_call_event("DeleteDataProtectionPolicy", PROD, role_arn=OTHER_TOOL))

    assert repaired.result["action"] == "put-data-protection-policy" and repaired.result["applied"] is True
    assert _identifiers(account, PROD) == ["EmailAddress"]


def test_localaws_refuses_a_document_the_model_forbids(account: LocalAccount, masked: str) -> None:
    """G15's rules, each a sentence of PutDataProtectionPolicy's model: the governor's own documents pass them."""
    lopsided = {"Statement": [
        {"DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress"], "Operation": {"Audit": {"FindingsDestination": {}}}},
        {"DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/Name"], "Operation": {"Deidentify": {"MaskConfig": {}}}}]}

    with pytest.raises(ClientError) as refused:
        account.logs.put_data_protection_policy(logGroupIdentifier=PROD, policyDocument=json.dumps(lopsided))

    assert refused.value.response["Error"]["Code"] == "InvalidParameterException" and "match exactly" in str(refused.value)


def test_a_reconcile_puts_what_events_missed_and_counts_the_control(account: LocalAccount, masked: str) -> None:
    import time

    from tests.conftest import reconcile_runner

    run = reconcile_runner(wall=time.time() + 2 * 86400)("nightly-1")

    assert _identifiers(account, PROD) == ["EmailAddress"]
    assert run.result["summary"]["coverage"]["byControl"]["data-protection"] == {"governed": 2, "compliant": 2, "compliantPercent": 100.0}


# --- dataProtectionVia account-policy: the account's one DATA_PROTECTION_POLICY ----------------------------

EVERY_GROUP = json.dumps([{"name": "pii everywhere", "dataProtection": {"identifiers": ["EmailAddress"]}}])


@pytest.fixture
def native(account: LocalAccount, shipper_arn: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from pathlib import Path

    import boto3

    import cli.__main__ as cli

    monkeypatch.setattr(cli.boto3, "Session", lambda **_: boto3.DEFAULT_SESSION)
    repo_cdk_json = Path(__file__).resolve().parents[2] / "cdk.json"

    def run(mode: str, *args: str) -> tuple[int, str]:
        import io

        err = io.StringIO()
        code = cli.main([mode, "--context", str(repo_cdk_json), "--region", account.region, "--no-progress", "--no-count", "--out-file", "/dev/null",
                         "-c", f"destinationArn={shipper_arn}", "-c", "dataProtectionVia=account-policy", "-c", "excludeTags={}",
                         "-c", f"rules={EVERY_GROUP}", *args], stderr=err)
        return code, err.getvalue()
    return run


def _account_policies(account: LocalAccount) -> list[dict[str, Any]]:
    return account.logs.describe_account_policies(policyType="DATA_PROTECTION_POLICY")["accountPolicies"]


def test_plan_says_apply_writes_the_accounts_data_protection_policy_once_and_no_group_gets_its_own(account: LocalAccount, native: Any) -> None:
    account.create_log_group(PROD)

    code, planned = native("plan", "--detailed-exitcode")
    assert code == 6 and "masks EmailAddress in every log group; to be written" in planned and _account_policies(account) == []

    code, applied = native("apply")
    [written] = _account_policies(account)
    assert code == 0 and written["policyName"] == "log-group-governor-data-protection"
    assert json.loads(written["policyDocument"])["Statement"][1]["Operation"] == {"Deidentify": {"MaskConfig": {}}}
    assert account.calls["logs.PutDataProtectionPolicy"] == 0  # the account's policy, not a group's

    code, again = native("plan", "--detailed-exitcode")
    assert code == 0 and "; in place" in again


def test_another_data_protection_policy_in_the_accounts_one_slot_is_not_replaced(account: LocalAccount, native: Any) -> None:
    from governor.controls.data_protection import data_protection_document

    account.logs.put_account_policy(policyName="security-team", policyType="DATA_PROTECTION_POLICY", scope="ALL",
                                    policyDocument=data_protection_document(["AwsSecretKey"], "theirs"))

    code, refused = native("apply")

    assert code == 1 and "another DATA_PROTECTION_POLICY ('security-team')" in refused
    assert [p["policyName"] for p in _account_policies(account)] == ["security-team"]


@pytest.mark.parametrize("overrides, says", [
    ({"rules": [{"match": {"namePrefixes": ["/prod/"]}, "dataProtection": {"identifiers": ["EmailAddress"]}}]}, "selects groups"),
    ({"rules": [{"dataProtection": {"identifiers": ["EmailAddress"]}}], "excludePrefixes": ["/sandbox/"]}, "masks every group of the account"),
])
def test_what_the_accounts_one_policy_cannot_say_is_refused(overrides: dict[str, Any], says: str) -> None:
    from governor.config import ConfigError, parse_policy_config

    with pytest.raises(ConfigError, match=says):
        parse_policy_config({"destinationArn": "arn:aws:lambda:eu-west-1:123456789012:function:x", "dataProtectionVia": "account-policy",
                             **overrides})


def test_audit_findings_need_their_log_group_to_exist_as_the_model_says(account: LocalAccount, configure: Any) -> None:
    rules = [{**RULES[0], "dataProtection": {"identifiers": ["EmailAddress"], "auditLogGroup": "/audit/findings"}}]
    configure(rules=rules)
    account.create_log_group(PROD)

    missing = call(protect_data, sqs_batch([create_log_group_event(PROD)]))
    account.create_log_group("/audit/findings")
    created = call(protect_data, create_log_group_event(PROD))

    assert missing.result == {"batchItemFailures": []}  # a conflict with its reason, alarmed, not a retry loop
    [conflict] = [line for line in missing.logs if line.get("decision") == "conflict"]
    assert conflict["reason"] == "data-protection-refused" and "must already exist" in conflict["detail"]
    assert created.result["action"] == "put-data-protection-policy" and created.result["applied"] is True
    audit = json.loads(account.logs.get_data_protection_policy(logGroupIdentifier=PROD)["policyDocument"])["Statement"][0]
    assert audit["Operation"]["Audit"]["FindingsDestination"] == {"CloudWatchLogs": {"LogGroup": "/audit/findings"}}


# --- issue 26, item 9: minimum widens their document in place ------------------------------------------------

@pytest.mark.parametrize("audit_log_group", [None, "/audit/findings"])
def test_issue26_widening_someone_elses_policy_keeps_their_destinations_custom_identifiers_and_every_other_field(
        account: LocalAccount, configure: Any, audit_log_group: str | None) -> None:
    """Their S3 and Firehose findings destinations, their custom data identifier (defined in Configuration, named in
    DataIdentifier as they wrote it), their Name, Description, Version and each statement's other fields all stay; the
    rule's identifier is added to both DataIdentifier arrays (and its audit log group beside their destinations)."""
    control = {"identifiers": ["EmailAddress"], **({"auditLogGroup": audit_log_group} if audit_log_group else {})}
    configure(rules=[{**RULES[0], "dataProtection": control}])
    account.create_log_group(PROD)
    if audit_log_group:
        account.create_log_group(audit_log_group)
    ids = ["arn:aws:dataprotection::aws:data-identifier/AwsSecretKey", "EmployeeId"]
    findings = {"S3": {"Bucket": "security-findings"}, "Firehose": {"DeliveryStream": "findings-stream"}}
    theirs = {"Name": "security-team", "Description": "what the security team masks", "Version": "2021-06-01",
              "Configuration": {"CustomDataIdentifier": [{"Name": "EmployeeId", "Regex": "EmployeeId-\\d{9}"}]},
              "Statement": [{"Sid": "audit-policy", "DataIdentifier": list(ids), "Operation": {"Audit": {"FindingsDestination": findings}}},
                            {"Sid": "redact-policy", "DataIdentifier": list(ids), "Operation": {"Deidentify": {"MaskConfig": {}}}}]}
    account.logs.put_data_protection_policy(logGroupIdentifier=PROD, policyDocument=json.dumps(theirs))

    widened = call(protect_data, sqs_batch([create_log_group_event(PROD)]))

    assert widened.result == {"batchItemFailures": []}
    document = json.loads(account.logs.get_data_protection_policy(logGroupIdentifier=PROD)["policyDocument"])
    added = [*ids, "arn:aws:dataprotection::aws:data-identifier/EmailAddress"]
    expected_findings = {**findings, **({"CloudWatchLogs": {"LogGroup": audit_log_group}} if audit_log_group else {})}
    assert document == {**theirs, "Statement": [
        {"Sid": "audit-policy", "DataIdentifier": added, "Operation": {"Audit": {"FindingsDestination": expected_findings}}},
        {"Sid": "redact-policy", "DataIdentifier": added, "Operation": {"Deidentify": {"MaskConfig": {}}}}]}
    # Compliant now: the next event writes nothing.
    account.calls.clear()
    again = call(protect_data, create_log_group_event(PROD))
    assert (again.result["action"], again.result["reason"]) == ("leave", "data-protection-compliant")
    assert account.calls["logs.PutDataProtectionPolicy"] == 0


@pytest.mark.parametrize("identifier, refused", [("{arn}:*", True), ("{arn}", False), ("{name}", False)])
def test_issue27_a_data_protection_call_names_the_group_as_the_model_allows(account: LocalAccount, identifier: str, refused: bool) -> None:
    """#27 item 9: GetDataProtectionPolicy takes a name or an ARN without the trailing ``:*`` (the model's pattern); AWS
    refuses the other (localaws G21)."""
    from botocore.exceptions import ClientError
    name = "/aws/lambda/identified"
    account.create_log_group(name)
    value = identifier.format(arn=f"arn:aws:logs:{account.region}:{account.account_id}:log-group:{name}", name=name)
    if refused:
        with pytest.raises(ClientError) as error:
            account.logs.get_data_protection_policy(logGroupIdentifier=value)
        assert error.value.response["Error"]["Code"] == "InvalidParameterException"
    else:
        assert "policyDocument" not in account.logs.get_data_protection_policy(logGroupIdentifier=value)


def test_review28_with_no_data_protection_rule_the_account_form_neither_blocks_nor_deletes(account: LocalAccount, shipper_arn: str,
                                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Review of #28: under dataProtectionVia account-policy, a configuration whose rules set no dataProtection leaves the
    account's DATA_PROTECTION_POLICY alone: another tool's does not stop plan/apply, and the governor's is not deleted
    (the governor deletes no data protection policy)."""
    from pathlib import Path

    import boto3

    import cli.__main__ as cli
    from governor.controls.data_protection import ACCOUNT_POLICY_NAME, data_protection_document

    monkeypatch.setattr(cli.boto3, "Session", lambda **_: boto3.DEFAULT_SESSION)
    account.create_log_group(PROD)

    def run(mode: str, *args: str) -> int:
        import io
        return cli.main([mode, "--context", str(Path(__file__).resolve().parents[2] / "cdk.json"), "--region", account.region, "--no-progress",
                         "--no-count", "--out-file", "/dev/null", "-c", f"destinationArn={shipper_arn}", "-c", "dataProtectionVia=account-policy",
                         "-c", "excludeTags={}", "-c", 'rules=[{"retention": {"days": 30}}]', *args], stderr=io.StringIO())

    for name in ("security-team", ACCOUNT_POLICY_NAME):
        account.logs.put_account_policy(policyName=name, policyType="DATA_PROTECTION_POLICY", scope="ALL",
                                        policyDocument=data_protection_document(["AwsSecretKey"], "theirs"))
        assert run("apply") == 0
        assert [p["policyName"] for p in _account_policies(account)] == [name]
        assert run("plan", "--detailed-exitcode") == 0  # nothing pending: retention applied, the policy not the governor's to change
        account.logs.delete_account_policy(policyName=name, policyType="DATA_PROTECTION_POLICY")
    assert account.logs.describe_log_groups(logGroupNamePrefix=PROD)["logGroups"][0]["retentionInDays"] == 30

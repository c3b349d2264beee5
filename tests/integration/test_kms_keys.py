"""A KMS key per group by rule (#21): the key's policy checked before the association, a refused key a conflict with its
reason (not a retry loop), another principal's disassociation repaired, no key ever replaced or taken off."""

from __future__ import annotations

import json
from typing import Any

import pytest

from governor.handlers.create_log_group import entry_for
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, log_group_call_event, sqs_batch
from tests.conftest import call

encrypt_log_group = entry_for("encryption")  # the control's function: govern, its GOVERNOR_ASPECT encryption

PROD = "/aws/lambda/prod-orders"
OTHER_TOOL = "arn:aws:iam::123456789012:role/terraform-apply"


def _key(account: LocalAccount, *, admits_logs: bool = True, groups: str = "/aws/lambda/prod-*") -> str:
    """A symmetric key; its policy lets this region's CloudWatch Logs use it for ``groups`` (the guide's statement) or not."""
    statements = [{"Sid": "account", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account.account_id}:root"}, "Action": "kms:*",
                   "Resource": "*"}]
    if admits_logs:
        statements.append({"Sid": "logs", "Effect": "Allow", "Principal": {"Service": f"logs.{account.region}.amazonaws.com"},
                           "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                           "Resource": "*", "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                                                     f"arn:aws:logs:{account.region}:{account.account_id}:log-group:{groups}"}}})
    kms = account.client("kms")
    return kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))["KeyMetadata"]["Arn"]


def _configure(configure: Any, key: str) -> None:
    configure(rules=[{"name": "production", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "kmsKeyArn": key}])


def _key_of(account: LocalAccount, name: str) -> str | None:
    [group] = [g for g in account.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    return group.get("kmsKeyId")


def test_the_rules_key_is_associated_with_a_new_group_after_its_policy_is_checked(account: LocalAccount, configure: Any) -> None:
    key = _key(account)
    _configure(configure, key)
    account.create_log_group(PROD)
    account.create_log_group("/aws/lambda/dev-orders")

    invocation = call(encrypt_log_group, sqs_batch([create_log_group_event(PROD), create_log_group_event("/aws/lambda/dev-orders")]))

    assert invocation.result == {"batchItemFailures": []}
    assert _key_of(account, PROD) == key and _key_of(account, "/aws/lambda/dev-orders") is None
    assert account.calls["kms.GetKeyPolicy"] == 1 and account.calls["logs.AssociateKmsKey"] == 1
    assert invocation.metrics()[("KmsKeyAssociated", None)] == 1


@pytest.mark.parametrize("admits_logs, groups, says", [
    (False, "", "no statement of the key's policy allows logs.eu-west-1.amazonaws.com"),
    (True, "/ecs/*", "no statement of the key's policy allows"),  # the condition names other groups
])
def test_a_key_whose_policy_does_not_admit_cloudwatch_logs_is_a_conflict_with_its_reason_and_no_call(
        account: LocalAccount, configure: Any, admits_logs: bool, groups: str, says: str) -> None:
    key = _key(account, admits_logs=admits_logs, groups=groups)
    _configure(configure, key)
    account.create_log_group(PROD)

    invocation = call(encrypt_log_group, create_log_group_event(PROD))

    assert (invocation.result["action"], invocation.result["reason"]) == ("conflict", "kms-key-unusable")
    assert says in invocation.result["detail"] and "fix the key's policy" in invocation.result["detail"]
    assert account.calls["logs.AssociateKmsKey"] == 0 and _key_of(account, PROD) is None


def test_a_key_cloudwatch_logs_refuses_is_a_conflict_not_a_retry(account: LocalAccount, configure: Any) -> None:
    key = _key(account)
    account.client("kms").disable_key(KeyId=key.rsplit("/", 1)[-1])  # its policy reads well, but AWS refuses a disabled key
    _configure(configure, key)
    account.create_log_group(PROD)

    invocation = call(encrypt_log_group, sqs_batch([create_log_group_event(PROD)]))

    assert invocation.result == {"batchItemFailures": []}  # finished: asking again cannot help
    [outcome] = [line for line in invocation.logs if line.get("decision") == "conflict"]
    assert outcome["reason"] == "kms-key-unusable" and "AWS refused the group's KMS key the rule asks for" in outcome["detail"]


def test_issue27_a_key_aws_refuses_with_access_denied_is_the_documented_conflict_not_a_retry(account: LocalAccount, configure: Any) -> None:
    """#27 item 3: the governor's reading of the key's policy finds the guide's statement, but another statement denies
    CloudWatch Logs; AWS answers AccessDeniedException "The specified KMS key does not exist or is not allowed to be used
    with Arn ..." (recorded in three public threads, localaws G14). That is the key's to fix: a conflict, finished."""
    key = _key(account)
    kms = account.client("kms")
    policy = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
    policy["Statement"].append({"Sid": "no-logs-outside-the-vpc", "Effect": "Deny", "Principal": {"Service": f"logs.{account.region}.amazonaws.com"},
                                "Action": "kms:*", "Resource": "*"})
    kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    _configure(configure, key)
    account.create_log_group(PROD)

    invocation = call(encrypt_log_group, sqs_batch([create_log_group_event(PROD)]))

    assert invocation.result == {"batchItemFailures": []}  # finished: asking again cannot help
    [outcome] = [line for line in invocation.logs if line.get("decision") == "conflict"]
    assert outcome["reason"] == "kms-key-unusable" and "is not allowed to be used with Arn" in outcome["detail"]
    assert invocation.metrics()[("Conflicts", "kms-key-unusable")] == 1 and _key_of(account, PROD) is None


def test_a_key_taken_off_by_another_principal_is_associated_again_and_another_key_is_never_replaced(
        account: LocalAccount, configure: Any) -> None:
    key, theirs = _key(account), _key(account)
    _configure(configure, key)
    account.create_log_group(PROD)
    call(encrypt_log_group, create_log_group_event(PROD))
    account.logs.disassociate_kms_key(logGroupName=PROD)

    repaired = call(encrypt_log_group, log_group_call_event("DisassociateKmsKey", PROD, role_arn=OTHER_TOOL))
    account.logs.associate_kms_key(logGroupName=PROD, kmsKeyId=theirs)
    replaced = call(encrypt_log_group, log_group_call_event("AssociateKmsKey", PROD, role_arn=OTHER_TOOL, kmsKeyId=theirs))

    assert repaired.result["action"] == "associate-kms-key" and repaired.result["applied"] is True
    assert (replaced.result["action"], replaced.result["reason"]) == ("conflict", "other-kms-key")
    assert _key_of(account, PROD) == theirs  # left as that principal set it, and reported


@pytest.mark.parametrize("identifier", ["arn", "arn-with-star"])
def test_issue27_a_key_taken_off_by_resource_identifier_is_associated_again_at_once(account: LocalAccount, configure: Any,
                                                                                    identifier: str) -> None:
    """#27 item 6: DisassociateKmsKey names the group by logGroupName or by resourceIdentifier, its ARN (the model); a record
    naming it by ARN is drift like the other, repaired by the event, not left for the reconcile."""
    key = _key(account)
    _configure(configure, key)
    account.create_log_group(PROD)
    call(encrypt_log_group, create_log_group_event(PROD))
    arn = f"arn:aws:logs:{account.region}:{account.account_id}:log-group:{PROD}" + (":*" if identifier == "arn-with-star" else "")
    account.logs.disassociate_kms_key(resourceIdentifier=arn)
    assert _key_of(account, PROD) is None
    record = log_group_call_event("DisassociateKmsKey", PROD, role_arn=OTHER_TOOL)
    del record["detail"]["requestParameters"]["logGroupName"]
    record["detail"]["requestParameters"]["resourceIdentifier"] = arn

    repaired = call(encrypt_log_group, sqs_batch([record]))

    assert repaired.result == {"batchItemFailures": []} and _key_of(account, PROD) == key
    [outcome] = [line for line in repaired.logs if line.get("decision")]
    assert outcome["decision"] == "associate-kms-key" and outcome["logGroupName"] == PROD


def test_issue27_a_query_results_key_is_not_a_group_of_ours(account: LocalAccount, configure: Any) -> None:
    """AssociateKmsKey's resourceIdentifier may name the account's query results (`query-result:*`), not a group."""
    _configure(configure, _key(account))
    record = log_group_call_event("DisassociateKmsKey", PROD, role_arn=OTHER_TOOL)
    del record["detail"]["requestParameters"]["logGroupName"]
    record["detail"]["requestParameters"]["resourceIdentifier"] = f"arn:aws:logs:{account.region}:{account.account_id}:query-result:*"

    ignored = call(encrypt_log_group, record)

    assert (ignored.result["status"], ignored.result["reason"]) == ("ignored", "not-a-log-group")


def test_a_reconcile_associates_what_events_missed_and_counts_the_control(account: LocalAccount, configure: Any) -> None:
    import time

    from tests.conftest import reconcile_runner

    _configure(configure, _key(account, admits_logs=False))  # a key CloudWatch Logs may not use: every production group a conflict
    account.create_log_group(PROD)
    account.create_log_group("/aws/lambda/dev-orders")

    run = reconcile_runner(wall=time.time() + 2 * 86400)("nightly-1")

    coverage = run.result["summary"]["coverage"]
    assert coverage["byControl"]["encryption"] == {"governed": 2, "compliant": 1, "compliantPercent": 50.0}
    assert coverage["conflicts"] == {"kms-key-unusable": 1}


def test_issue27_a_key_whose_policy_admits_every_principal_is_associated(account: LocalAccount, configure: Any) -> None:
    """Review of #27: a statement for every principal (``"Principal": "*"``) admits CloudWatch Logs too; AWS accepted such a
    key for CreateLogGroup (tests/fidelity/recorded/ls-create-log-group-with-kms-key.json). The governor's check must not
    call it unusable."""
    kms = account.client("kms")
    key = kms.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}]}))["KeyMetadata"]["Arn"]
    _configure(configure, key)
    account.create_log_group(PROD)

    invocation = call(encrypt_log_group, sqs_batch([create_log_group_event(PROD)]))

    assert invocation.result == {"batchItemFailures": []} and _key_of(account, PROD) == key

"""Deletion protection by rule (#21): decided by the policy core, applied by its own event handler on CreateLogGroup,
by the backfill, repaired when another principal turns it off (own calls ignored, fights held), counted per control."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from governor.handlers import create_log_group as handlers
from governor.handlers.create_log_group import entry_for
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, log_group_call_event, sqs_batch
from tests.conftest import OWN_ROLES, call

protect_log_group = entry_for("protection")  # the control's function: govern, its GOVERNOR_ASPECT protection

PROD = "/aws/lambda/prod-orders"
DEV = "/aws/lambda/dev-orders"
OTHER_TOOL = "arn:aws:iam::123456789012:role/terraform-apply"
RULES = [{"name": "production", "match": {"namePrefixes": ["/aws/lambda/prod-"]}, "retention": {"days": 365}, "deletionProtection": True}]


@pytest.fixture
def protected(account: LocalAccount, configure: Any) -> str:
    configure(rules=RULES)
    account.create_log_group(PROD)
    account.create_log_group(DEV)
    return PROD


def _protection(account: LocalAccount, name: str) -> bool:
    [group] = [g for g in account.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    return group["deletionProtectionEnabled"]


def test_a_new_group_a_rule_protects_is_protected_and_then_cannot_be_deleted(account: LocalAccount, protected: str) -> None:
    invocation = call(protect_log_group, sqs_batch([create_log_group_event(PROD), create_log_group_event(DEV)]))

    assert invocation.result == {"batchItemFailures": []}
    assert _protection(account, PROD) and not _protection(account, DEV)  # only where the rule says
    assert invocation.metrics()[("DeletionProtectionSet", None)] == 1
    with pytest.raises(ClientError) as refused:
        account.logs.delete_log_group(logGroupName=PROD)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    account.logs.delete_log_group(logGroupName=DEV)  # the unprotected one goes


def test_protection_turned_off_by_another_principal_is_turned_on_again_and_our_own_call_wakes_nothing(account: LocalAccount,
                                                                                                     protected: str) -> None:
    call(protect_log_group, create_log_group_event(PROD))
    account.logs.put_log_group_deletion_protection(logGroupIdentifier=PROD, deletionProtectionEnabled=False)

    repaired = call(protect_log_group, log_group_call_event("PutLogGroupDeletionProtection", PROD, role_arn=OTHER_TOOL))
    own = call(protect_log_group, log_group_call_event("PutLogGroupDeletionProtection", PROD, role_arn=OWN_ROLES[0]))

    assert repaired.result["action"] == "protect" and repaired.result["applied"] is True and _protection(account, PROD)
    assert repaired.metrics()[("DriftRepaired", None)] == 1
    assert own.result["status"] == "ignored" and own.result["reason"] == "own-call"


def test_a_principal_that_keeps_turning_it_off_is_left_alone_and_reported(account: LocalAccount, protected: str, configure: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    configure(rules=RULES, driftFightLimit=2)
    now = [(time.time() // 3600 + 48) * 3600 + 1]
    monkeypatch.setattr(handlers, "wall_clock", lambda: now[0])
    outcomes = []
    for _ in range(3):
        account.logs.put_log_group_deletion_protection(logGroupIdentifier=PROD, deletionProtectionEnabled=False)
        outcomes.append(call(protect_log_group, log_group_call_event("PutLogGroupDeletionProtection", PROD, role_arn=OTHER_TOOL)))
        now[0] += 60

    assert [o.result["action"] for o in outcomes] == ["protect", "protect", "conflict"]
    assert outcomes[-1].result["principal"] == OTHER_TOOL and not _protection(account, PROD)  # their choice stands, reported


def test_the_other_handlers_do_not_act_on_deletion_protection_calls(account: LocalAccount, protected: str) -> None:
    from governor.handlers.create_log_group import set_retention

    ignored = call(set_retention, log_group_call_event("PutLogGroupDeletionProtection", PROD, role_arn=OTHER_TOOL))

    assert ignored.result["status"] == "ignored" and ignored.result["reason"] == "not-for-this-handler"


def test_a_reconcile_protects_what_events_missed_and_counts_the_control(account: LocalAccount, protected: str) -> None:
    from tests.conftest import reconcile_runner

    run = reconcile_runner(wall=time.time() + 2 * 86400)("nightly-1")

    assert run.result["done"] is True and _protection(account, PROD) and not _protection(account, DEV)
    by_control = run.result["summary"]["coverage"]["byControl"]
    assert by_control["protection"] == {"governed": 2, "compliant": 2, "compliantPercent": 100.0}  # repaired by this run, or unmanaged
    assert run.result["summary"]["byAction"].get("protection protect") == 1


def test_a_rule_that_says_false_exact_turns_off_what_someone_else_turned_on(account: LocalAccount, configure: Any) -> None:
    configure(rules=[{"name": "scratch", "match": {"namePrefixes": ["/scratch/"]}, "deletionProtection": False, "exact": ["deletionProtection"]}])
    account.create_log_group("/scratch/tmp")
    account.logs.put_log_group_deletion_protection(logGroupIdentifier="/scratch/tmp", deletionProtectionEnabled=True)

    turned_off = call(protect_log_group, log_group_call_event("PutLogGroupDeletionProtection", "/scratch/tmp", role_arn=OTHER_TOOL,
                                                              deletionProtectionEnabled=True))

    assert (turned_off.result["action"], turned_off.result["applied"]) == ("unprotect", True) and not _protection(account, "/scratch/tmp")
    assert turned_off.metrics()[("DeletionProtectionRemoved", None)] == 1

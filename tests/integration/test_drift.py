"""Drift repair: CloudTrail records of the calls that undo the governor's work, through the real handlers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from governor.aws import StateTable
from governor.drift import InMemoryLedger
from governor.handlers import create_log_group as handlers
from governor.handlers.create_log_group import set_retention, subscribe_log_group
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, log_group_call_event, sqs_batch
from tests.conftest import OWN_ROLES, call

FILTER = "log-group-governor"
GROUP = "/aws/lambda/orders-api"
OTHER_TOOL = "arn:aws:iam::123456789012:role/terraform-apply"
OPT_OUT = {"log-group-governor:opt-out": "true"}


@pytest.fixture
def governed(account: LocalAccount, shipper_arn: str, configure: Any) -> str:
    """A group the governor has subscribed and given 30 days."""
    account.create_log_group(GROUP)
    event = create_log_group_event(GROUP)
    call(subscribe_log_group, event)
    call(set_retention, event)
    assert account.snapshot(GROUP) == {"class": "STANDARD", "retention": 30, "filters": {FILTER: shipper_arn}}
    return GROUP


class Clock:
    """The handlers' wall clock, two days after the groups are created (moto stamps them with the real time),
    at the start of an hour (a test that means to straddle one says so)."""

    def __init__(self) -> None:
        self.now = (time.time() // 3600 + 48) * 3600 + 1

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(handlers, "wall_clock", clock)
    return clock


def test_a_filter_deleted_by_hand_is_put_back(account: LocalAccount, shipper_arn: str, governed: str) -> None:
    account.logs.delete_subscription_filter(logGroupName=governed, filterName=FILTER)

    invocation = call(subscribe_log_group, log_group_call_event("DeleteSubscriptionFilter", governed, role_arn=OTHER_TOOL))

    assert (invocation.result["action"], invocation.result["reason"], invocation.result["applied"]) == ("subscribe", "not-subscribed", True)
    assert account.snapshot(governed)["filters"] == {FILTER: shipper_arn}
    assert invocation.metrics()[("DriftRepaired", None)] == 1
    assert invocation.logs[-1]["principal"] == OTHER_TOOL and invocation.logs[-1]["eventName"] == "DeleteSubscriptionFilter"


def test_our_filter_pointed_elsewhere_is_pointed_back(account: LocalAccount, shipper_arn: str, governed: str) -> None:
    vendor = account.create_function("vendor-apm-forwarder")
    account.logs.put_subscription_filter(logGroupName=governed, filterName=FILTER, filterPattern="ERROR", destinationArn=vendor)

    invocation = call(subscribe_log_group, log_group_call_event("PutSubscriptionFilter", governed, role_arn=OTHER_TOOL, destinationArn=vendor))

    assert (invocation.result["action"], invocation.result["reason"]) == ("update-filter", "filter-differs")
    assert account.snapshot(governed)["filters"] == {FILTER: shipper_arn}


@pytest.mark.parametrize(("event_name", "change"), [
    ("PutRetentionPolicy", lambda logs: logs.put_retention_policy(logGroupName=GROUP, retentionInDays=7)),
    ("DeleteRetentionPolicy", lambda logs: logs.delete_retention_policy(logGroupName=GROUP)),
])
def test_retention_shortened_or_removed_by_another_principal_is_restored(account: LocalAccount, governed: str, event_name: str,
                                                                          change: Any) -> None:
    change(account.logs)

    invocation = call(set_retention, log_group_call_event(event_name, governed, role_arn=OTHER_TOOL))

    assert invocation.result["action"] == "set-retention" and invocation.result["applied"] is True
    assert account.snapshot(governed)["retention"] == 30


def test_each_handler_acts_only_on_its_own_aspects_calls(account: LocalAccount, governed: str) -> None:
    reads = account.calls["logs.DescribeLogGroups"]

    not_mine = [call(subscribe_log_group, log_group_call_event("PutRetentionPolicy", governed, role_arn=OTHER_TOOL)),
                call(set_retention, log_group_call_event("DeleteSubscriptionFilter", governed, role_arn=OTHER_TOOL))]

    assert [i.result["reason"] for i in not_mine] == ["not-for-this-handler", "not-for-this-handler"]
    assert account.calls["logs.DescribeLogGroups"] == reads


@pytest.mark.parametrize("event_name", ["DeleteSubscriptionFilter", "PutRetentionPolicy", "TagResource", "UntagLogGroup"])
def test_the_governors_own_calls_never_trigger_it(account: LocalAccount, governed: str, event_name: str) -> None:
    reads = account.calls["logs.DescribeLogGroups"]
    handler = subscribe_log_group if event_name in ("DeleteSubscriptionFilter", "TagResource", "UntagLogGroup") else set_retention

    invocation = call(handler, log_group_call_event(event_name, governed, role_arn=OWN_ROLES[0]))

    assert (invocation.result["status"], invocation.result["reason"]) == ("ignored", "own-call")
    assert account.calls["logs.DescribeLogGroups"] == reads


def test_a_refused_call_changed_nothing_and_is_finished(account: LocalAccount, governed: str) -> None:
    invocation = call(set_retention, log_group_call_event("DeleteRetentionPolicy", governed, role_arn=OTHER_TOOL, error_code="AccessDenied"))

    assert (invocation.result["status"], invocation.result["reason"]) == ("ignored", "call-failed")


def test_tagging_something_that_is_not_a_log_group_is_not_ours(account: LocalAccount, governed: str) -> None:
    event = log_group_call_event("TagResource", governed, role_arn=OTHER_TOOL,
                                 resourceArn="arn:aws:logs:eu-west-1:123456789012:destination:central")

    assert call(subscribe_log_group, event).result["reason"] == "not-a-log-group"


@pytest.mark.parametrize(("tag", "untag"), [("TagResource", "UntagResource"), ("TagLogGroup", "UntagLogGroup")])
def test_an_opt_out_tag_removes_only_our_filter_and_its_removal_governs_again(account: LocalAccount, shipper_arn: str, governed: str,
                                                                              tag: str, untag: str) -> None:
    vendor = account.create_function("vendor-apm-forwarder")
    account.logs.put_subscription_filter(logGroupName=governed, filterName="vendor-apm", filterPattern="", destinationArn=vendor)
    arn = f"arn:aws:logs:{account.region}:{account.account_id}:log-group:{governed}"
    account.logs.tag_resource(resourceArn=arn, tags=OPT_OUT)

    opted_out = call(subscribe_log_group, log_group_call_event(tag, governed, role_arn=OTHER_TOOL))
    retention = call(set_retention, log_group_call_event(tag, governed, role_arn=OTHER_TOOL))

    assert (opted_out.result["action"], opted_out.result["reason"]) == ("remove-filter", "opted-out")
    assert account.snapshot(governed)["filters"] == {"vendor-apm": vendor}
    assert opted_out.metrics()[("FiltersRemoved", "opted-out")] == 1
    assert (retention.result["action"], retention.result["reason"]) == ("skip", "excluded-tag")

    account.logs.untag_resource(resourceArn=arn, tagKeys=list(OPT_OUT))
    again = call(subscribe_log_group, log_group_call_event(untag, governed, role_arn=OTHER_TOOL))

    assert (again.result["action"], again.result["applied"]) == ("subscribe", True)
    assert account.snapshot(governed)["filters"] == {"vendor-apm": vendor, FILTER: shipper_arn}


def test_a_fight_with_another_principal_is_stopped_reported_and_resumed_after_the_hold(
        account: LocalAccount, governed: str, configure: Any, wall: Clock) -> None:
    configure(driftFightLimit=3, driftFightWindowMinutes=60, driftConflictHoldHours=24)
    outcomes = []
    for _ in range(4):  # the other tool shortens it; the governor raises it; again
        account.logs.put_retention_policy(logGroupName=governed, retentionInDays=7)
        outcomes.append(call(set_retention, log_group_call_event("PutRetentionPolicy", governed, role_arn=OTHER_TOOL)))
        wall.now += 60

    assert [o.result["action"] for o in outcomes] == ["set-retention"] * 3 + ["conflict"]
    stopped = outcomes[-1]
    assert stopped.result["reason"] == "drift-fight" and stopped.result["principal"] == OTHER_TOOL
    assert OTHER_TOOL in stopped.result["detail"] and "4 times within 60 minutes" in stopped.result["detail"]
    assert account.snapshot(governed)["retention"] == 7  # the other tool's value stands
    assert stopped.metrics()[("Conflicts", "drift-fight")] == 1
    assert stopped.logs[-1]["level"] == "WARNING"

    # While the conflict holds, no entry point writes: not a tag event, not a fresh create event.
    writes = account.calls["logs.PutRetentionPolicy"]
    held = call(set_retention, create_log_group_event(governed))
    assert (held.result["action"], held.result["reason"]) == ("conflict", "drift-fight")
    assert account.calls["logs.PutRetentionPolicy"] == writes

    wall.now += 24 * 3600  # the hold is over: repaired again
    resumed = call(set_retention, log_group_call_event("PutRetentionPolicy", governed, role_arn=OTHER_TOOL))
    assert resumed.result["action"] == "set-retention" and account.snapshot(governed)["retention"] == 30


def test_issue26_a_fight_with_a_deleted_group_does_not_hold_the_group_created_again_under_its_name(
        account: LocalAccount, governed: str, configure: Any, wall: Clock) -> None:
    """#26 (state keyed by a name outlives the thing named): a conflict is held with one life of a group; the group
    deleted and created again (a stack replaced) is governed at once, not left alone for the hold's 24 hours."""
    configure(driftFightLimit=3, driftFightWindowMinutes=60, driftConflictHoldHours=24)
    for _ in range(4):
        account.logs.put_retention_policy(logGroupName=governed, retentionInDays=7)
        held = call(set_retention, log_group_call_event("PutRetentionPolicy", governed, role_arn=OTHER_TOOL))
        wall.now += 60
    assert held.result["action"] == "conflict"

    account.logs.delete_log_group(logGroupName=governed)
    time.sleep(0.002)  # created again in a later millisecond
    account.logs.create_log_group(logGroupName=governed)
    created = call(set_retention, create_log_group_event(governed))

    assert created.result["action"] == "set-retention" and account.snapshot(governed)["retention"] == 30


def test_issue26_changes_counted_against_a_deleted_group_do_not_make_its_successor_contested(
        account: LocalAccount, governed: str, configure: Any, wall: Clock) -> None:
    """Review of #26: three changes by another principal to the group's earlier life, each repaired; the group deleted and
    created again; the first change to the new life is drift to repair, not the fourth of a fight."""
    configure(driftFightLimit=3, driftFightWindowMinutes=60, driftConflictHoldHours=24)
    for _ in range(3):
        account.logs.put_retention_policy(logGroupName=governed, retentionInDays=7)
        assert call(set_retention, log_group_call_event("PutRetentionPolicy", governed, role_arn=OTHER_TOOL)).result["action"] == "set-retention"
        wall.now += 60
    account.logs.delete_log_group(logGroupName=governed)
    time.sleep(0.002)
    account.create_log_group(governed)
    call(set_retention, create_log_group_event(governed))
    account.logs.put_retention_policy(logGroupName=governed, retentionInDays=7)

    repaired = call(set_retention, log_group_call_event("PutRetentionPolicy", governed, role_arn=OTHER_TOOL))

    assert repaired.result["action"] == "set-retention" and account.snapshot(governed)["retention"] == 30


@pytest.mark.parametrize("minutes_past_the_hour", [57, 59])
def test_a_fight_that_straddles_the_hour_is_caught_all_the_same(account: LocalAccount, governed: str, configure: Any, wall: Clock,
                                                               minutes_past_the_hour: int) -> None:
    """The window slides: four changes within an hour are a fight whichever hour they fall in (the state
    table keeps them in buckets of the window's length; the count reads two)."""
    configure(driftFightLimit=3, driftFightWindowMinutes=60)
    wall.now += minutes_past_the_hour * 60
    outcomes = []
    for _ in range(4):
        account.logs.put_retention_policy(logGroupName=governed, retentionInDays=7)
        outcomes.append(call(set_retention, log_group_call_event("PutRetentionPolicy", governed, role_arn=OTHER_TOOL)))
        wall.now += 60

    assert [o.result["action"] for o in outcomes] == ["set-retention"] * 3 + ["conflict"]


@pytest.mark.parametrize("ledger", ["state-table", "in-memory"])
def test_the_ledger_counts_the_last_window_once_per_event(account: LocalAccount, ledger: str) -> None:
    """Both ledgers (the state table the functions use, the one simulations use) on the same inputs."""
    book = StateTable(account.create_state_table("drift-ledger")) if ledger == "state-table" else InMemoryLedger()
    hour = 3600
    start = (time.time() // hour + 48) * hour - 2 + 0.9996  # about a second before an hour turns, between two milliseconds

    assert book.count_change("/g", "retention", start, hour, "e1") == 1
    assert book.count_change("/g", "retention", start + 3, hour, "e1") == 1  # redelivered after the hour turned: still one
    assert book.count_change("/g", "retention", start + 4, hour, "e2") == 2
    assert book.count_change("/g", "retention", start + 1800, hour, "e3") == 3
    assert book.count_change("/g", "retention", start + hour + 1, hour, "e4") == 3  # e1 is more than an hour old
    assert book.count_change("/g", "retention", start + 2 * hour + 10, hour, "e5") == 1
    assert book.count_change("/other", "retention", start + 2 * hour + 10, hour, "e5") == 1


def test_a_redelivered_event_is_counted_once(account: LocalAccount, governed: str, configure: Any, wall: Clock) -> None:
    configure(driftFightLimit=1)
    account.logs.put_retention_policy(logGroupName=governed, retentionInDays=7)
    event = log_group_call_event("PutRetentionPolicy", governed, role_arn=OTHER_TOOL)

    first = call(set_retention, sqs_batch([event]))
    account.logs.put_retention_policy(logGroupName=governed, retentionInDays=7)  # as if our first write had been lost
    again = call(set_retention, sqs_batch([event], receive_count=2))

    assert first.result == again.result == {"batchItemFailures": []}
    assert account.snapshot(governed)["retention"] == 30  # the same event twice is one change, not a fight
    assert again.metrics()[("RetentionSet", None)] == 1


def test_a_team_keeping_a_longer_retention_is_no_fight(account: LocalAccount, governed: str, configure: Any, wall: Clock) -> None:
    configure(driftFightLimit=1)
    for _ in range(3):
        account.logs.put_retention_policy(logGroupName=governed, retentionInDays=365)
        kept = call(set_retention, log_group_call_event("PutRetentionPolicy", governed, role_arn=OTHER_TOOL))
        assert (kept.result["action"], kept.result["reason"]) == ("leave", "keeps-longer-retention")
    assert account.snapshot(governed)["retention"] == 365


def test_an_orphaned_functions_group_gets_the_short_retention_on_an_event(account: LocalAccount, configure: Any, wall: Clock) -> None:
    configure(orphanRetentionDays=7)
    account.create_function("still-here")
    for name in ("/aws/lambda/deleted-long-ago", "/aws/lambda/still-here"):
        account.create_log_group(name, retention_days=365)

    gone = call(set_retention, log_group_call_event("PutRetentionPolicy", "/aws/lambda/deleted-long-ago", role_arn=OTHER_TOOL))
    alive = call(set_retention, log_group_call_event("PutRetentionPolicy", "/aws/lambda/still-here", role_arn=OTHER_TOOL))

    assert (gone.result["action"], gone.result["reason"]) == ("set-retention", "orphaned-function")
    assert account.snapshot("/aws/lambda/deleted-long-ago")["retention"] == 7
    assert (alive.result["action"], alive.result["reason"]) == ("leave", "keeps-longer-retention")


def test_a_function_group_created_before_its_function_is_no_orphan(account: LocalAccount, configure: Any) -> None:
    """Deployment tools create /aws/lambda/<name> first (to set its retention), the function moments later."""
    configure(orphanRetentionDays=7)
    account.create_log_group("/aws/lambda/being-deployed")
    account.logs.put_retention_policy(logGroupName="/aws/lambda/being-deployed", retentionInDays=365)

    early = call(set_retention, log_group_call_event("PutRetentionPolicy", "/aws/lambda/being-deployed", role_arn=OTHER_TOOL))

    assert (early.result["action"], early.result["reason"]) == ("leave", "keeps-longer-retention")
    assert account.snapshot("/aws/lambda/being-deployed")["retention"] == 365

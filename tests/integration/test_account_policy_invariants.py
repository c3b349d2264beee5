"""subscriptionMode account-policy under churn, deletion, races and changes made elsewhere (#18): every
call that can undo the policy is watched (DeleteLogGroup, Put/DeleteAccountPolicy) and repaired from
the state the governor keeps; writers never lose each other's names; a first pass misses nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from governor.aws import LogsGateway, StateTable
from governor.config import parse_policy_config
from governor.handlers.create_log_group import subscribe_log_group
from governor.policy import Policy
from governor.subscription_policy import LOCK_LEASE_S, PolicyBusy, SubscriptionPolicyKeeper
from localaws.account import LocalAccount
from localaws.events import account_policy_call_event, create_log_group_event, log_group_call_event
from localaws.lambda_runtime import SimulatedClock
from shared.clients import retry_budget_s
from tests.conftest import OWN_ROLES, STATE_TABLE, call, reconcile_runner

TEAM = "arn:aws:iam::123456789012:role/team-deployer"
NAME = "log-group-governor"


@pytest.fixture
def account_mode(configure: Any) -> dict[str, Any]:
    return configure(subscriptionMode="account-policy", excludePrefixes=["/sandbox/"])


def _policies(account: LocalAccount) -> list[dict[str, Any]]:
    return account.logs.describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"]


def _not_in(account: LocalAccount) -> list[str]:
    [policy] = _policies(account)
    return json.loads(policy["selectionCriteria"].removeprefix("LogGroupName NOT IN "))


def _keeper(account: LocalAccount, config: dict[str, Any], *, clock: SimulatedClock, owner: str, logs: Any = None) -> SubscriptionPolicyKeeper:
    return SubscriptionPolicyKeeper(lambda: Policy(parse_policy_config(config)), logs or LogsGateway(account.client("logs")),
                                    lock=StateTable(STATE_TABLE, account.client("dynamodb")), owner=owner,
                                    clock=lambda: 1_795_850_000 + clock.monotonic(), sleep=clock.sleep)


# --- 1. deleted groups leave the list -------------------------------------------------------------

def test_a_thousand_create_and_delete_cycles_under_an_excluded_prefix_never_fill_the_list(account: LocalAccount, account_mode: Any) -> None:
    reconcile_runner()("first")  # the policy exists
    for n in range(1000):  # CI runs, per-test groups: each with its two CloudTrail records
        name = f"/sandbox/ci-run-{n:05d}-" + "x" * 60
        account.create_log_group(name)
        assert call(subscribe_log_group, create_log_group_event(name)).result["action"] == "update-account-policy"
        account.logs.delete_log_group(logGroupName=name)
        assert call(subscribe_log_group, log_group_call_event("DeleteLogGroup", name, role_arn=TEAM)).result["action"] == "update-account-policy"

    account.create_log_group("/sandbox/after-the-churn")
    listed = call(subscribe_log_group, create_log_group_event("/sandbox/after-the-churn"))

    assert listed.result["action"] == "update-account-policy"
    assert _not_in(account) == ["/aws/lambda/log-shipper", "/sandbox/after-the-churn"]


def test_when_delete_events_were_lost_the_gone_names_are_dropped_before_a_refusal(account: LocalAccount, account_mode: Any) -> None:
    """CloudTrail's delivery is best effort: names of groups deleted unseen are dropped to make room."""
    reconcile_runner()("first")
    doomed = [f"/sandbox/{'y' * 90}-{n:04d}" for n in range(225)]  # about 24 KB of names: the list fits, just
    for name in doomed:
        account.create_log_group(name)
        call(subscribe_log_group, create_log_group_event(name))
    for name in doomed:
        account.logs.delete_log_group(logGroupName=name)  # no DeleteLogGroup event reaches the governor

    results = []
    for n in range(20):
        account.create_log_group(f"/sandbox/new-{n:02d}-{'z' * 80}")
        results.append(call(subscribe_log_group, create_log_group_event(f"/sandbox/new-{n:02d}-{'z' * 80}")).result)

    assert all(r["action"] == "update-account-policy" for r in results)  # none refused, none shipped
    assert sum("225 names of deleted groups dropped to fit" in r["detail"] for r in results) == 1
    assert set(_not_in(account)) == {"/aws/lambda/log-shipper", *(f"/sandbox/new-{n:02d}-{'z' * 80}" for n in range(20))}


# --- 2. the policy deleted or replaced by someone else ----------------------------------------------

@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_the_policy_deleted_or_replaced_by_hand_is_restored_within_one_event(account: LocalAccount, account_mode: Any, change: str) -> None:
    account.create_log_group("/sandbox/excluded")
    reconcile_runner()("first")
    before = _policies(account)[0]
    if change == "deleted":
        account.logs.delete_account_policy(policyName=NAME, policyType="SUBSCRIPTION_FILTER_POLICY")
        event = account_policy_call_event("DeleteAccountPolicy", NAME, role_arn=TEAM)
    else:  # someone writes the governor's policy with another list: the excluded group would ship
        account.logs.put_account_policy(policyName=NAME, policyType="SUBSCRIPTION_FILTER_POLICY", policyDocument=before["policyDocument"],
                                        selectionCriteria='LogGroupName NOT IN ["/aws/lambda/log-shipper"]')
        event = account_policy_call_event("PutAccountPolicy", NAME, role_arn=TEAM)

    restored = call(subscribe_log_group, event)

    assert restored.result["action"] == "update-account-policy" and "restored" in restored.result["detail"]
    assert restored.metrics()[("AccountPolicyRestored", None)] == 1
    assert _not_in(account) == ["/aws/lambda/log-shipper", "/sandbox/excluded"]
    assert json.loads(_policies(account)[0]["policyDocument"]) == json.loads(before["policyDocument"])


def test_the_governors_own_policy_writes_and_other_policies_are_not_acted_on(account: LocalAccount, account_mode: Any) -> None:
    reconcile_runner()("first")

    own = call(subscribe_log_group, account_policy_call_event("PutAccountPolicy", NAME, role_arn=OWN_ROLES[0]))
    other = call(subscribe_log_group, account_policy_call_event("PutAccountPolicy", "data-protection", policy_type="DATA_PROTECTION_POLICY",
                                                                role_arn=TEAM))

    assert (own.result["reason"], other.result["reason"]) == ("own-call", "not-our-policy")


def test_another_tools_policy_in_the_slot_is_reported_never_replaced(account: LocalAccount, account_mode: Any) -> None:
    reconcile_runner()("first")
    document = _policies(account)[0]["policyDocument"]
    account.logs.delete_account_policy(policyName=NAME, policyType="SUBSCRIPTION_FILTER_POLICY")
    account.logs.put_account_policy(policyName="vendor", policyType="SUBSCRIPTION_FILTER_POLICY", policyDocument=document)

    result = call(subscribe_log_group, account_policy_call_event("DeleteAccountPolicy", NAME, role_arn=TEAM))

    assert (result.result["action"], result.result["reason"]) == ("conflict", "foreign-account-policy")
    assert result.metrics()[("Conflicts", "foreign-account-policy")] == 1  # alarms
    assert [p["policyName"] for p in _policies(account)] == ["vendor"]


# --- 3. two writers --------------------------------------------------------------------------------

class DelayedPut:
    """A LogsGateway whose first PutAccountPolicy takes ``delay_s`` (retries inside the budget), during
    which ``meanwhile`` runs: another writer acting while this one's write is in flight."""

    def __init__(self, logs: LogsGateway, clock: SimulatedClock, delay_s: float, meanwhile: Any) -> None:
        self._logs, self._clock, self._delay_s, self._meanwhile, self._done = logs, clock, delay_s, meanwhile, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logs, name)

    def put_account_policy(self, **request: Any) -> Any:
        if not self._done:
            self._done = True
            self._clock.sleep(self._delay_s)
            self._meanwhile()
        return self._logs.put_account_policy(**request)


def test_a_write_delayed_by_its_retries_keeps_the_lock_and_the_other_writer_waits_then_adds_its_name(
        account: LocalAccount, account_mode: Any) -> None:
    """The lease outlasts two retry budgets: a write slowed by throttling is never overtaken."""
    reconcile_runner()("first")
    for name in ("/sandbox/a", "/sandbox/b"):
        account.create_log_group(name)
    clock = SimulatedClock()
    second = _keeper(account, account_mode, clock=clock, owner="container-b")
    refused = []

    def meanwhile() -> None:
        try:
            second.place("/sandbox/b", listed=True)
        except PolicyBusy as busy:
            refused.append(str(busy))  # the event goes back to its queue

    first = _keeper(account, account_mode, clock=clock, owner="container-a",
                    logs=DelayedPut(LogsGateway(account.client("logs")), clock, retry_budget_s(), meanwhile))
    first.place("/sandbox/a", listed=True)
    second.place("/sandbox/b", listed=True)  # the event, again from the queue

    assert LOCK_LEASE_S >= 2 * retry_budget_s() and refused and "has held the subscription policy's lock" in refused[0]
    assert _not_in(account) == ["/aws/lambda/log-shipper", "/sandbox/a", "/sandbox/b"]


def test_a_writer_whose_lease_ran_out_puts_back_what_its_late_write_dropped(account: LocalAccount, account_mode: Any,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a lease that is too short (as before #18: 30 s) loses no name: the late writer's record is
    fenced off by the newer token, and it reads back and merges."""
    import governor.subscription_policy as keeping

    monkeypatch.setattr(keeping, "LOCK_LEASE_S", 30.0)
    reconcile_runner()("first")
    for name in ("/sandbox/a", "/sandbox/b"):
        account.create_log_group(name)
    clock = SimulatedClock()
    second = _keeper(account, account_mode, clock=clock, owner="container-b")
    first = _keeper(account, account_mode, clock=clock, owner="container-a",
                    logs=DelayedPut(LogsGateway(account.client("logs")), clock, retry_budget_s(),
                                    lambda: second.place("/sandbox/b", listed=True)))  # the lease ran out: it gets the lock

    written = first.place("/sandbox/a", listed=True)  # its put lands after the other's, without /sandbox/b

    assert _not_in(account) == ["/aws/lambda/log-shipper", "/sandbox/a", "/sandbox/b"]
    assert "merged with a newer writer's list" in written.detail


# --- 4. a first pass misses nothing ---------------------------------------------------------------------------------

def test_an_excluded_group_created_during_the_first_pass_is_in_the_policy_that_pass_writes(account: LocalAccount, account_mode: Any) -> None:
    account.create_log_group("/aws/lambda/orders")
    clock = SimulatedClock()
    keeper = _keeper(account, account_mode, clock=clock, owner="the-event-handler")
    account.create_log_group("/sandbox/created-during-the-pass")

    pending = call(subscribe_log_group, create_log_group_event("/sandbox/created-during-the-pass"))  # before any policy
    written = keeper.replace(["/aws/lambda/not-a-real-exclusion"][:0])  # the pass's own list missed it

    assert pending.result["reason"] == "account-policy-pending"
    assert written.written is True
    assert _not_in(account) == ["/aws/lambda/log-shipper", "/sandbox/created-during-the-pass"]
    assert StateTable(STATE_TABLE, account.client("dynamodb")).pending_names() == frozenset()


def test_a_run_never_puts_back_a_name_an_untag_event_took_out_while_it_listed(account: LocalAccount, configure: Any) -> None:
    config = configure(subscriptionMode="account-policy", excludeTags={"log-group-governor:opt-out": "true"})
    account.create_log_group("/aws/lambda/noisy", tags={"log-group-governor:opt-out": "true"})
    reconcile_runner()("first")
    clock = SimulatedClock()
    keeper = _keeper(account, config, clock=clock, owner="the-reconcile")
    seen_by_the_run = ["/aws/lambda/noisy"]  # the run listed it while it was still opted out
    account.logs.untag_log_group(logGroupName="/aws/lambda/noisy", tags=["log-group-governor:opt-out"])
    call(subscribe_log_group, log_group_call_event("UntagLogGroup", "/aws/lambda/noisy", role_arn=TEAM))
    assert _not_in(account) == ["/aws/lambda/log-shipper"]

    keeper.replace(seen_by_the_run)

    assert _not_in(account) == ["/aws/lambda/log-shipper"]  # it ships


# --- 5. issue 26: the list is built from what the governor keeps, never from what someone else left --------

def _tamper(account: LocalAccount, names: list[str]) -> None:
    """Someone (not the governor) writes the governor's policy with ``names`` as its NOT IN list."""
    document = _policies(account)[0]["policyDocument"]
    account.logs.put_account_policy(policyName=NAME, policyType="SUBSCRIPTION_FILTER_POLICY", policyDocument=document,
                                    selectionCriteria="LogGroupName NOT IN " + json.dumps(names))


@pytest.mark.parametrize("event", ["CreateLogGroup", "DeleteLogGroup"])
def test_issue26_an_event_handled_before_the_narrowing_record_never_makes_the_narrowed_list_the_governors(
        account: LocalAccount, account_mode: Any, event: str) -> None:
    """Item 6: someone narrows the list (an excluded group now ships), and an event for another group is
    handled before the PutAccountPolicy record: the list written is the governor's own (recorded) list
    with the name moved, not the narrowed one, so neither the event nor the repair after it ships the group."""
    account.create_log_group("/sandbox/excluded")
    account.create_log_group("/sandbox/doomed")
    reconcile_runner()("first")
    _tamper(account, ["/aws/lambda/log-shipper", "/sandbox/doomed"])  # /sandbox/excluded ships
    if event == "CreateLogGroup":
        account.create_log_group("/sandbox/another")
        moved = call(subscribe_log_group, create_log_group_event("/sandbox/another"))
        expected = ["/aws/lambda/log-shipper", "/sandbox/another", "/sandbox/doomed", "/sandbox/excluded"]
    else:
        account.logs.delete_log_group(logGroupName="/sandbox/doomed")
        moved = call(subscribe_log_group, log_group_call_event("DeleteLogGroup", "/sandbox/doomed", role_arn=TEAM))
        expected = ["/aws/lambda/log-shipper", "/sandbox/excluded"]

    assert moved.result["action"] == "update-account-policy"
    assert _not_in(account) == expected
    call(subscribe_log_group, account_policy_call_event("PutAccountPolicy", NAME, role_arn=TEAM))  # the record, late
    assert _not_in(account) == expected


@pytest.mark.parametrize("event", ["CreateLogGroup", "TagLogGroup"])
def test_issue26_a_name_listed_after_the_policy_was_deleted_is_written_with_the_recorded_list_not_parked(
        account: LocalAccount, account_mode: Any, event: str) -> None:
    """Item 7: the policy deleted by someone, then an event lists a new name before the DeleteAccountPolicy
    record: "pending" is only for before the first write, so the event writes the recorded list and the
    new name at once, and the repair after it restores both."""
    account.create_log_group("/sandbox/excluded")
    account.create_log_group("/aws/lambda/noisy")
    reconcile_runner()("first")
    account.logs.delete_account_policy(policyName=NAME, policyType="SUBSCRIPTION_FILTER_POLICY")
    if event == "CreateLogGroup":
        account.create_log_group("/sandbox/another")
        listed = call(subscribe_log_group, create_log_group_event("/sandbox/another"))
        new = "/sandbox/another"
    else:
        account.logs.tag_log_group(logGroupName="/aws/lambda/noisy", tags={"log-group-governor:opt-out": "true"})
        listed = call(subscribe_log_group, log_group_call_event("TagLogGroup", "/aws/lambda/noisy", role_arn=TEAM))
        new = "/aws/lambda/noisy"
    expected = sorted(["/aws/lambda/log-shipper", "/sandbox/excluded", new])

    assert (listed.result["action"], listed.result["reason"]) != ("skip", "account-policy-pending")
    assert listed.result["action"] == "update-account-policy"
    assert _not_in(account) == expected
    call(subscribe_log_group, account_policy_call_event("DeleteAccountPolicy", NAME, role_arn=TEAM))  # the record, late
    assert _not_in(account) == expected
    assert StateTable(STATE_TABLE, account.client("dynamodb")).pending_names() == frozenset()


def test_issue26_a_repair_that_waits_for_the_lock_writes_what_the_writer_it_waited_for_recorded(
        account: LocalAccount, account_mode: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 8: the repair must read the recorded list after it holds the lock: read before, it would write
    a stale list under a newer token and drop the name the writer it waited for had just listed."""
    from governor.handlers import create_log_group as handlers
    from governor.subscription_policy import LOCK_KEY

    account.create_log_group("/sandbox/excluded")
    reconcile_runner()("first")
    _tamper(account, ["/aws/lambda/log-shipper"])  # someone narrows it: its record reaches the handler below
    account.create_log_group("/sandbox/b")
    state = StateTable(STATE_TABLE, account.client("dynamodb"))
    fence, _ = state.acquire_fenced_lock("container-b", handlers.wall_clock(), LOCK_LEASE_S, key=LOCK_KEY)  # its write under way
    assert fence is not None
    other = SubscriptionPolicyKeeper(lambda: Policy(parse_policy_config(account_mode)), LogsGateway(account.client("logs")),
                                     lock=state, owner="container-b")
    waited: list[float] = []

    def meanwhile(seconds: float) -> None:  # while the repair waits for the lock, container-b lists /sandbox/b and lets go
        if not waited:
            other.place("/sandbox/b", listed=True)
        waited.append(seconds)

    written: list[list[str]] = []  # every list the governor puts, even one put back a moment later
    put = LogsGateway.put_account_policy

    def recorded_put(self: LogsGateway, **request: Any) -> Any:
        written.append(json.loads(request["selectionCriteria"].removeprefix("LogGroupName NOT IN ")))
        return put(self, **request)

    monkeypatch.setattr(handlers, "sleep", meanwhile)
    monkeypatch.setattr(LogsGateway, "put_account_policy", recorded_put)
    call(subscribe_log_group, account_policy_call_event("PutAccountPolicy", NAME, role_arn=TEAM))

    assert waited  # the repair did wait for container-b
    assert _not_in(account) == ["/aws/lambda/log-shipper", "/sandbox/b", "/sandbox/excluded"]
    assert written and all("/sandbox/b" in names and "/sandbox/excluded" in names for names in written[1:])  # never shipped, not for a moment


def test_issue26_a_name_parked_while_the_first_write_is_recorded_is_listed_not_left_pending(
        account: LocalAccount, account_mode: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 7's class: an event that found no policy parks its name; if the first write was recorded meanwhile
    (its run read the parked names before), the name is written at once, never left parked behind a policy."""
    account.create_log_group("/sandbox/created-during-the-pass")
    first_pass = _keeper(account, account_mode, clock=SimulatedClock(), owner="the-first-pass")
    park, ran = StateTable.change_pending, []

    def the_first_pass_writes_meanwhile(self: StateTable, **change: Any) -> None:
        if not ran:
            ran.append(first_pass.replace([]))  # its list missed the group, and it read no parked name
        park(self, **change)

    monkeypatch.setattr(StateTable, "change_pending", the_first_pass_writes_meanwhile)
    listed = call(subscribe_log_group, create_log_group_event("/sandbox/created-during-the-pass"))

    assert ran and ran[0].written is True
    assert listed.result["action"] == "update-account-policy"
    assert _not_in(account) == ["/aws/lambda/log-shipper", "/sandbox/created-during-the-pass"]


def test_issue26_after_a_lease_was_taken_over_the_next_writers_removal_is_not_undone_by_an_older_record(
        account: LocalAccount, account_mode: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fencing tokens only grow: a lock let go keeps its counter, so the next writer's token is newer than
    every record before it, and its record is not refused and merged (which put back the name it took out)."""
    import governor.subscription_policy as keeping

    monkeypatch.setattr(keeping, "LOCK_LEASE_S", 30.0)
    account.create_log_group("/sandbox/doomed")
    reconcile_runner()("first")
    for name in ("/sandbox/a", "/sandbox/b"):
        account.create_log_group(name)
    clock = SimulatedClock()
    second = _keeper(account, account_mode, clock=clock, owner="container-b")
    first = _keeper(account, account_mode, clock=clock, owner="container-a",
                    logs=DelayedPut(LogsGateway(account.client("logs")), clock, retry_budget_s(),
                                    lambda: second.place("/sandbox/b", listed=True)))
    first.place("/sandbox/a", listed=True)  # container-b took the lock over meanwhile and renewed it
    account.logs.delete_log_group(logGroupName="/sandbox/doomed")

    removed = call(subscribe_log_group, log_group_call_event("DeleteLogGroup", "/sandbox/doomed", role_arn=TEAM))

    assert "merged with a newer writer's list" not in removed.result["detail"]
    assert _not_in(account) == ["/aws/lambda/log-shipper", "/sandbox/a", "/sandbox/b"]


def test_issue26_the_keepers_lock_outlives_every_lease_so_its_tokens_only_grow(account: LocalAccount) -> None:
    """The fencing token counter lives in the lock's item: were the item deleted (released, or its lease past the
    table's time to live), the next holder would start again at 1 and its record would look older than the last."""
    from governor.subscription_policy import LOCK_KEY
    state = StateTable(account.create_state_table("keeper-lock"))
    now = 1_800_000_000.0

    first, _ = state.acquire_fenced_lock("a", now, LOCK_LEASE_S, key=LOCK_KEY)
    state.release_fenced_lock("a", key=LOCK_KEY)
    second, _ = state.acquire_fenced_lock("b", now + 1, LOCK_LEASE_S, key=LOCK_KEY)  # b's lease runs out unreleased
    held, holder = state.acquire_fenced_lock("c", now + 2, LOCK_LEASE_S, key=LOCK_KEY)
    third, _ = state.acquire_fenced_lock("c", now + 2 + LOCK_LEASE_S + 1, LOCK_LEASE_S, key=LOCK_KEY)
    item = account.client("dynamodb").get_item(TableName="keeper-lock", Key={"pk": {"S": LOCK_KEY}}, ConsistentRead=True)["Item"]

    assert (held, holder) == (None, "b")  # b's lease still holds
    assert first is not None and second is not None and third is not None and first < second < third
    assert "expiresAt" not in item  # never the table's time to live: the item, and its counter, stay


@pytest.mark.parametrize("then", ["a new excluded group", "the tamper's own record"])
def test_issue26_a_change_the_tampered_list_already_shows_is_recorded_so_nothing_puts_it_back(
        account: LocalAccount, account_mode: Any, then: str) -> None:
    """Review of #26: someone takes an opted-out group out of the list, then its team removes the opt-out tag. The
    untag event wants what the policy already says, so nothing is written; the governor's record must still drop the
    name, or the next write (another event, or the repair of the tamper) lists the group again and it stops shipping."""
    opt_out = {"log-group-governor:opt-out": "true"}
    account.create_log_group("/aws/lambda/payments", tags=opt_out)
    reconcile_runner()("first")
    assert "/aws/lambda/payments" in _not_in(account)
    _tamper(account, [n for n in _not_in(account) if n != "/aws/lambda/payments"])
    arn = f"arn:aws:logs:{account.region}:{account.account_id}:log-group:/aws/lambda/payments"
    account.logs.untag_resource(resourceArn=arn, tagKeys=list(opt_out))
    untagged = call(subscribe_log_group, log_group_call_event("UntagResource", "/aws/lambda/payments", role_arn=TEAM, resourceArn=arn,
                                                                tagKeys=list(opt_out)))
    assert untagged.result["status"] == "done" and "/aws/lambda/payments" not in _not_in(account)

    if then == "a new excluded group":
        account.create_log_group("/sandbox/new-test")
        call(subscribe_log_group, create_log_group_event("/sandbox/new-test"))
    else:
        call(subscribe_log_group, account_policy_call_event("PutAccountPolicy", NAME, role_arn=TEAM))

    assert "/aws/lambda/payments" not in _not_in(account), _not_in(account)  # it ships, as the governor decided

"""subscriptionMode account-policy: the account's subscription filter policy and its NOT IN list, kept
by the event handler and the reconcile through their entry points, against localaws' model of
PutAccountPolicy (botocore 1.44.8's rules: one policy, NOT IN of exact names, 25 KB)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from governor.account_policy import SELECTION_LIMIT_BYTES
from governor.handlers.create_log_group import subscribe_log_group
from governor.subscription_policy import LOCK_KEY, LOCK_WAIT_S
from localaws.account import LocalAccount
from localaws.events import create_log_group_event, log_group_call_event
from localaws.lambda_runtime import SimulatedClock
from tests.conftest import SHIPPER, STATE_TABLE, call, call_failing, reconcile_runner

OPT_OUT = {"log-group-governor:opt-out": "true"}
TEAM = "arn:aws:iam::123456789012:role/team-deployer"


@pytest.fixture
def account_mode(configure: Any) -> Any:
    return configure(subscriptionMode="account-policy", excludePrefixes=["/sandbox/"])


@pytest.fixture
def reconcile(account: LocalAccount) -> Any:
    return reconcile_runner()


def _policies(account: LocalAccount) -> list[dict[str, Any]]:
    return account.client("logs").describe_account_policies(policyType="SUBSCRIPTION_FILTER_POLICY")["accountPolicies"]


def _not_in(account: LocalAccount) -> list[str]:
    (policy,) = _policies(account)
    criteria = policy["selectionCriteria"]
    assert criteria.startswith("LogGroupName NOT IN ")
    return json.loads(criteria.removeprefix("LogGroupName NOT IN "))


def test_an_event_before_any_run_writes_nothing_since_only_a_full_run_knows_every_exclusion(account: LocalAccount, account_mode: Any) -> None:
    account.create_log_group("/sandbox/old-experiment")  # excluded, but no run has listed it yet
    account.create_log_group("/aws/lambda/orders")

    invocation = call(subscribe_log_group, create_log_group_event("/aws/lambda/orders"))

    assert (invocation.result["action"], invocation.result["reason"]) == ("skip", "account-policy-pending")
    assert _policies(account) == []


def test_the_reconcile_writes_the_policy_with_the_guard_and_every_excluded_group_and_reads_no_filters(
        account: LocalAccount, account_mode: Any, reconcile: Any, shipper_arn: str) -> None:
    account.create_log_group("/aws/lambda/orders")
    account.create_log_group("/sandbox/old-experiment")
    account.create_log_group("/aws/lambda/noisy", tags=OPT_OUT)
    account.create_log_group("/archive/cold", log_group_class="INFREQUENT_ACCESS")  # AWS leaves it out itself

    run = reconcile("nightly-1")

    assert run.result["done"] is True
    assert _not_in(account) == sorted([f"/aws/lambda/{SHIPPER}", "/aws/lambda/noisy", "/sandbox/old-experiment"])
    (policy,) = _policies(account)
    assert policy["policyName"] == "log-group-governor"
    assert json.loads(policy["policyDocument"]) == {"DestinationArn": shipper_arn, "FilterPattern": ""}
    assert account.calls["logs.DescribeSubscriptionFilters"] == 0 and account.calls["logs.PutSubscriptionFilter"] == 0
    written = run.result["summary"]["accountSubscriptionPolicy"]
    assert written["written"] is True and written["names"] == 3 and 0 < written["selectionBytes"] < SELECTION_LIMIT_BYTES
    assert run.result["summary"]["coverage"]["compliant"] >= 1


def test_events_move_names_in_and_out_of_the_list_as_groups_are_created_tagged_and_untagged(
        account: LocalAccount, account_mode: Any, reconcile: Any) -> None:
    account.create_log_group("/aws/lambda/orders")
    reconcile("first")
    writes = account.calls["logs.PutAccountPolicy"]

    account.create_log_group("/sandbox/new-test")
    created = call(subscribe_log_group, create_log_group_event("/sandbox/new-test"))
    account.create_log_group("/aws/lambda/payments")
    shipped = call(subscribe_log_group, create_log_group_event("/aws/lambda/payments"))

    assert (created.result["action"], created.result["reason"]) == ("update-account-policy", "excluded-prefix")
    assert "/sandbox/new-test" in _not_in(account)
    assert (shipped.result["action"], shipped.result["reason"]) == ("leave", "shipped-by-account-policy")
    assert account.calls["logs.PutAccountPolicy"] == writes + 1  # a group that ships costs no write

    logs = account.client("logs")
    arn = f"arn:aws:logs:{account.region}:{account.account_id}:log-group:/aws/lambda/payments"
    logs.tag_resource(resourceArn=arn, tags=OPT_OUT)
    tagged = call(subscribe_log_group, log_group_call_event("TagResource", "/aws/lambda/payments", role_arn=TEAM, resourceArn=arn, tags=OPT_OUT))
    assert tagged.result["action"] == "update-account-policy" and "/aws/lambda/payments" in _not_in(account)
    assert tagged.metrics()[("SubscriptionSelectionBytes", None)] > 0

    logs.untag_resource(resourceArn=arn, tagKeys=list(OPT_OUT))
    untagged = call(subscribe_log_group, log_group_call_event("UntagResource", "/aws/lambda/payments", role_arn=TEAM, resourceArn=arn,
                                                              tagKeys=list(OPT_OUT)))
    assert untagged.result["action"] == "update-account-policy" and "/aws/lambda/payments" not in _not_in(account)
    assert f"/aws/lambda/{SHIPPER}" in _not_in(account)  # the guard's names never leave


def test_the_reconcile_prunes_groups_no_longer_excluded_or_gone(
        account: LocalAccount, account_mode: Any, reconcile: Any) -> None:
    account.create_log_group("/aws/lambda/noisy", tags=OPT_OUT)
    reconcile("first")
    assert "/aws/lambda/noisy" in _not_in(account)
    logs = account.client("logs")
    logs.untag_resource(resourceArn=f"arn:aws:logs:{account.region}:{account.account_id}:log-group:/aws/lambda/noisy", tagKeys=list(OPT_OUT))
    logs.delete_log_group(logGroupName="/aws/lambda/noisy")  # gone altogether
    account.create_log_group("/sandbox/late")
    call(subscribe_log_group, create_log_group_event("/sandbox/late"))

    reconcile("second")

    assert _not_in(account) == sorted([f"/aws/lambda/{SHIPPER}", "/sandbox/late"])


def test_a_list_past_25_kb_is_refused_whole_and_alarms(account: LocalAccount, configure: Any, reconcile: Any) -> None:
    configure(subscriptionMode="account-policy", excludePrefixes=["/sandbox/"])
    for i in range(300):  # 300 names of ~100 bytes: past 25 KB
        account.create_log_group(f"/sandbox/{'x' * 80}-{i:04d}")

    run = reconcile("too-many")

    written = run.result["summary"]["accountSubscriptionPolicy"]
    assert (written["written"], written["reason"]) == (False, "selection-too-large")
    assert "nothing was written" in written["detail"]
    assert written["names"] == 301 and written["selectionBytes"] > 29_000  # the whole list as it would have been, guard included
    assert _policies(account) == []
    assert run.metrics()[("Conflicts", "selection-too-large")] == 1


def test_another_tools_policy_is_never_replaced(account: LocalAccount, account_mode: Any, reconcile: Any, shipper_arn: str) -> None:
    account.client("logs").put_account_policy(policyName="vendor-forwarder", policyType="SUBSCRIPTION_FILTER_POLICY",
                                             policyDocument=json.dumps({"DestinationArn": shipper_arn}))

    run = reconcile("foreign")

    assert run.result["summary"]["accountSubscriptionPolicy"]["reason"] == "foreign-account-policy"
    assert [p["policyName"] for p in _policies(account)] == ["vendor-forwarder"]


def test_a_held_lock_gives_the_event_back_to_its_queue(account: LocalAccount, account_mode: Any, reconcile: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from governor.aws import StateTable
    from governor.handlers import create_log_group as handlers

    reconcile("first")
    account.create_log_group("/sandbox/contested")
    StateTable(STATE_TABLE, account.client("dynamodb")).acquire_fenced_lock("another-writer", handlers.wall_clock(), 3600, key=LOCK_KEY)
    clock = SimulatedClock()
    clock.now = start = handlers.wall_clock()
    monkeypatch.setattr(handlers, "wall_clock", clock.monotonic)
    monkeypatch.setattr(handlers, "sleep", clock.sleep)

    error, _ = call_failing(subscribe_log_group, create_log_group_event("/sandbox/contested"))

    assert "another-writer" in str(error) and clock.monotonic() - start >= LOCK_WAIT_S
    assert "/sandbox/contested" not in _not_in(account)


def test_a_finished_run_keeps_a_listed_group_it_did_not_see_while_it_still_must_not_ship(account: LocalAccount, account_mode: Any,
                                                                                          reconcile: Any) -> None:
    """A group created (or tagged) behind the scan's position was listed by its event: the run's list
    lacks it, and dropping it would ship it. The keeper looks such names up before it replaces the list."""
    from governor.aws import LogsGateway
    from governor.policy import Policy
    from governor.runtime import Settings
    from governor.subscription_policy import SubscriptionPolicyKeeper

    reconcile("first")
    account.create_log_group("/sandbox/behind-the-scan")
    call(subscribe_log_group, create_log_group_event("/sandbox/behind-the-scan"))
    account.create_log_group("/aws/lambda/was-excluded-by-event")
    settings = Settings.from_environ(os.environ)
    keeper = SubscriptionPolicyKeeper(lambda: Policy(settings.config), LogsGateway(account.client("logs")))
    keeper.place("/aws/lambda/was-excluded-by-event", listed=True)  # listed, though nothing excludes it now

    written = keeper.replace([])  # a run that saw neither

    assert written.written is True
    assert _not_in(account) == sorted([f"/aws/lambda/{SHIPPER}", "/sandbox/behind-the-scan"])


def test_the_policy_delivers_account_level_batches_to_every_group_it_selects_and_adds_to_group_filters(
        account: LocalAccount, account_mode: Any, reconcile: Any, shipper_arn: str) -> None:
    from ship_logs.payload import decode_batch
    from localaws.payloads import lambda_log_events

    account.create_log_group("/aws/lambda/orders")
    account.create_log_group("/sandbox/old-experiment")
    account.create_log_group("/aws/lambda/legacy", filters=[("log-group-governor", shipper_arn)])  # not migrated yet
    reconcile("first")
    events = lambda_log_events(3)

    shipped, excluded, doubled = (account.deliveries(g, events) for g in ("/aws/lambda/orders", "/sandbox/old-experiment", "/aws/lambda/legacy"))

    assert [destination for destination, _ in shipped] == [shipper_arn]
    batch = decode_batch(shipped[0][1])
    assert (batch.policy_level, batch.subscription_filters, batch.log_group) == ("ACCOUNT_LEVEL_POLICY", ("log-group-governor",), "/aws/lambda/orders")
    assert len(batch.events) == len(events)
    assert excluded == []
    assert sorted(decode_batch(e).policy_level or "group" for _, e in doubled) == ["ACCOUNT_LEVEL_POLICY", "group"]  # twice: migrate


def test_with_no_policy_yet_a_first_pass_writes_it_before_any_per_group_write_of_the_full_pass(account: LocalAccount, account_mode: Any) -> None:
    """On a large account the full pass's retention writes take days: the policy must not wait for them."""
    from governor.aws import LogsGateway
    from governor.backfill import Backfill, Progress
    from governor.policy import Policy
    from governor.runtime import Settings
    from governor.service import Governor
    from governor.subscription_policy import SubscriptionPolicyKeeper

    class Recording(LogsGateway):
        order: list[str] = []

        def _call(self, operation: str, method: str, **request: Any) -> dict[str, Any]:
            self.order.append(operation)
            return super()._call(operation, method, **request)

    for i in range(120):  # three pages; none has a retention yet
        account.create_log_group(f"/aws/lambda/svc-{i:03d}")
    account.create_log_group("/sandbox/x")
    logs = Recording(account.client("logs"))
    policy = Policy(Settings.from_environ(os.environ).config)
    pages: list[Progress] = []
    engine = Backfill(Governor(policy, logs), _Sink(), save=lambda p: pages.append(Progress.from_json(p.to_json())),
                      keeper=SubscriptionPolicyKeeper(lambda: policy, logs))

    progress = engine.run(Progress(run_id="first", dry_run=False), time_left=lambda: True)

    assert progress.done and progress.policy_pass_pages == 3 and progress.pages == 3 and progress.groups == 121
    assert logs.order.index("PutAccountPolicy") < logs.order.index("PutRetentionPolicy")
    assert logs.order.count("PutAccountPolicy") == 1 and "/sandbox/x" in _not_in(account)
    assert [p.policy_pass for p in pages[:3]] == [True, True, False]  # the third page wrote it and turned to the full pass
    assert progress.summary()["accountSubscriptionPolicy"]["written"] is True


class _Sink:
    def write_page(self, run_id: str, page_number: int, outcomes: list[Any], position: int) -> int:
        return position + 1


def test_a_name_an_event_lists_while_the_run_looks_names_up_is_kept(account: LocalAccount, account_mode: Any, reconcile: Any) -> None:
    """The run's look-ups happen outside the lock; an event that lists a group meanwhile is not undone."""
    from governor.aws import LogsGateway
    from governor.policy import Policy
    from governor.runtime import Settings
    from governor.subscription_policy import SubscriptionPolicyKeeper

    reconcile("first")
    account.create_log_group("/sandbox/seen-by-event")
    call(subscribe_log_group, create_log_group_event("/sandbox/seen-by-event"))
    settings = Settings.from_environ(os.environ)
    logs = LogsGateway(account.client("logs"))
    keeper = SubscriptionPolicyKeeper(lambda: Policy(settings.config), logs)
    looked_up = keeper._still_excluded

    def meanwhile(names: Any) -> set[str]:  # an event lists another group while the run looks names up
        kept = looked_up(names)
        account.create_log_group("/sandbox/listed-meanwhile")
        call(subscribe_log_group, create_log_group_event("/sandbox/listed-meanwhile"))
        return kept

    keeper._still_excluded = meanwhile  # type: ignore[method-assign]
    written = keeper.replace([])

    assert written.reason is None and written.names == 3  # nothing to undo: the list already says so
    assert _not_in(account) == sorted([f"/aws/lambda/{SHIPPER}", "/sandbox/listed-meanwhile", "/sandbox/seen-by-event"])

"""One module per control (#28): the registry says, for each control, the IAM actions its look-ups and apply need, the
CloudTrail calls that undo it (and the request fields naming the group), its metrics and its conflicts; the events'
parser, the stack's IAM, the Conflicts alarm and troubleshooting.md read it. Here: it agrees with the code, and the calls
the adapter really makes for a control are ones it declares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from governor import controls, metric_names
from governor.aws import ConfigurationRefused, KmsGateway, LogsGateway
from governor.events import DRIFT_EVENTS, parse_log_group_call
from governor.policy import SubscriptionFilter
from governor.rules import CONTROLS
from governor.service import Aspect
from localaws.account import LocalAccount

GROUP = "/aws/lambda/orders-api"


def test_the_registry_is_the_rules_controls_in_order_with_an_aspect_each() -> None:
    assert tuple(c.name for c in controls.REGISTRY) == CONTROLS
    assert {c.aspect for c in controls.REGISTRY} == {a.value for a in Aspect} - {Aspect.REMOVAL.value}
    assert {c.reason for c in (*(x for c in controls.REGISTRY for x in c.conflicts),)} <= controls.REASONS
    names = {v for k, v in vars(metric_names).items() if k.isupper() and isinstance(v, str)}
    # A control that plugs in whole names its metrics in its module; every other control's are governor.metric_names'.
    assert {m for c in controls.REGISTRY if not c.plugged for m in c.metrics} <= names
    for control in controls.PLUGGED:
        assert set(control.metric_by_action.values()) == set(control.metrics)
        assert set(control.metric_by_action) == set(control.applies) and control.applies
        assert control.unmanaged in controls.REASONS and (control.refused is None or control.refused in controls.REASONS)


def test_the_events_parser_wakes_each_control_on_the_calls_that_undo_it_and_finds_the_group_in_each_declared_field() -> None:
    assert DRIFT_EVENTS == {c.aspect: tuple(u.event_name for u in c.undone_by) for c in controls.REGISTRY}
    for control in controls.REGISTRY:
        for undo in control.undone_by:
            for field in undo.group_fields:
                value = GROUP if field == "logGroupName" else f"arn:aws:logs:eu-west-1:123456789012:log-group:{GROUP}"
                record = {"version": "0", "id": "1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.logs",
                          "account": "123456789012", "region": "eu-west-1",
                          "detail": {"eventSource": "logs.amazonaws.com", "eventName": undo.event_name, "eventID": "e1",
                                     "requestParameters": {field: value}}}
                call = parse_log_group_call(record, (undo.event_name,), origin=("123456789012", "eu-west-1"))
                assert call.log_group_name == GROUP, (control.name, undo.event_name, field)


def _adapter_calls(account: LocalAccount) -> dict[tuple[str, str], Callable[[], Any]]:
    """Each adapter method a control declares, with arguments a real call takes (against the local account)."""
    logs, kms = LogsGateway(account.logs), KmsGateway(account.client("kms"))
    key = account.client("kms").create_key()["KeyMetadata"]["Arn"]
    shipper = account.create_function("log-shipper")
    return {
        ("LogsGateway", "describe_log_group"): lambda: logs.describe_log_group(GROUP),
        ("LogsGateway", "describe_log_groups"): lambda: logs.describe_log_groups([GROUP]),
        ("LogsGateway", "put_retention_policy"): lambda: logs.put_retention_policy(GROUP, 30),
        ("LogsGateway", "subscription_filters"): lambda: logs.subscription_filters(GROUP),
        ("LogsGateway", "own_filter"): lambda: logs.own_filter(GROUP, "log-group-governor"),
        ("LogsGateway", "put_subscription_filter"): lambda: logs.put_subscription_filter(GROUP, SubscriptionFilter("log-group-governor", shipper)),
        ("LogsGateway", "delete_subscription_filter"): lambda: logs.delete_subscription_filter(GROUP, "log-group-governor"),
        ("KmsGateway", "key_policy"): lambda: kms.key_policy(key),
    }


@pytest.mark.parametrize("control", controls.REGISTRY, ids=[c.name for c in controls.REGISTRY])
def test_every_call_a_controls_adapter_methods_make_is_an_action_it_declares(account: LocalAccount, control: controls.Control) -> None:
    account.create_log_group(GROUP)
    calls = _adapter_calls(account)

    for method in control.adapter:
        before = dict(account.calls)
        try:
            calls[method]()
        except Exception:  # noqa: BLE001  (a refusal is still a call made: its action counts)
            pass
        made = {name for name, count in account.calls.items() if count > before.get(name, 0)}
        assert made, f"{method} made no call: the test drives nothing"
        actions = {name.replace(".", ":", 1) for name in made}
        assert actions <= set(control.actions), f"{control.name}: {method} calls {sorted(actions - set(control.actions))}, undeclared"


def test_the_checker_catches_an_undeclared_call(account: LocalAccount) -> None:
    """The same check, on a control that forgot its write: it must fail."""
    from dataclasses import replace

    forgetful = replace(controls.BY_NAME["retention"], writes=())
    account.create_log_group(GROUP)
    before = dict(account.calls)
    _adapter_calls(account)[("LogsGateway", "put_retention_policy")]()
    made = {n.replace(".", ":", 1) for n, c in account.calls.items() if c > before.get(n, 0)}

    assert not made <= set(forgetful.actions) and "logs:PutRetentionPolicy" in made


def test_a_control_only_rules_set_decides_applies_and_deploys_from_its_module() -> None:
    from governor.policy import Action

    ruled = [c for c in controls.REGISTRY if c.handler is not None]
    assert [c.name for c in ruled] == ["deletionProtection", "kmsKeyArn", "dataProtection", "fieldIndexes"]
    for control in ruled:
        assert control.decide is not None and control.apply is not None and control.unmanaged in controls.REASONS
        assert control.applies and all(a in controls.WRITE_ACTIONS for a in control.applies)
        assert control.handler[1] == "govern"  # one entry point shape for every control only rules set
    applied = [a for c in controls.REGISTRY for a in c.applies]
    assert len(applied) == len(set(applied))  # one module applies each action
    # Every write a decision can carry is applied by exactly one control's module (the account policy's keeper writes its own).
    assert set(applied) == controls.WRITE_ACTIONS and all(c.apply is not None for c in controls.REGISTRY)
    assert {a.value for a in Action if a.writes} < controls.WRITE_ACTIONS


@pytest.mark.parametrize("control", controls.PLUGGED, ids=[c.name for c in controls.PLUGGED])
def test_a_plugged_controls_look_up_and_apply_make_only_calls_it_declares(account: LocalAccount, control: controls.Control) -> None:
    """A control that plugs in whole calls AWS from its module (through the adapter's group_call): its look-up and the
    apply of each decision its decide gives a new group are driven against the local account, each call's action declared."""
    from governor.decision import KnownFacts
    from governor.rules import parse_rules, resolve

    account.create_log_group(GROUP)
    logs = LogsGateway(account.logs)
    info = logs.describe_log_group(GROUP)
    before = dict(account.calls)
    fact = control.look_up(logs, info)
    rules = parse_rules([{"match": {}, control.name: control.example}], max_pattern_length=1024)
    decision = control.decide(resolve(rules, info, control.name), KnownFacts(GROUP, facts={control.name: fact}))
    assert decision.action.value in control.applies, decision
    try:
        control.apply(logs, GROUP, decision)
    except ConfigurationRefused:  # a refusal is still a call made (a KMS key "create" names no key yet): its action counts
        pass
    made = {n.replace(".", ":", 1) for n, c in account.calls.items() if c > before.get(n, 0)}
    # Its write was made (its look-up may need no call of its own: deletion protection reads DescribeLogGroups' answer).
    assert set(control.writes) & made and made <= set(control.actions), (made, control.actions)

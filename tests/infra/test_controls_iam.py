"""The deployed IAM comes from the controls' modules (#28): each control's handler may make every call its module declares
(its look-ups, its writes, its other actions), on the stack with every control a rule sets."""

from __future__ import annotations

from governor import controls
from stacks.governor_stack import conflicts_description
from tests.infra.conftest import Synthesized
from tests.infra.test_stack import _actions

#: The handler each control's events go to (governor.handlers.create_log_group): a control only rules set is governed by
#: the one entry ``govern``, the function's GOVERNOR_ASPECT naming it.
HANDLERS = {"retention": "set_retention", "subscription": "subscribe_log_group",
            **{c.aspect: c.aspect for c in controls.REGISTRY if c.handler is not None}}  # one entry, its GOVERNOR_ASPECT set


def test_each_controls_handler_is_granted_every_action_its_module_declares(rules_stack: Synthesized) -> None:
    for control in controls.REGISTRY:
        granted = _actions(rules_stack.role_policy_of(rules_stack.function(HANDLERS[control.aspect])))
        assert set(control.actions) <= granted, f"{control.name}: {sorted(set(control.actions) - granted)} not granted"


def test_the_backfill_may_make_every_controls_calls(rules_stack: Synthesized) -> None:
    granted = _actions(rules_stack.role_policy_of(rules_stack.function("handlers.backfill.handler")))

    for control in controls.REGISTRY:
        assert set(control.actions) <= granted, f"the backfill lacks {control.name}'s {sorted(set(control.actions) - granted)}"


def test_the_conflicts_alarm_names_every_controls_conflicts(rules_stack: Synthesized) -> None:
    [alarm] = [a for a in rules_stack.of_type("AWS::CloudWatch::Alarm") if a["Properties"].get("MetricName") == "Conflicts"
               and not any(d.get("Name") == "Reason" for d in a["Properties"].get("Dimensions", []))]
    description = alarm["Properties"]["AlarmDescription"]

    assert description.endswith(conflicts_description())
    for control in controls.REGISTRY:
        for conflict in control.conflicts:
            assert f"{conflict.reason} ({control.name})" in description


def test_each_control_only_rules_set_is_one_function_of_the_one_entry_named_by_its_aspect(rules_stack: Synthesized) -> None:
    for control in (c for c in controls.REGISTRY if c.handler is not None):
        function = rules_stack.function(control.aspect)
        assert function["Properties"]["Handler"] == "governor.handlers.create_log_group.govern"
        assert function["Properties"]["Description"].endswith(control.handler[2])

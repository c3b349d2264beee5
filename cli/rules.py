"""`log-group-governor rules` and `plan --explain GROUP` (#21): the rules a configuration amounts to, and which of
them decided each control of one group, and why the rules before it did not."""

from __future__ import annotations

import json
from typing import Any, TextIO

from governor.aws import LogsGateway
from governor.config import PolicyConfig
from governor.policy import Policy
from governor.rules import CONTROLS, compile_flat
from governor.service import CONTROL_ASPECTS, LiveFacts

from cli.errors import CliError, Exit


def equivalent_rules(config: PolicyConfig) -> list[dict[str, Any]]:
    """The configured rules, then the flat keys written as the rules they compile into: pasted into ``governor:rules``
    (with ``retentionOverrides`` emptied and ``defaultRetentionDays`` null) they decide every group the same."""
    flat = compile_flat(filter_pattern=config.filter_pattern, default_retention_days=config.default_retention_days,
                        retention_overrides=config.retention_overrides, retention_mode=config.retention_mode)
    return [*config.rules_raw, *(rule.to_json() for rule in flat)]


def print_rules(config: PolicyConfig, stdout: TextIO) -> int:
    print(json.dumps({"rules": equivalent_rules(config),
                      "scope": {"excludePrefixes": list(config.exclude_prefixes), "excludePatterns": [p.pattern for p in config.exclude_patterns],
                                "excludeTags": dict(config.exclude_tags), "shippingPathLogGroups": list(config.shipping_path_log_groups)}},
                     indent=2), file=stdout)
    return Exit.OK


def explain(policy: Policy, logs: LogsGateway, name: str, *, as_json: bool, stdout: TextIO) -> int:
    """One group: each control's deciding rule (or that none sets it), the rules passed over, and the decisions."""
    info = logs.describe_log_group(name)
    if info is None:
        raise CliError(Exit.NOT_FOUND, f"--explain {name}: no such log group in this account and region", "check the name and --region")
    facts = LiveFacts(info, logs)
    controls = {control: policy.resolve(facts, control, explain=True) for control in CONTROLS}
    # Every control a rule sets, each as apply would decide it (#26): derived from the one list, so none is left out.
    decisions = {CONTROL_ASPECTS[control].value: policy.decide(facts, control) for control in CONTROLS}
    if as_json:
        print(json.dumps({
            "logGroup": name,
            "controls": {c: {"rule": r.rule.source if r.rule else None, "match": r.rule.match.describe() if r.rule else None,
                             "passed": [{"rule": source, "why": why} for source, why in r.passed]} for c, r in controls.items()},
            "decisions": {a: {"action": d.action.value, "reason": d.reason.value, "detail": d.detail} for a, d in decisions.items()},
        }, indent=2), file=stdout)
        return Exit.OK
    print(f"{name} (class {info.log_group_class}, retention {info.retention_days or 'never expires'})", file=stdout)
    for control, resolved in controls.items():
        print(f"  {resolved.explain()}", file=stdout)
        for source, why in resolved.passed:
            print(f"    passed over {source}: {why}", file=stdout)
    for aspect, decision in decisions.items():
        print(f"  {aspect}: {decision.action.value} ({decision.reason.value}): {decision.detail}", file=stdout)
    return Exit.OK

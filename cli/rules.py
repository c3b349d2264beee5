"""`log-group-governor rules` and `plan --explain GROUP` (#21): the rules a configuration amounts to, and which of
them decided each control of one group, and why the rules before it did not."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from governor.aws import LogsGateway
from governor.config import PolicyConfig
from governor.policy import Policy
from governor.rules import CONTROLS, compile_flat
from governor.service import CONTROL_ASPECTS, LiveFacts

from shared.config import ConfigError
from stacks.org_settings import member_base, member_context
from stacks.overrides import Resolved, parse_overrides, resolve

from cli.errors import CliError, Exit

_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class Member:
    """A member account (and the OU it was deployed through) with its configuration from rollout:overrides."""

    account: str | None
    ou: str | None
    resolved: Resolved
    #: Keys ``-c`` (or the stack's outputs) set over the member's configuration.
    cli: dict[str, Any] | None = None

    def with_cli(self, keys: dict[str, Any]) -> Member:
        return replace(self, cli=dict(keys)) if keys else self

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "organizationalUnit": self.ou, "overrides": [o.name for o in self.resolved.applied],
                "set": {k: {"value": v, "by": by, "organization": self.resolved.was.get(k)} for k, (by, v) in self.resolved.set_by.items()},
                **({"then -c": self.cli} if self.cli else {})}

    def lines(self) -> list[str]:
        head = f"member {self.account or '(any account)'}" + (f" in {self.ou}" if self.ou else "")
        if not self.resolved.applied:
            return [f"{head}: no override names it; the organization's configuration"]
        out = [f"{head}: overrides {', '.join(o.name for o in self.resolved.applied)} (its OU's, then its account's; the last wins)"]
        for key, (by, value) in self.resolved.set_by.items():
            was = self.resolved.was.get(key, "(default)")
            out.append(f"  {key} = {json.dumps(value)} by {by} (organization: {json.dumps(was) if was != '(default)' else was})")
        out += [f"  {key} = {value} by -c (over the member's configuration)" for key, value in (self.cli or {}).items()]
        return out


def member_of(context_file: Path, account: str | None, ou: str | None, stderr: TextIO) -> Member | None:
    """The member ``--member``/``--ou`` name, resolved the way the rollout resolves it (stacks/overrides.py); None without
    them (then a note when rollout:overrides would change some member's configuration)."""
    try:
        context = json.loads(context_file.read_text())["context"]
        raw, waves = context.get("rollout:overrides"), context.get("rollout:waves") or []
        raw, waves = (json.loads(v) if isinstance(v, str) and v else v for v in (raw, waves))
        overrides = parse_overrides(raw, waves=waves if isinstance(waves, list) else [])
    except ConfigError as error:  # before ValueError, which it is
        raise CliError(Exit.BAD_INPUT, f"invalid configuration: {error}", "correct rollout:overrides in cdk.json (docs/organization.md)") from None
    except (OSError, ValueError, KeyError, AttributeError):
        if account is None and ou is None:
            return None  # load_settings says what is wrong with the file
        raise CliError(Exit.BAD_INPUT, f"--context {context_file}: cannot read rollout:overrides and rollout:waves as JSON",
                       "correct cdk.json (docs/organization.md)") from None
    if account is None and ou is None:
        if overrides:
            print(f"note: rollout:overrides changes the configuration of some members ({', '.join(o.name for o in overrides)}); "
                  f"this is the organization's: pass --member ACCOUNT --ou OU for a member's", file=stderr)
        return None
    if account is not None and not _ACCOUNT.match(account):
        raise CliError(Exit.BAD_INPUT, f"--member {account}: expected a 12-digit account id", "pass --member 123456789012")
    listed = [o for wave in waves if isinstance(wave, list) for o in wave]
    if ou is not None and ou not in listed:
        raise CliError(Exit.BAD_INPUT, f"--ou {ou}: not an OU of rollout:waves, so no member is deployed through it",
                       f"pass one of {', '.join(listed)}" if listed else "list the OU in rollout:waves")
    if ou is None and any(o.organizational_units for o in overrides):
        raise CliError(Exit.BAD_INPUT, "--member without --ou: rollout:overrides has overrides by OU, and which applies depends on "
                       "the OU the account was deployed through", "pass --ou <its OU in rollout:waves>")
    organization_trail = context.get("rollout:organizationTrail") in (True, "true")
    resolved = resolve(member_base(context, organization_trail=organization_trail), overrides, ou=ou, account=account)
    # What the rollout sets itself, but the region's archive (the CLI's --stack-name or -c names the destination).
    resolved = replace(resolved, context=member_context(resolved.context))
    return Member(account=account, ou=ou, resolved=resolved)


def equivalent_rules(config: PolicyConfig) -> list[dict[str, Any]]:
    """The configured rules, then the flat keys written as the rules they compile into: pasted into ``governor:rules``
    (with ``retentionOverrides`` emptied and ``defaultRetentionDays`` null) they decide every group the same."""
    flat = compile_flat(filter_pattern=config.filter_pattern, default_retention_days=config.default_retention_days,
                        retention_overrides=config.retention_overrides, retention_mode=config.retention_mode)
    return [*config.rules_raw, *(rule.to_json() for rule in flat)]


def print_rules(config: PolicyConfig, stdout: TextIO, *, member: Member | None = None) -> int:
    print(json.dumps({**({"member": member.as_dict()} if member else {}), "rules": equivalent_rules(config),
                      "scope": {"excludePrefixes": list(config.exclude_prefixes), "excludePatterns": [p.pattern for p in config.exclude_patterns],
                                "excludeTags": dict(config.exclude_tags), "shippingPathLogGroups": list(config.shipping_path_log_groups)}},
                     indent=2), file=stdout)
    return Exit.OK


def explain(policy: Policy, logs: LogsGateway, name: str, *, as_json: bool, stdout: TextIO, member: Member | None = None) -> int:
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
            **({"member": member.as_dict()} if member else {}),
            "logGroup": name,
            "controls": {c: {"rule": r.rule.source if r.rule else None, "match": r.rule.match.describe() if r.rule else None,
                             "passed": [{"rule": source, "why": why} for source, why in r.passed]} for c, r in controls.items()},
            "decisions": {a: {"action": d.action.value, "reason": d.reason.value, "detail": d.detail} for a, d in decisions.items()},
        }, indent=2), file=stdout)
        return Exit.OK
    for line in member.lines() if member else []:
        print(line, file=stdout)
    print(f"{name} (class {info.log_group_class}, retention {info.retention_days or 'never expires'})", file=stdout)
    for control, resolved in controls.items():
        print(f"  {resolved.explain()}", file=stdout)
        for source, why in resolved.passed:
            print(f"    passed over {source}: {why}", file=stdout)
    for aspect, decision in decisions.items():
        print(f"  {aspect}: {decision.action.value} ({decision.reason.value}): {decision.detail}", file=stdout)
    return Exit.OK

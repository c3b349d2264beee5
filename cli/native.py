"""The CLI's side of the native account-level policies: retention (retentionVia account-policy), and any control's
account-level form from the registry (``<control>Via`` account-policy: data protection, field indexes). For retention: what
the configuration compiles to, what each policy would do to the account's groups (PutAccountPolicy
with dryRun), and writing them, which needs --allow-shortening when any group would keep less."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

from governor.config import PolicyConfig
from governor.native_retention import NAME_PREFIX, Compiled, NativeRetentionPolicy, compile_retention

RETENTION_POLICY = "RETENTION_POLICY"
#: "takes effect 24 hours after it is created or updated" (botocore 1.44.8's model of PutAccountPolicy).
IN_EFFECT_AFTER_H = 24


@dataclass(frozen=True)
class Impact:
    policy: NativeRetentionPolicy
    longer: int
    shorter: int
    unchanged: int
    matched: int
    #: (group, current, proposed) of the groups AWS lists that would keep less.
    shortened: tuple[tuple[str, str, str], ...]


def compiled_or_refusals(config: PolicyConfig, stderr: TextIO) -> Compiled | None:
    compiled = compile_retention(config)
    if compiled.expressible:
        return compiled
    print("log-group-governor: this retention configuration has no native equivalent (nothing was written):", file=stderr)
    for refusal in compiled.refusals:
        print(f"  - {refusal}", file=stderr)
    return None


def impacts(logs: Any, compiled: Compiled) -> list[Impact]:
    """Each policy's dry run against the account (one at a time: AWS runs one dry run per account)."""
    found = []
    for policy in compiled.policies:
        answer = logs.put_account_policy(**policy.request(dry_run=True))["dryRunResult"]
        shortened = tuple((g["logGroupName"], g["currentRetention"], g["proposedRetention"]) for g in answer.get("topLogGroupsImpacted", [])
                          if _days(g["proposedRetention"]) < _days(g["currentRetention"]))
        found.append(Impact(policy, answer["increasedRetentionLogGroupCount"], answer["decreasedRetentionLogGroupCount"],
                            answer["unchangedRetentionLogGroupCount"], answer["totalMatchedLogGroups"], shortened))
    return found


def describe(policy: NativeRetentionPolicy) -> str:
    selects = f"groups starting with {policy.prefix!r}" if policy.prefix is not None else "every group"
    days = f"{policy.days} days" if policy.days is not None else "never expire"
    return f"{policy.name}: {days}, {selects}"


def print_impact(impact: Impact, out: TextIO) -> None:
    print(f"  would lengthen {impact.longer:,}, shorten {impact.shorter:,}, keep {impact.unchanged:,} of {impact.matched:,} groups", file=out)
    # The dry run names up to 20 groups in scope, the largest by stored bytes (DryRunResult.topLogGroupsImpacted).
    for group, current, proposed in impact.shortened:
        print(f"    shorter (among the 20 largest in scope): {group} {current} -> {proposed} days", file=out)


@dataclass(frozen=True)
class Answer:
    #: 0, or the exit code that ends the command here (2: not expressible, or shortening not allowed).
    code: int
    #: Groups whose retention the policies would change (lengthen or shorten).
    changes: int = 0


def as_dict(policy: NativeRetentionPolicy, impact: Impact | None) -> dict[str, Any]:
    found: dict[str, Any] = {"name": policy.name, "days": policy.days, "prefix": policy.prefix}
    if impact is not None:
        found["dryRun"] = {"lengthen": impact.longer, "shorten": impact.shorter, "unchanged": impact.unchanged, "matched": impact.matched,
                           "shortened": [{"logGroup": g, "current": c, "proposed": p} for g, c, p in impact.shortened]}
    return found


def plan_and_apply(logs: Any, config: PolicyConfig, *, apply: bool, allow_shortening: bool, out: TextIO, stderr: TextIO) -> Answer:
    """``python -m cli plan|apply`` with retentionVia account-policy: show the policies and their dry
    runs; apply writes them (and deletes the governor's policies the configuration no longer names)."""
    compiled = compiled_or_refusals(config, stderr)
    if compiled is None:
        return Answer(2)
    found = impacts(logs, compiled)
    print("native retention policies (retentionVia account-policy):", file=out)
    for impact in found:
        print(f"  {describe(impact.policy)}", file=out)
        print_impact(impact, out)
    shorter = sum(i.shorter for i in found)
    if len(found) > 1:
        print("  (AWS previews one policy at a time against the account as it is: a group a broader policy would shorten may "
              "keep a longer prefix policy's retention once both are in effect, so these counts are an upper bound)", file=out)
    changes = sum(i.longer + i.shorter for i in found)
    if not apply:
        return Answer(0, changes)
    if shorter and not allow_shortening:
        print(f"log-group-governor: these policies would shorten the retention of {shorter:,} log groups (listed above), and "
              f"their events would be deleted sooner; nothing was written. Rerun with --allow-shortening to accept that", file=stderr)
        return Answer(2)
    for policy in compiled.policies:
        logs.put_account_policy(**policy.request())
    wanted = {p.name for p in compiled.policies}
    stale = [p["policyName"] for p in logs.describe_account_policies(policyType=RETENTION_POLICY).get("accountPolicies", [])
             if p["policyName"].startswith(NAME_PREFIX) and p["policyName"] not in wanted]
    for name in stale:
        logs.delete_account_policy(policyName=name, policyType=RETENTION_POLICY)
    print(f"wrote {len(compiled.policies)} native retention policies{f', deleted {len(stale)} no longer configured' if stale else ''}; "
          f"they take effect in {IN_EFFECT_AFTER_H} hours", file=out)
    return Answer(0)


def _days(value: str) -> float:
    return float("inf") if value == "NEVER_EXPIRE" else float(value)


def account_form_plan_and_apply(logs: Any, config: PolicyConfig, control: Any, *, apply: bool, out: TextIO, stderr: TextIO) -> Answer:
    """``plan|apply`` with ``<control>Via account-policy`` for a control that plugs in whole (governor.controls): the
    account policies its module compiles from the rules, each written where it is missing or says something else; the
    governor's policies of the type no longer configured are deleted first (AWS refuses a new policy that overlaps one
    still there), where the form deletes them (a data protection policy is never deleted). Another tool's policy of the
    type is never replaced: nothing is written while one is there, and with no rule asking for the control it is not
    looked at. Each line says what was done once it was done; a refusal says what was written before it."""
    from botocore.exceptions import ClientError

    form = control.native_form
    wanted = form.compile(config)
    present = logs.describe_account_policies(policyType=form.policy_type).get("accountPolicies", [])
    ours = {p["policyName"]: p for p in present if form.ours(p["policyName"])}
    stale = sorted(set(ours) - {w["policyName"] for w in wanted}) if form.deletes_stale else []
    if not wanted and not stale:
        return Answer(0)  # no rule asks for it: another tool's policy of the type is no business of the governor's
    foreign = [p["policyName"] for p in present if not form.ours(p["policyName"])]
    if foreign and wanted:
        print(f"log-group-governor: the account holds another {form.policy_type} ({foreign[0]!r}), not the governor's; nothing was "
              f"written (delete it, or use {control.via_key} per-group)", file=stderr)
        return Answer(1)
    changed = [w for w in wanted if w["policyName"] not in ours or not form.covers(ours[w["policyName"]].get("policyDocument"), w)
               or ours[w["policyName"]].get("selectionCriteria") != w.get("selectionCriteria")]
    print(f"native account-level {form.policy_type} for {control.name} ({control.via_key} account-policy; {form.takes_effect}):", file=out)
    if not apply:
        for policy in wanted:
            print(f"  {form.describe(policy)}; {'to be written' if policy in changed else 'in place'}", file=out)
        for name in stale:
            print(f"  {name}: no longer configured; to be deleted", file=out)
        return Answer(0, len(changed) + len(stale))
    try:
        for name in stale:
            logs.delete_account_policy(policyName=name, policyType=form.policy_type)
            print(f"  {name}: no longer configured; deleted", file=out)
        for policy in wanted:
            if policy in changed:
                logs.put_account_policy(**policy)
            print(f"  {form.describe(policy)}; {'written' if policy in changed else 'in place'}", file=out)
    except ClientError as refused:
        print(f"log-group-governor: AWS refused it ({refused}); the lines above are what was done", file=stderr)
        return Answer(1)
    return Answer(0)

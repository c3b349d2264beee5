"""Field indexes (#28's sixth control): a field index policy per group (PutIndexPolicy), so that a Logs Insights query
naming an indexed field (``requestId = "..."``) reads only the events that can match; or, as its native form, the
account's FIELD_INDEX_POLICY (PutAccountPolicy). Everything the governor knows of it is here: the rule's key, the facts,
the decision, the calls, the IAM, the calls that undo it, its metrics and its conflicts. Sources: botocore 1.44.8's model
(PutIndexPolicy, DescribeIndexPolicies, PutAccountPolicy) and the page "Field index syntax and quotas"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CloudWatchLogs-Field-Indexing-Syntax.html)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from shared.config import ConfigError

from ..decision import Action, Decision, LogGroupFacts
from .base import ConflictFix, Control, NativeForm, Undo, WriteAction

if TYPE_CHECKING:
    from ..rules import Resolved

NAME = "fieldIndexes"
ASPECT = "field-indexes"
#: "Only log groups in the Standard log class support field index policies" (the model, PutIndexPolicy).
INDEXED_CLASS = "STANDARD"
#: "as many as 20 fields in a policy", each name "as many as 100 characters" (the page).
MAX_FIELDS = 20
MAX_FIELD_NAME = 100
#: PutIndexPolicy's policyDocument, at most (the model).
MAX_DOCUMENT_CHARS = 51_200
#: The governor's account-level policies are named so; another FIELD_INDEX_POLICY is someone else's, never replaced.
POLICY_NAME_PREFIX = "log-group-governor-field-indexes"
#: "If you create log-group level index policy, that log group does not use account-level policies that match at the log
#: group level" (the page): a group's own policy must carry what the account's gave it.
SOURCE_GROUP, SOURCE_ACCOUNT = "LOG_GROUP", "ACCOUNT"

FIELD_INDEX_POLICIES_SET = "FieldIndexPoliciesSet"


class FieldIndexAction(WriteAction):
    #: PutIndexPolicy (never DeleteIndexPolicy: the governor takes no index off).
    PUT_INDEX_POLICY = "put-index-policy"


class FieldIndexReason(str, Enum):
    UNMANAGED = "field-indexes-unmanaged"
    MISSING = "field-indexes-missing"
    #: The group's policy (or the account's that applies to it) indexes fewer fields than the rule: they are added.
    NARROWER = "field-indexes-narrower"
    #: exact: the group's policy indexes others too: replaced by the rule's.
    DIFFERS = "field-indexes-differs"
    COMPLIANT = "field-indexes-compliant"
    #: The account's FIELD_INDEX_POLICY that applies to the group indexes the rule's fields already.
    BY_ACCOUNT_POLICY = "field-indexes-by-account-policy"
    UNSUPPORTED_CLASS = "field-indexes-unsupported-class"
    #: The fields the group must keep and the rule's pass 20.
    TOO_MANY = "field-indexes-too-many"
    #: PutIndexPolicy refused the rule's policy (InvalidParameterException): the configuration's to fix.
    REFUSED = "field-index-policy-refused"
    #: The group's own policy cannot be read as one: ``minimum`` replaces nothing it cannot read.
    UNREADABLE = "field-index-policy-unreadable"


@dataclass(frozen=True)
class FieldIndexes:
    """Index these fields (``minimum``: add them to a policy someone else set, whose fields stay; ``exact``: the group's
    policy indexes these and no others)."""

    fields: tuple[str, ...]
    exact: bool = False


@dataclass(frozen=True)
class IndexPolicy:
    """What DescribeIndexPolicies answers for a group: the policy that applies to it and whose it is (the model:
    the group's own, else the account-wide one that applies, ``source`` LOG_GROUP or ACCOUNT); None: none applies."""

    document: str | None = None
    source: str | None = None
    policy_name: str | None = None


RULE_SCHEMA: Mapping[str, Any] = {
    "oneOf": [
        {"type": "array", "minItems": 1, "maxItems": MAX_FIELDS, "uniqueItems": True,
         "items": {"type": "string", "minLength": 1, "maxLength": MAX_FIELD_NAME}},
        {"type": "object", "additionalProperties": False, "required": ["fields"], "properties": {
            "fields": {"type": "array", "minItems": 1, "maxItems": MAX_FIELDS, "uniqueItems": True,
                       "items": {"type": "string", "minLength": 1, "maxLength": MAX_FIELD_NAME}},
            "mode": {"enum": ["minimum", "exact"]}}},
    ],
    "description": "field index policy: the fields to index (a list), or {fields, mode}; minimum adds them to a policy "
                   "someone else set, exact makes the group's policy these fields alone",
}


def parse(raw: Any, where: str) -> FieldIndexes | None:
    """``"fieldIndexes": ["requestId", "orderId"]`` or ``{"fields": [...], "mode": "minimum" | "exact"}``."""
    if raw is None:
        return None
    mode = "minimum"
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - {"fields", "mode"})
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected fields and mode")
        mode, raw = raw.get("mode", "minimum"), raw.get("fields")
        if mode not in ("minimum", "exact"):
            raise ConfigError(f"{where}.mode: expected minimum or exact; got {mode!r}")
    if not isinstance(raw, list) or not raw or not all(isinstance(f, str) for f in raw):
        raise ConfigError(f"{where}: expected a non-empty list of field names (or {{fields, mode}}); got {raw!r}")
    problems = [f"{where}: {f!r} is {'empty' if not f else f'{len(f)} characters'}; a field name has 1 to {MAX_FIELD_NAME} (CloudWatch Logs' "
                "field index quotas)" for f in dict.fromkeys(raw) if not 0 < len(f) <= MAX_FIELD_NAME]
    if len(set(raw)) != len(raw):
        problems.append(f"{where}: {next(f for f in raw if raw.count(f) > 1)!r} is listed twice")
    if len(raw) > MAX_FIELDS:
        problems.append(f"{where}: {len(raw)} fields; a field index policy holds at most {MAX_FIELDS}")
    if problems:
        raise ConfigError(*problems)
    return FieldIndexes(tuple(raw), exact=mode == "exact")


def to_json(value: FieldIndexes) -> Any:
    return {"fields": list(value.fields), "mode": "exact"} if value.exact else list(value.fields)


def look_up(logs: Any, info: Any) -> IndexPolicy:
    """DescribeIndexPolicies for one group (the model: one identifier a call). A group of another class can hold none:
    no call then."""
    if info.log_group_class != INDEXED_CLASS:
        return IndexPolicy()
    answer = logs.group_call("DescribeIndexPolicies", "describe_index_policies", info.name, logGroupIdentifiers=[info.name])
    found = next(iter(answer.get("indexPolicies") or []), None)
    if not found:
        return IndexPolicy()
    return IndexPolicy(found.get("policyDocument"), found.get("source"), found.get("policyName"))


def indexed_fields(document: str | None) -> set[str] | None:
    """The fields a policy names (``Fields`` and ``FieldsV2``'s keys, facets too: a name may not be in both, the model);
    None: it cannot be read as a policy."""
    try:
        policy = json.loads(document) if document else None
        fields, v2 = policy.get("Fields", []), policy.get("FieldsV2", {})
        if not isinstance(fields, list) or not isinstance(v2, dict) or not all(isinstance(f, str) for f in fields):
            return None
        return {*fields, *v2}
    except (ValueError, AttributeError, TypeError):
        return None


def index_policy_document(fields: Iterable[str]) -> str:
    return json.dumps({"Fields": sorted(fields)}, separators=(",", ":"))


def _widened(document: str | None, fields: Iterable[str]) -> str | None:
    """Someone else's group policy with the rule's fields added to its ``Fields`` (its FieldsV2, facets and order stay)."""
    try:
        policy = json.loads(document) if document else None
        have = indexed_fields(document)
        if not isinstance(policy, dict) or have is None:
            return None
        policy["Fields"] = [*policy.get("Fields", []), *sorted(set(fields) - have)]
        return json.dumps(policy, separators=(",", ":"))
    except (ValueError, TypeError, AttributeError):
        return None


def decide(resolved: Resolved, facts: LogGroupFacts, *, partition: str = "aws") -> Decision:
    """The group's field indexes, as its fieldIndexes rule says. ``minimum`` never narrows what indexes the group now (a
    policy of the group's own, or the account's that applies to it: a group policy replaces the account's for the group,
    so the account's fields are carried over); ``exact`` makes the group's policy the rule's. No policy is deleted."""
    rule: FieldIndexes = resolved.value
    source, wanted = resolved.rule.source if resolved.rule else "no rule", set(rule.fields)
    if facts.log_group_class != INDEXED_CLASS:
        return Decision(Action.LEAVE, FieldIndexReason.UNSUPPORTED_CLASS, f"class {facts.log_group_class}: only {INDEXED_CLASS} groups take "
                        "field index policies")  # type: ignore[arg-type]
    policy: IndexPolicy = facts.fact(NAME) or IndexPolicy()
    present = indexed_fields(policy.document) if policy.document else None
    names = ", ".join(sorted(wanted))
    if policy.source == SOURCE_ACCOUNT and present is not None and (present == wanted if rule.exact else wanted <= present):
        return Decision(Action.LEAVE, FieldIndexReason.BY_ACCOUNT_POLICY, f"the account's policy {policy.policy_name!r} indexes {names}, "
                        f"as {source} requires")  # type: ignore[arg-type]
    if policy.source == SOURCE_GROUP and present is None and not rule.exact:
        return Decision(Action.CONFLICT, FieldIndexReason.UNREADABLE, f"the group's field index policy cannot be read as one; {source} "  # type: ignore[arg-type]
                        "(minimum) replaces no policy it cannot read")
    if policy.source == SOURCE_GROUP and present is not None and (present == wanted if rule.exact else wanted <= present):
        return Decision(Action.LEAVE, FieldIndexReason.COMPLIANT, f"indexes {', '.join(sorted(present))}, as {source} requires")  # type: ignore[arg-type]
    kept = set() if rule.exact else (present or set())
    total = kept | wanted
    if len(total) > MAX_FIELDS:
        return Decision(Action.CONFLICT, FieldIndexReason.TOO_MANY, f"{source} adds {', '.join(sorted(wanted - kept))} to the "  # type: ignore[arg-type]
                        f"{len(kept)} fields indexed now: {len(total)}, past the {MAX_FIELDS} a policy holds")
    if policy.source == SOURCE_GROUP and not rule.exact:
        document = _widened(policy.document, wanted) or index_policy_document(total)
        return Decision(FieldIndexAction.PUT_INDEX_POLICY, FieldIndexReason.NARROWER, f"{source}: add {', '.join(sorted(wanted - kept))} "  # type: ignore[arg-type]
                        f"to the fields indexed ({', '.join(sorted(kept)) or 'none readable'} stay)", payload=document)
    if policy.source == SOURCE_GROUP:
        return Decision(FieldIndexAction.PUT_INDEX_POLICY, FieldIndexReason.DIFFERS, f"{source} (exact): index {names} instead of "  # type: ignore[arg-type]
                        f"{', '.join(sorted(present or ())) or 'an unreadable policy'}", payload=index_policy_document(wanted))
    carried = f"; the account's policy's {', '.join(sorted(kept))} carried over (a group's policy replaces it)" if kept else ""
    # The account's document as it is (its FieldsV2 types, facets among them), the rule's fields added: nothing narrows.
    document = (_widened(policy.document, wanted) if kept else None) or index_policy_document(total)
    return Decision(FieldIndexAction.PUT_INDEX_POLICY, FieldIndexReason.MISSING, f"{source}: index {names}{carried}",  # type: ignore[arg-type]
                    payload=document)


def apply(logs: Any, name: str, decision: Decision) -> None:
    if not decision.payload:  # a writing decision always carries what to write; anything else is a bug in decide
        raise AssertionError(f"decision {decision} has nothing to apply")
    logs.group_call("PutIndexPolicy", "put_index_policy", name, refusals=("InvalidParameterException", "LimitExceededException"),
                    logGroupIdentifier=name, policyDocument=decision.payload)


# --- the account-level form: fieldIndexesVia account-policy ------------------------------------------------------------
def compile_account_policies(config: Any) -> list[dict[str, Any]]:
    """The account's FIELD_INDEX_POLICY policies the rules amount to: a rule that matches every group is one policy for
    every group; rules matching by name prefixes alone are one policy each (``LogGroupNamePrefix IN [...]``, the model's
    selection for this type); prefixes may not overlap and there are at most 20 (the model). Anything else cannot be
    said by an account policy: ConfigError, at synth."""
    ruled = [r for r in config.rules if r.value(NAME) is not None]
    problems, policies, prefixes = [], [], []
    if config.exclude_prefixes or config.exclude_patterns or config.exclude_tags:
        problems.append(f"{NAME}Via account-policy: an account policy indexes excluded groups too (excludePrefixes, excludePatterns, "
                        f"excludeTags); use {NAME}Via per-group")
    for index, rule in enumerate(ruled):
        match, value = rule.match, rule.value(NAME)
        if match.name_patterns or match.tags or match.log_group_classes:
            problems.append(f"{rule.source}: {NAME}Via account-policy selects by name prefix only (PutAccountPolicy's selectionCriteria "
                            f"for FIELD_INDEX_POLICY); this rule matches by {'patterns' if match.name_patterns else 'tags' if match.tags else 'class'}")
            continue
        if value.exact:
            problems.append(f"{rule.source}: mode exact needs a policy per group; an account policy cannot replace a group's own")
            continue
        selection = {} if not match.name_prefixes else {
            "selectionCriteria": "LogGroupNamePrefix IN [" + ", ".join(json.dumps(p) for p in match.name_prefixes) + "]"}
        if not match.name_prefixes and index != len(ruled) - 1:
            problems.append(f"{rule.source}: a rule for every group decides for the rules after it; it must come last")
        prefixes += [(index, p) for p in match.name_prefixes]
        # Named by what it selects, not by the rule's place: editing other rules leaves its name (and AWS's policy) as it is.
        policies.append({"policyName": f"{POLICY_NAME_PREFIX}-{_digest(match.name_prefixes)}" if match.name_prefixes else POLICY_NAME_PREFIX,
                         "policyType": "FIELD_INDEX_POLICY", "policyDocument": index_policy_document(value.fields), "scope": "ALL", **selection})
    # Two policies may not select the same or overlapping prefixes (the model); one policy's own prefixes may overlap.
    overlapping = [(a, b) for i, a in prefixes for j, b in prefixes if i != j and b.startswith(a)]
    if overlapping:
        problems.append(f"{NAME}Via account-policy: prefixes {overlapping[0][0]!r} and {overlapping[0][1]!r} overlap; AWS refuses "
                        "overlapping prefixes in field index policies")
    if any("selectionCriteria" in p for p in policies) and any("selectionCriteria" not in p for p in policies):
        problems.append(f"{NAME}Via account-policy: with a policy for every group AWS takes no prefix policies beside it (the page)")
    if len(policies) > MAX_FIELDS:
        problems.append(f"{NAME}Via account-policy: {len(policies)} policies; an account holds at most 20 prefix policies")
    if problems:
        raise ConfigError(*problems)
    return policies


def _digest(prefixes: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(prefixes)).encode()).hexdigest()[:8]


def is_governors(policy_name: str) -> bool:
    """Whether an account's FIELD_INDEX_POLICY is one the governor wrote (its names: compile_account_policies)."""
    return policy_name == POLICY_NAME_PREFIX or re.fullmatch(f"{re.escape(POLICY_NAME_PREFIX)}-[0-9a-f]{{8}}", policy_name) is not None


def _account_policy_covers(document: str | None, wanted: Mapping[str, Any]) -> bool:
    return indexed_fields(document) == indexed_fields(wanted["policyDocument"])


def _describe(policy: Mapping[str, Any]) -> str:
    fields = ", ".join(sorted(indexed_fields(policy["policyDocument"]) or ()))
    return f"{policy['policyName']} indexes {fields} in {policy.get('selectionCriteria') or 'every log group'}"


CONTROL = Control(
    name=NAME, aspect=ASPECT, summary="the group's field index policy",
    doc=('`["requestId", ...]` or `{"fields": [...], "mode": "minimum" \\| "exact"}`',
         "`PutIndexPolicy`: Logs Insights queries that name those fields read only the events that can match (STANDARD groups); "
         "`minimum` adds them to the group's policy or carries the account's over, `exact` makes them the group's alone; see below"),
    reads=("logs:DescribeLogGroups", "logs:DescribeIndexPolicies"), writes=("logs:PutIndexPolicy",),
    adapter=(("LogsGateway", "describe_log_group"),),
    undone_by=(Undo("PutIndexPolicy", ("logGroupIdentifier",), source="*assumed* (localaws/FIDELITY.md, field index records)"),
               Undo("DeleteIndexPolicy", ("logGroupIdentifier",), source="*assumed* (localaws/FIDELITY.md, field index records)")),
    metrics=(FIELD_INDEX_POLICIES_SET,),
    conflicts=(ConflictFix(FieldIndexReason.TOO_MANY.value, "the fields a group indexes now and a rule's pass the 20 a field index policy holds",
                           "index fewer fields, or give the rule `\"mode\": \"exact\"` so that its fields replace the group's"),
               ConflictFix(FieldIndexReason.REFUSED.value, "AWS refused a rule's field index policy (a field name it does not take, say)",
                           "fix the rule's fields (CloudWatch Logs' field index syntax)"),
               ConflictFix(FieldIndexReason.UNREADABLE.value, "the group's own field index policy cannot be read as one (`Fields` not a "
                           "list of names, say); `minimum` replaces nothing it cannot read",
                           "fix or delete the group's policy, or give the rule `\"mode\": \"exact\"` to replace it")),
    native="fieldIndexesVia account-policy (the account's FIELD_INDEX_POLICY, written by `log-group-governor apply`)",
    unmanaged=FieldIndexReason.UNMANAGED.value, applies=(FieldIndexAction.PUT_INDEX_POLICY.value,), decide=decide, apply=apply,
    handler=("IndexLogGroup", "govern", "puts the governance rules' field index policies on the log groups they match"),
    parse=parse, rule_schema=RULE_SCHEMA, to_json=to_json, look_up=look_up,
    own_actions=FieldIndexAction, own_reasons=FieldIndexReason,
    metric_by_action={FieldIndexAction.PUT_INDEX_POLICY.value: FIELD_INDEX_POLICIES_SET}, refused=FieldIndexReason.REFUSED.value,
    native_reason=FieldIndexReason.BY_ACCOUNT_POLICY.value, mode=True,
    calls=("DescribeLogGroups", "ListTagsForResource", "DescribeIndexPolicies", "PutIndexPolicy"),
    # *assumed*: the quotas page lists neither call; the account-policy calls' 5 a second stands in (selftest checks nothing here).
    quotas_tps={"DescribeIndexPolicies": 5.0, "PutIndexPolicy": 5.0},
    example=["requestId", "orderId"],
    native_form=NativeForm("FIELD_INDEX_POLICY", is_governors, compile=compile_account_policies, covers=_account_policy_covers,
                           describe=_describe, takes_effect="indexes what is ingested from then on"),
)

"""Data protection: a policy that masks the rule's identifiers in what is ingested after it (PutDataProtectionPolicy), or
the account's one DATA_PROTECTION_POLICY as its native form (dataProtectionVia account-policy). It plugs in whole (#28):
its rule key, fact, actions, reasons, metric, calls, grants and account-level form are here, and nothing else names it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from shared.config import ConfigError

from ..decision import Action, Decision, LogGroupFacts
from .base import ConflictFix, Control, Grant, NativeForm, Undo, WriteAction

if TYPE_CHECKING:
    from ..rules import Resolved

NAME = DATA_PROTECTION = "dataProtection"
ASPECT = "data-protection"
DATA_PROTECTION_SET = "DataProtectionSet"
#: The account's one DATA_PROTECTION_POLICY, when the governor writes it (an account holds one: AWS-FACTS).
ACCOUNT_POLICY_NAME = "log-group-governor-data-protection"
ACCOUNT_POLICY_TYPE = "DATA_PROTECTION_POLICY"
#: A managed data identifier's name (``EmailAddress``, ``CreditCardNumber``...), as its ARN ends.
_IDENTIFIER = re.compile(r"^[A-Za-z0-9-]{1,128}$")
#: A log group name (the API model's LogGroupName pattern).
_LOG_GROUP_NAME = re.compile(r"[\.\-_/#A-Za-z0-9]{1,512}")


class DataProtectionAction(WriteAction):
    #: PutDataProtectionPolicy (never DeleteDataProtectionPolicy: the governor takes no policy off).
    PUT = "put-data-protection-policy"


class DataProtectionReason(str, Enum):
    UNMANAGED = "data-protection-unmanaged"
    MISSING = "data-protection-missing"
    #: The group's policy masks fewer identifiers than the rule asks (minimum: they are added, the others kept).
    NARROWER = "data-protection-narrower"
    #: exact: the group's policy masks others too; replaced by the rule's.
    DIFFERS = "data-protection-differs"
    COMPLIANT = "data-protection-compliant"
    #: PutDataProtectionPolicy refused the rule's policy (its audit log group missing, say): fix the rule.
    REFUSED = "data-protection-refused"
    #: dataProtectionVia account-policy: the account's policy says it (the CLI's apply writes it).
    BY_ACCOUNT_POLICY = "data-protection-by-account-policy"


@dataclass(frozen=True)
class DataProtectionControl:
    """Audit and mask these managed data identifiers (``minimum``: add them to a policy someone else set, whose other
    identifiers stay; ``exact``: the policy masks these and no others)."""

    identifiers: tuple[str, ...]
    exact: bool = False
    #: A log group that receives the audit findings (it must exist: PutDataProtectionPolicy, the model); None: none.
    audit_log_group: str | None = None


RULE_SCHEMA: Mapping[str, Any] = {"type": "object", "additionalProperties": False, "required": ["identifiers"], "properties": {
    "identifiers": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
    "mode": {"enum": ["minimum", "exact"]}, "auditLogGroup": {"type": "string", "minLength": 1, "maxLength": 512}}}


def parse(raw: Any, where: str) -> DataProtectionControl | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - {"identifiers", "mode", "auditLogGroup"} or not isinstance(raw.get("identifiers"), list):
        raise ConfigError(f"{where}: expected {{\"identifiers\": [\"EmailAddress\", ...], \"mode\": \"minimum\" | \"exact\", "
                          f"\"auditLogGroup\": \"<an existing log group>\"}}; got {raw!r}")
    names = [i.rsplit("/", 1)[-1] if isinstance(i, str) and i.startswith("arn:") else i for i in raw["identifiers"]]
    if not names or not all(isinstance(n, str) and _IDENTIFIER.match(n) for n in names):
        raise ConfigError(f"{where}.identifiers: expected managed data identifiers (names such as EmailAddress, or their ARNs); got {raw['identifiers']!r}")
    mode = raw.get("mode", "minimum")
    if mode not in ("minimum", "exact"):
        raise ConfigError(f"{where}.mode: expected minimum or exact; got {mode!r}")
    audit = raw.get("auditLogGroup")
    if audit is not None and (not isinstance(audit, str) or not _LOG_GROUP_NAME.fullmatch(audit)):
        raise ConfigError(f"{where}.auditLogGroup: expected a log group's name (1-512 of A-Z a-z 0-9 . - _ / #); got {audit!r}")
    return DataProtectionControl(tuple(sorted(set(names))), exact=mode == "exact", audit_log_group=audit)


def to_json(value: DataProtectionControl) -> Any:
    return {"identifiers": list(value.identifiers), **({"mode": "exact"} if value.exact else {}),
            **({"auditLogGroup": value.audit_log_group} if value.audit_log_group else {})}


def look_up(logs: Any, info: Any) -> str | None:
    """The group's policy document: GetDataProtectionPolicy only when DescribeLogGroups' ``dataProtectionStatus`` says it
    has one (the model's enum: ACTIVATED), so most groups cost no call; None: it has none."""
    if info.described.get("dataProtectionStatus") != "ACTIVATED":
        return None
    return logs.group_call("GetDataProtectionPolicy", "get_data_protection_policy", info.name, logGroupIdentifier=info.name).get("policyDocument") or None

#: The governor's data protection policies are named so (the Name is the dimension of audit findings' metrics, the model).
DATA_PROTECTION_POLICY_NAME = "log-group-governor"


def decide(resolved: Resolved, facts: LogGroupFacts, *, partition: str = "aws") -> Decision:
    """A data protection policy (#21), as the group's dataProtection rule says: audit and mask its identifiers in what is
    ingested from now on (PutDataProtectionPolicy, the model). ``minimum`` never narrows a policy someone else set:
    their identifiers stay and the rule's are added; ``exact`` makes it the rule's. No policy is ever deleted."""
    control = resolved.value
    source, wanted = resolved.rule.source if resolved.rule else "no rule", set(control.identifiers)
    if facts.name == control.audit_log_group:
        return Decision(Action.LEAVE, DataProtectionReason.UNMANAGED, f"receives the audit findings of {source}: not audited into itself")
    document = facts.fact(NAME)
    current, their_audit = masked_identifiers(document), audit_log_group(document)
    # minimum keeps an audit destination someone else chose; the rule's goes where there is none (or with exact).
    audit = control.audit_log_group if control.exact or their_audit is None else their_audit

    def put(identifiers: set[str]) -> str:
        return data_protection_document(sorted(identifiers), facts.name, partition, audit_log_group=audit)
    if current is None:
        return Decision(DataProtectionAction.PUT, DataProtectionReason.MISSING, f"{source}: audit and mask {', '.join(sorted(wanted))}",
                        payload=put(wanted))
    if (current == wanted or (current >= wanted and not control.exact)) and audit == their_audit:
        return Decision(Action.LEAVE, DataProtectionReason.COMPLIANT, f"masks {', '.join(sorted(current))}, as {source} requires")
    if control.exact:
        return Decision(DataProtectionAction.PUT, DataProtectionReason.DIFFERS, f"{source} (exact): mask {', '.join(sorted(wanted))} "
                        f"instead of {', '.join(sorted(current))}", payload=put(wanted))
    # Their document widened in place (#26): whatever else it says (custom identifiers, S3 and Firehose findings) stays.
    widened = widened_data_protection_document(document, wanted, partition,
                                               audit_log_group=audit if audit != their_audit else None)
    return Decision(DataProtectionAction.PUT, DataProtectionReason.NARROWER, f"{source}: add {', '.join(sorted(wanted - current)) or 'nothing'} "
                    f"to the identifiers masked ({', '.join(sorted(current))} stay)"
                    + (f"; audit findings to {audit}" if audit != their_audit else ""), payload=widened or put(current | wanted))


def apply(logs: Any, name: str, decision: Decision) -> None:
    """PutDataProtectionPolicy; a document AWS refuses (InvalidParameterException: an audit group that is missing...) is
    the configuration's to fix."""
    if not decision.payload:  # a writing decision always carries what to write; anything else is a bug in decide
        raise AssertionError(f"decision {decision} has nothing to apply")
    logs.group_call("PutDataProtectionPolicy", "put_data_protection_policy", name, refusals=("InvalidParameterException",),
                    logGroupIdentifier=name, policyDocument=decision.payload)


def data_protection_document(identifiers: Sequence[str], log_group: str, partition: str = "aws", *, audit_log_group: str | None = None) -> str:
    """The policy document the model describes: an Audit block (its FindingsDestination object empty, or naming the log
    group that receives the findings) and a Deidentify block (``"MaskConfig": {}``), their DataIdentifier arrays the same."""
    arns = [f"arn:{partition}:dataprotection::aws:data-identifier/{name}" for name in identifiers]
    findings = {"CloudWatchLogs": {"LogGroup": audit_log_group}} if audit_log_group else {}
    return json.dumps({"Name": DATA_PROTECTION_POLICY_NAME, "Description": f"log-group-governor: {log_group}", "Version": "2021-06-01",
                       "Statement": [{"Sid": "audit", "DataIdentifier": arns, "Operation": {"Audit": {"FindingsDestination": findings}}},
                                     {"Sid": "redact", "DataIdentifier": arns, "Operation": {"Deidentify": {"MaskConfig": {}}}}]},
                      separators=(",", ":"))


def widened_data_protection_document(document: str | None, identifiers: Iterable[str], partition: str = "aws", *,
                                     audit_log_group: str | None = None) -> str | None:
    """Someone else's policy widened in place (``minimum``, #26): each of ``identifiers`` (managed identifiers' names) it
    does not name yet is added, as its ARN, to every statement's DataIdentifier array (the model: the two arrays match
    exactly); ``audit_log_group``, when given, joins their findings destinations as the CloudWatchLogs one. Everything
    else stays as they wrote it: Name, Description, Version, Configuration (custom data identifiers, named in
    DataIdentifier by their Name), each statement's other fields, every FindingsDestination (S3, Firehose,
    CloudWatchLogs), their identifiers and their order. None: the document cannot be read as a policy."""
    try:
        policy = json.loads(document) if document else None
        statements = policy.get("Statement") if isinstance(policy, dict) else None
        if not isinstance(statements, list) or not statements or not all(isinstance(st, dict) for st in statements):
            return None
        for statement in statements:
            named = statement.get("DataIdentifier")
            if not isinstance(named, list) or not all(isinstance(i, str) for i in named):
                return None
            have = {i.rsplit("/", 1)[-1] for i in named}
            statement["DataIdentifier"] = [*named, *(f"arn:{partition}:dataprotection::aws:data-identifier/{name}"
                                                     for name in sorted(set(identifiers) - have))]
            audit = statement.get("Operation", {}).get("Audit") if isinstance(statement.get("Operation"), dict) else None
            if audit_log_group and isinstance(audit, dict):
                findings = audit.setdefault("FindingsDestination", {})
                if not isinstance(findings, dict):
                    return None
                findings["CloudWatchLogs"] = {**(findings.get("CloudWatchLogs") or {}), "LogGroup": audit_log_group}
    except (ValueError, AttributeError, TypeError):
        return None
    return json.dumps(policy, separators=(",", ":"))


def audit_log_group(document: str | None) -> str | None:
    """The log group a policy sends its audit findings to (None: none, or no policy)."""
    try:
        statements = json.loads(document).get("Statement", []) if document else []
        return next((st["Operation"]["Audit"].get("FindingsDestination", {}).get("CloudWatchLogs", {}).get("LogGroup")
                     for st in statements if "Audit" in st.get("Operation", {})), None)
    except (ValueError, AttributeError, TypeError, KeyError):
        return None


def masked_identifiers(document: str | None) -> set[str] | None:
    """The names of the identifiers a policy masks (its Deidentify block); None when there is no policy. A policy that
    cannot be read masks nothing the governor can count on: an empty set, so the rule's identifiers are added."""
    if document is None:
        return None
    try:
        statements = json.loads(document).get("Statement", [])
        return {arn.rsplit("/", 1)[-1] for st in statements if "Deidentify" in st.get("Operation", {}) for arn in st.get("DataIdentifier", [])}
    except (ValueError, AttributeError, TypeError):
        return set()


def compile_account_policy(config: Any) -> list[dict[str, Any]]:
    """dataProtectionVia account-policy: the account's one DATA_PROTECTION_POLICY (an account holds one: AWS-FACTS), from the
    dataProtection rule that matches every group. What it cannot say stops synth: a rule that selects groups, or exclusions
    (and the shipping path's groups) it would mask anyway."""
    ruled = [r for r in config.rules if r.value(NAME) is not None]
    selecting = [r.source for r in ruled if r.match.to_json()]
    if selecting:
        raise ConfigError(f"rules: {selecting[0]} selects groups, but dataProtectionVia account-policy writes the account's one "
                          "DATA_PROTECTION_POLICY, which applies to every group; give that rule no match, or use dataProtectionVia per-group")
    scoped = [key for key, value in (("excludePrefixes", config.exclude_prefixes), ("excludePatterns", config.exclude_patterns),
                                     ("excludeTags", config.exclude_tags), ("shippingPathLogGroups", config.shipping_path_log_groups)) if value]
    if scoped and ruled:
        raise ConfigError(f"dataProtectionVia account-policy masks every group of the account, {scoped[0]}'s too, which the "
                          "configuration leaves alone; use dataProtectionVia per-group")
    if not ruled:
        return []
    value: DataProtectionControl = ruled[0].value(NAME)
    partition = config.destination.partition if config.destination else "aws"
    return [{"policyName": ACCOUNT_POLICY_NAME, "policyType": ACCOUNT_POLICY_TYPE, "scope": "ALL",
             "policyDocument": data_protection_document(list(value.identifiers), "every log group of the account", partition,
                                                        audit_log_group=value.audit_log_group)}]


def _account_policy_covers(document: str | None, wanted: Mapping[str, Any]) -> bool:
    return (masked_identifiers(document) == masked_identifiers(wanted["policyDocument"])
            and audit_log_group(document) == audit_log_group(wanted["policyDocument"]))


def _describe(policy: Mapping[str, Any]) -> str:
    return f"{policy['policyName']} masks {', '.join(sorted(masked_identifiers(policy['policyDocument']) or ()))} in every log group"


def _audits(value: DataProtectionControl) -> bool:
    return bool(value.audit_log_group)


CONTROL = Control(
    doc=('`{"identifiers": ["EmailAddress", ...], "mode": "minimum" \\| "exact", "auditLogGroup": "..."}`',
         '`PutDataProtectionPolicy`: audit and mask those managed data identifiers; see below'),
    name=NAME, unmanaged=DataProtectionReason.UNMANAGED.value, applies=(DataProtectionAction.PUT.value,), decide=decide, apply=apply,
    handler=("ProtectData", "govern", "puts the governance rules' data protection policies (audit and mask) on the log groups they match"),
    aspect=ASPECT, summary="the group's data protection policy",
    reads=("logs:DescribeLogGroups", "logs:GetDataProtectionPolicy"), writes=("logs:PutDataProtectionPolicy",),
    adapter=(("LogsGateway", "describe_log_group"),),
    undone_by=(Undo("PutDataProtectionPolicy", ("logGroupIdentifier",), source="*assumed* (localaws/FIDELITY.md E8)"),
               Undo("DeleteDataProtectionPolicy", ("logGroupIdentifier",), source="*assumed* (localaws/FIDELITY.md E8)")),
    metrics=(DATA_PROTECTION_SET,),
    conflicts=(ConflictFix(DataProtectionReason.REFUSED.value, "AWS refused a rule's data protection policy (its `auditLogGroup` does not "
                           "exist, say)", "create the audit log group, or fix the rule"),),
    native="dataProtectionVia account-policy (the account's DATA_PROTECTION_POLICY, written by `log-group-governor apply`)",
    parse=parse, rule_schema=RULE_SCHEMA, to_json=to_json, look_up=look_up, own_actions=DataProtectionAction, own_reasons=DataProtectionReason,
    metric_by_action={DataProtectionAction.PUT.value: DATA_PROTECTION_SET}, refused=DataProtectionReason.REFUSED.value,
    native_reason=DataProtectionReason.BY_ACCOUNT_POLICY.value,
    calls=("DescribeLogGroups", "ListTagsForResource", "GetDataProtectionPolicy", "PutDataProtectionPolicy"),
    # Not in AWS-FACTS' table: *assumed* like the other per-group calls (apiQuotasTps sets the account's).
    quotas_tps={"GetDataProtectionPolicy": 5.0, "PutDataProtectionPolicy": 5.0},
    example={"identifiers": ["EmailAddress"]},
    # Audit findings sent to a log group are a log delivery: the rights CloudWatch Logs asks of whoever sets one up (the
    # vended logs page's "AllowUpdatesToResourcePolicyCWL", and CreateLogDelivery), only when a rule names an audit log
    # group; that these are the ones a data protection policy needs is *assumed*.
    grants=(Grant(("logs:PutResourcePolicy", "logs:DescribeResourcePolicies"), "account-logs", when=_audits,
                  reason="the log group resource policy that lets audit findings be delivered is the account's and region's, not a group's"),
            Grant(("logs:CreateLogDelivery",), "*", when=_audits, reason="an audit findings log delivery (logs:CreateLogDelivery) takes only *")),
    native_form=NativeForm(ACCOUNT_POLICY_TYPE, lambda name: name == ACCOUNT_POLICY_NAME, compile=compile_account_policy,
                           covers=_account_policy_covers, describe=_describe, takes_effect="it masks what is ingested from then on",
                           deletes_stale=False),
    mode=True,
)

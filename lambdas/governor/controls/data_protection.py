"""Data protection: a policy that masks the rule's identifiers in what is ingested after it (PutDataProtectionPolicy)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import metric_names as names
from ..decision import Action, Decision, LogGroupFacts, Reason
from .base import Control, ConflictFix, Undo

if TYPE_CHECKING:
    from ..rules import Resolved

NAME = DATA_PROTECTION = "dataProtection"

#: The governor's data protection policies are named so (the Name is the dimension of audit findings' metrics, the model).
DATA_PROTECTION_POLICY_NAME = "log-group-governor"


def decide(resolved: Resolved, facts: LogGroupFacts, *, partition: str = "aws") -> Decision:
    """A data protection policy (#21), as the group's dataProtection rule says: audit and mask its identifiers in what is
    ingested from now on (PutDataProtectionPolicy, the model). ``minimum`` never narrows a policy someone else set:
    their identifiers stay and the rule's are added; ``exact`` makes it the rule's. No policy is ever deleted."""
    control = resolved.value
    source, wanted = resolved.rule.source if resolved.rule else "no rule", set(control.identifiers)
    if facts.name == control.audit_log_group:
        return Decision(Action.LEAVE, Reason.DATA_PROTECTION_UNMANAGED, f"receives the audit findings of {source}: not audited into itself")
    current, their_audit = masked_identifiers(facts.data_protection_document), audit_log_group(facts.data_protection_document)
    # minimum keeps an audit destination someone else chose; the rule's goes where there is none (or with exact).
    audit = control.audit_log_group if control.exact or their_audit is None else their_audit

    def put(identifiers: set[str]) -> str:
        return data_protection_document(sorted(identifiers), facts.name, partition, audit_log_group=audit)
    if current is None:
        return Decision(Action.PUT_DATA_PROTECTION, Reason.DATA_PROTECTION_MISSING, f"{source}: audit and mask {', '.join(sorted(wanted))}",
                        data_protection_document=put(wanted))
    if (current == wanted or (current >= wanted and not control.exact)) and audit == their_audit:
        return Decision(Action.LEAVE, Reason.DATA_PROTECTION_COMPLIANT, f"masks {', '.join(sorted(current))}, as {source} requires")
    if control.exact:
        return Decision(Action.PUT_DATA_PROTECTION, Reason.DATA_PROTECTION_DIFFERS, f"{source} (exact): mask {', '.join(sorted(wanted))} "
                        f"instead of {', '.join(sorted(current))}", data_protection_document=put(wanted))
    # Their document widened in place (#26): whatever else it says (custom identifiers, S3 and Firehose findings) stays.
    widened = widened_data_protection_document(facts.data_protection_document, wanted, partition,
                                               audit_log_group=audit if audit != their_audit else None)
    return Decision(Action.PUT_DATA_PROTECTION, Reason.DATA_PROTECTION_NARROWER, f"{source}: add {', '.join(sorted(wanted - current)) or 'nothing'} "
                    f"to the identifiers masked ({', '.join(sorted(current))} stay)"
                    + (f"; audit findings to {audit}" if audit != their_audit else ""), data_protection_document=widened or put(current | wanted))


def apply(logs: Any, name: str, decision: Decision) -> None:
    if not decision.data_protection_document:  # a writing decision always carries what to write; anything else is a bug in decide
        raise AssertionError(f"decision {decision} has nothing to apply")
    logs.put_data_protection_policy(name, decision.data_protection_document)


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


CONTROL = Control(
    doc=('`{"identifiers": ["EmailAddress", ...], "mode": "minimum" \\| "exact", "auditLogGroup": "..."}`',
         '`PutDataProtectionPolicy`: audit and mask those managed data identifiers; see below'),
    name=NAME, unmanaged=Reason.DATA_PROTECTION_UNMANAGED.value, applies=(Action.PUT_DATA_PROTECTION.value,), decide=decide, apply=apply, handler=('ProtectData', 'govern', "puts the governance rules' data protection policies (audit and mask) on the log groups they match"), aspect="data-protection", summary="the group's data protection policy",
    reads=("logs:DescribeLogGroups", "logs:GetDataProtectionPolicy"), writes=("logs:PutDataProtectionPolicy",),
    adapter=(("LogsGateway", "describe_log_group"), ("LogsGateway", "data_protection_policy"), ("LogsGateway", "put_data_protection_policy")),
    undone_by=(Undo("PutDataProtectionPolicy", ("logGroupIdentifier",), source="*assumed* (localaws/FIDELITY.md E8)"),
               Undo("DeleteDataProtectionPolicy", ("logGroupIdentifier",), source="*assumed* (localaws/FIDELITY.md E8)")),
    metrics=(names.DATA_PROTECTION_SET,),
    conflicts=(ConflictFix("data-protection-refused", "AWS refused a rule's data protection policy (its `auditLogGroup` does not exist, say)",
                           "create the audit log group, or fix the rule"),),
    native="dataProtectionVia account-policy (the account's DATA_PROTECTION_POLICY, written by `log-group-governor apply`)",
)

"""A KMS key per group (AssociateKmsKey): what is ingested after the association is encrypted with it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from .. import metric_names as names
from ..decision import Action, Decision, LogGroupFacts, Reason
from .base import Control, ConflictFix, Undo

if TYPE_CHECKING:
    from ..rules import Resolved

NAME = KMS_KEY = "kmsKeyArn"

#: What CloudWatch Logs does with a group's key (the KMS page for CloudWatch Logs lists these in its key policy example).
_LOGS_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:DescribeKey")
_LOGS_CONTEXT_KEY = "kms:encryptioncontext:aws:logs:arn"


def decide(resolved: Resolved, facts: LogGroupFacts, *, partition: str = "aws") -> Decision:
    """A KMS key per group (#21), as the group's kmsKeyArn rule says. Only what is ingested after the association is
    encrypted with the key (AssociateKmsKey, the model). The governor takes no key off and replaces none."""
    source = resolved.rule.source if resolved.rule else "no rule"
    if facts.kms_key_id == resolved.value:
        return Decision(Action.LEAVE, Reason.KMS_KEY_ASSOCIATED, f"encrypted with {resolved.value}, as {source} requires")
    if facts.kms_key_id and resolved.rule is not None and KMS_KEY in resolved.rule.exact:
        return Decision(Action.ASSOCIATE_KMS_KEY, Reason.OTHER_KMS_KEY, f"encrypted with {facts.kms_key_id}; {source} (exact) replaces it "
                        f"with {resolved.value} for what is ingested from now on", kms_key_arn=resolved.value)
    if facts.kms_key_id:
        return Decision(Action.CONFLICT, Reason.OTHER_KMS_KEY, f"encrypted with {facts.kms_key_id}; {source} wants {resolved.value}, "
                                                               "and the governor replaces no key")
    return Decision(Action.ASSOCIATE_KMS_KEY, Reason.KMS_KEY_MISSING, f"{source} requires {resolved.value}: associate it (what is "
                                                                      "ingested from now on is encrypted with it)", kms_key_arn=resolved.value)


def apply(logs: Any, name: str, decision: Decision) -> None:
    if not decision.kms_key_arn:  # a writing decision always carries what to write; anything else is a bug in decide
        raise AssertionError(f"decision {decision} has nothing to apply")
    logs.associate_kms_key(name, decision.kms_key_arn)


def key_policy_admits(document: str | None, *, region: str, group_arn: str) -> str | None:
    """Whether a key's policy lets CloudWatch Logs (``logs.<region>.amazonaws.com``) use it for ``group_arn``: None when it
    does, else why not. An ``ArnLike``/``ArnEquals``/``StringLike``/``StringEquals`` condition on
    ``kms:EncryptionContext:aws:logs:arn`` must match the group; one statement must allow every action CloudWatch Logs needs."""
    if document is None:
        return "the key does not exist, or its policy cannot be read"
    try:
        statements = json.loads(document).get("Statement", [])
    except (ValueError, AttributeError):
        return "the key's policy is not JSON"
    statements = [statements] if isinstance(statements, Mapping) else statements
    service = f"logs.{region}.amazonaws.com"
    for statement in statements:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, Mapping) else []
        everyone = principal == "*" or (isinstance(principal, Mapping) and principal.get("AWS") in ("*", ["*"]))
        if not everyone and service not in ([services] if isinstance(services, str) else services):
            continue  # a statement for every principal admits CloudWatch Logs too (AWS accepted such a key: recorded/ls-create-log-group-with-kms-key.json)
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not all(any(fnmatchcase(needed.lower(), a.lower()) for a in actions) for needed in _LOGS_KEY_ACTIONS):
            continue
        if _context_matches(statement.get("Condition"), group_arn):
            return None
    return f"no statement of the key's policy allows {service} {', '.join(_LOGS_KEY_ACTIONS)} for {group_arn}"


def _context_matches(condition: Any, group_arn: str) -> bool:
    if not condition:
        return True
    for operator, pairs in condition.items():
        for key, values in (pairs or {}).items():
            if key.lower() != _LOGS_CONTEXT_KEY:
                continue
            values = [values] if isinstance(values, str) else values
            arns = (group_arn, f"{group_arn}:*")
            if operator in ("ArnLike", "StringLike") and not any(fnmatchcase(a, v) for v in values for a in arns):
                return False
            if operator in ("ArnEquals", "StringEquals") and not set(values) & set(arns):
                return False
    return True


CONTROL = Control(
    doc=('a symmetric key\'s ARN, or `"create"`',
         '`AssociateKmsKey` where no key is; see below'),
    exact=True,
    name=NAME, unmanaged=Reason.KMS_KEY_UNMANAGED.value, applies=(Action.ASSOCIATE_KMS_KEY.value,), decide=decide, apply=apply, handler=('EncryptLogGroup', 'govern', "associates the governance rules' KMS keys with the log groups they match (each key's policy read first)"), aspect="encryption", summary="the group's KMS key",
    reads=("logs:DescribeLogGroups",), writes=("logs:AssociateKmsKey",), other_actions=("kms:GetKeyPolicy",),
    adapter=(("LogsGateway", "describe_log_group"), ("LogsGateway", "associate_kms_key"), ("KmsGateway", "key_policy")),
    undone_by=(Undo("AssociateKmsKey", ("logGroupName", "resourceIdentifier"), source="*assumed* (localaws/FIDELITY.md E7)"),
               Undo("DisassociateKmsKey", ("logGroupName", "resourceIdentifier"), source="*assumed* (localaws/FIDELITY.md E7)")),
    metrics=(names.KMS_KEY_ASSOCIATED,),
    conflicts=(
        ConflictFix("kms-key-unusable", "a rule's KMS key: its policy does not let `logs.REGION.amazonaws.com` use it for the group "
                    "(the log line says which part), or AWS refused it (missing, disabled)",
                    "fix the key's policy as [rules.md](rules.md#a-kms-key-per-group) shows; the next event or reconcile associates it"),
        ConflictFix("other-kms-key", "the group is encrypted with another key; the governor replaces no key unless the rule says `exact`",
                    "agree which key the group keeps; add `\"exact\": [\"kmsKeyArn\"]` to the rule if it is the rule's"),
    ),
)

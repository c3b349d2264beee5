"""A KMS key per group (AssociateKmsKey): what is ingested after the association is encrypted with it. It plugs in whole
(#28): its rule key, fact, actions, reasons, metric, calls and the key-policy check before a write are here; the stack
alone creates the keys of rules that say "create" (a CloudFormation resource) and the CLI reads their ARNs back."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import Enum
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from shared.config import ConfigError

from ..decision import Action, Decision, LogGroupFacts
from .base import ConflictFix, Control, Undo, WriteAction

if TYPE_CHECKING:
    from ..rules import Resolved

NAME = KMS_KEY = "kmsKeyArn"
#: ``"kmsKeyArn": "create"``: the stack creates the rule's key (rotated, its policy admitting this region's CloudWatch Logs for
#: the account's log groups) and hands its ARN to the functions; the CLI reads it from the stack (--stack-name).
CREATE_KEY = "create"
#: A KMS key's ARN, as AssociateKmsKey's kmsKeyId takes it (the model: "The Amazon Resource Name (ARN) of the KMS key").
_KMS_KEY_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov|aws-iso(?:-[a-z])?):kms:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:key/[A-Za-z0-9-]{1,128}$")
KMS_KEY_ASSOCIATED = "KmsKeyAssociated"
#: How AssociateKmsKey words a key whose policy does not let CloudWatch Logs use it (AccessDeniedException; the recorded answer
#: quoted in ministryofjustice/modernisation-platform#7870, hashicorp/terraform-provider-aws#29282, aws/aws-cdk#28304:
#: localaws/FIDELITY.md G14). Another AccessDeniedException (the role may not call AssociateKmsKey) propagates.
_KEY_REFUSED = re.compile(r"KMS key does not exist or is not allowed to be used", re.IGNORECASE)


class KmsKeyAction(WriteAction):
    #: AssociateKmsKey with the rule's key (never DisassociateKmsKey: the governor takes no key off).
    ASSOCIATE = "associate-kms-key"


class KmsKeyReason(str, Enum):
    UNMANAGED = "kms-key-unmanaged"
    MISSING = "kms-key-missing"
    ASSOCIATED = "kms-key-associated"
    #: The group is encrypted with another key: the governor replaces none unless the rule says exact.
    OTHER = "other-kms-key"
    #: The key's policy does not let CloudWatch Logs use it for the group, or AWS refused it: fix the key.
    UNUSABLE = "kms-key-unusable"


def parse(raw: Any, where: str) -> str | None:
    if raw is not None and raw != CREATE_KEY and (not isinstance(raw, str) or not _KMS_KEY_ARN.match(raw)):
        raise ConfigError(f"{where}: expected a symmetric KMS key's ARN (arn:<partition>:kms:<region>:<account>:key/<id>; not an alias), "
                          f"or \"{CREATE_KEY}\" for a key the stack creates; got {raw!r}")
    return raw


def unresolved(value: str) -> str | None:
    """Why the functions cannot use the value yet: "create" names the key a deployed stack created."""
    return (f"{NAME}: \"create\" names the key the deployed stack created; pass --stack-name (its RuleKeyArns output fills it in), "
            "or the key's ARN") if value == CREATE_KEY else None


def look_up(logs: Any, info: Any) -> str | None:
    """``kmsKeyId`` as DescribeLogGroups gave it (None: CloudWatch Logs' own encryption): no call of its own."""
    return info.described.get("kmsKeyId") or None


def before_write(keys: Any, info: Any, decision: Decision) -> str | None:
    """The key's policy, read now (it can change at any time): why it cannot encrypt the group, or None."""
    key_arn = decision.payload or ""
    why = key_policy_admits(keys.key_policy(key_arn), region=info.arn.split(":")[3], group_arn=info.arn)
    return None if why is None else f"{key_arn}: {why}; fix the key's policy (docs/rules.md), the group is left as it is"

#: What CloudWatch Logs does with a group's key (the KMS page for CloudWatch Logs lists these in its key policy example).
_LOGS_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey", "kms:DescribeKey")
_LOGS_CONTEXT_KEY = "kms:encryptioncontext:aws:logs:arn"


def decide(resolved: Resolved, facts: LogGroupFacts, *, partition: str = "aws") -> Decision:
    """A KMS key per group (#21), as the group's kmsKeyArn rule says. Only what is ingested after the association is
    encrypted with the key (AssociateKmsKey, the model). The governor takes no key off and replaces none."""
    source = resolved.rule.source if resolved.rule else "no rule"
    current = facts.fact(NAME)
    if current == resolved.value:
        return Decision(Action.LEAVE, KmsKeyReason.ASSOCIATED, f"encrypted with {resolved.value}, as {source} requires")
    if current and resolved.rule is not None and KMS_KEY in resolved.rule.exact:
        return Decision(KmsKeyAction.ASSOCIATE, KmsKeyReason.OTHER, f"encrypted with {current}; {source} (exact) replaces it "
                        f"with {resolved.value} for what is ingested from now on", payload=resolved.value)
    if current:
        return Decision(Action.CONFLICT, KmsKeyReason.OTHER, f"encrypted with {current}; {source} wants {resolved.value}, "
                                                               "and the governor replaces no key")
    return Decision(KmsKeyAction.ASSOCIATE, KmsKeyReason.MISSING, f"{source} requires {resolved.value}: associate it (what is "
                                                                      "ingested from now on is encrypted with it)", payload=resolved.value)


def apply(logs: Any, name: str, decision: Decision) -> None:
    """AssociateKmsKey; a key CloudWatch Logs refuses (InvalidParameterException: "the KMS key does not exist or ... is
    disabled", the model) is the configuration's to fix."""
    if not decision.payload:  # a writing decision always carries what to write; anything else is a bug in decide
        raise AssertionError(f"decision {decision} has nothing to apply")
    logs.group_call("AssociateKmsKey", "associate_kms_key", name, refusals=("InvalidParameterException", _KEY_REFUSED), logGroupName=name,
                    kmsKeyId=decision.payload)


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
    name=NAME, unmanaged=KmsKeyReason.UNMANAGED.value, applies=(KmsKeyAction.ASSOCIATE.value,), decide=decide, apply=apply,
    handler=("EncryptLogGroup", "govern", "associates the governance rules' KMS keys with the log groups they match (each key's policy read first)"),
    aspect="encryption", summary="the group's KMS key",
    reads=("logs:DescribeLogGroups",), writes=("logs:AssociateKmsKey",), other_actions=("kms:GetKeyPolicy",),
    adapter=(("LogsGateway", "describe_log_group"), ("KmsGateway", "key_policy")),
    undone_by=(Undo("AssociateKmsKey", ("logGroupName", "resourceIdentifier"), source="*assumed* (localaws/FIDELITY.md E7)"),
               Undo("DisassociateKmsKey", ("logGroupName", "resourceIdentifier"), source="*assumed* (localaws/FIDELITY.md E7)")),
    metrics=(KMS_KEY_ASSOCIATED,),
    parse=parse, rule_schema={"type": "string", "pattern": "^(create|arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+)$"},
    to_json=lambda value: value, look_up=look_up, unresolved=unresolved, before_write=before_write,
    own_actions=KmsKeyAction, own_reasons=KmsKeyReason, metric_by_action={KmsKeyAction.ASSOCIATE.value: KMS_KEY_ASSOCIATED},
    refused=KmsKeyReason.UNUSABLE.value, calls=("DescribeLogGroups", "ListTagsForResource", "AssociateKmsKey"),
    # Not in AWS-FACTS' table: *assumed* like the other per-group writes (apiQuotasTps sets the account's).
    quotas_tps={"AssociateKmsKey": 5.0}, example=CREATE_KEY,
    conflicts=(
        ConflictFix(KmsKeyReason.UNUSABLE.value, "a rule's KMS key: its policy does not let `logs.REGION.amazonaws.com` use it for the group "
                    "(the log line says which part), or AWS refused it (missing, disabled)",
                    "fix the key's policy as [rules.md](rules.md#a-kms-key-per-group) shows; the next event or reconcile associates it"),
        ConflictFix(KmsKeyReason.OTHER.value, "the group is encrypted with another key; the governor replaces no key unless the rule says `exact`",
                    "agree which key the group keeps; add `\"exact\": [\"kmsKeyArn\"]` to the rule if it is the rule's"),
    ),
)

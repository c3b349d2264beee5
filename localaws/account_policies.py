"""Account-level policies of CloudWatch Logs, which moto 5.2.5 does not implement: subscription
filter and retention policies, as botocore 1.44.8's model of PutAccountPolicy documents them.

What is modelled (and checked, so a test against it fails where AWS would refuse):
- SUBSCRIPTION_FILTER_POLICY: one per account and region (a second name is a LimitExceededException);
  selection only ``LogGroupName NOT IN [...]``, at most 25 KB of UTF-8.
- RETENTION_POLICY: up to 20; ``retentionInDays`` from 30 up (or ``NEVER_EXPIRE``); ``enforcementMode``
  ``RETROACTIVE`` or ``NEW_ONLY`` (only groups created after the policy); selection by prefix only
  (written ``LogGroupNamePrefix IN [...]``, the grammar the model shows for prefix selections; none:
  every group); overlapping allowed, the longest retention wins (never expire longest; on a tie the
  policy created first is the one named); in effect 24 hours after it is created or updated, the
  previous document in effect meanwhile; ``dryRun`` counts the groups in the policy's scope whose
  effective retention would grow, shrink or stay, as if the change were in effect, and lists up to 20
  of them by stored bytes (changed or not).
- DescribeLogGroups names the policy in effect (``retentionPolicyName``) and shows its retention.

Delivery through the subscription filter policy is modelled by ``LocalAccount.deliveries`` (the
payloads AWS would send, with ``policyLevel: ACCOUNT_LEVEL_POLICY``). FIELD_INDEX_POLICY's checks are
``localaws.index_policies``. Not modelled: other policy types, ``scope``, cross-account ``accountIdentifiers``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .index_policies import FIELD_INDEX, account_policy_problem, selected_prefixes

SUBSCRIPTION = "SUBSCRIPTION_FILTER_POLICY"
RETENTION = "RETENTION_POLICY"
#: One per account and region (AWS-FACTS); its document is a group's data protection policy's (G15).
DATA_PROTECTION = "DATA_PROTECTION_POLICY"
#: "Valid values are 30, 60, 90, ... and 3653", or the string NEVER_EXPIRE.
RETENTION_DAYS = (30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
NEVER_EXPIRE = "NEVER_EXPIRE"
MAX_RETENTION_POLICIES = 20
SELECTION_LIMIT_BYTES = 25 * 1024
IN_EFFECT_AFTER_S = 24 * 3600
_NOT_IN = re.compile(r"^LogGroupName NOT IN (\[.*\])$", re.DOTALL)
_PREFIX_IN = re.compile(r"^LogGroupNamePrefix IN (\[.*\])$", re.DOTALL)


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class _Policy:
    name: str
    policy_type: str
    document: str
    selection: str | None
    created_s: float
    updated_s: float
    #: The document in effect until ``updated_s + IN_EFFECT_AFTER_S`` (None: none before this one).
    previous: str | None = None
    #: Prefixes the retention policy selects (None: every group).
    prefixes: tuple[str, ...] | None = None
    previous_prefixes: tuple[str, ...] | None = None

    def as_api(self, account_id: str) -> dict[str, Any]:
        answer = {"policyName": self.name, "policyDocument": self.document, "lastUpdatedTime": int(self.updated_s * 1000),
                  "policyType": self.policy_type, "scope": "ALL", "accountId": account_id}
        if self.selection is not None:
            answer["selectionCriteria"] = self.selection
        return answer


@dataclass
class AccountPolicies:
    account_id: str
    #: Epoch seconds; tests and simulations move it to see a policy come into effect.
    clock: Callable[[], float] = time.time
    policies: dict[tuple[str, str], _Policy] = field(default_factory=dict)

    # --- the API ---------------------------------------------------------------------------------
    def put(self, request: dict[str, Any], groups: list[dict[str, Any]]) -> dict[str, Any]:
        name, policy_type = request.get("policyName", ""), request.get("policyType", "")
        document, selection = request.get("policyDocument", ""), request.get("selectionCriteria")
        if not name or name.startswith("aws/"):
            raise Refused("InvalidParameterException", "policyName must be given and cannot start with aws/")
        if policy_type == SUBSCRIPTION:
            self._check_subscription(name, document, selection)
            if request.get("dryRun"):
                raise Refused("InvalidParameterException", "dryRun is valid only for RETENTION_POLICY")
            return {"accountPolicy": self._store(name, policy_type, document, selection, None).as_api(self.account_id)}
        if policy_type == RETENTION:
            prefixes = self._check_retention(name, document, selection)
            if request.get("dryRun"):
                return {"dryRunResult": self._dry_run(groups, change=(name, document, prefixes))}
            return {"accountPolicy": self._store(name, policy_type, document, selection, prefixes).as_api(self.account_id)}
        if policy_type == DATA_PROTECTION:
            others = [n for (t, n) in self.policies if t == DATA_PROTECTION and n != name]
            if others:
                raise Refused("LimitExceededException", f"the account already has a data protection policy ({others[0]})")
            problem = data_protection_problem(document, existing={g["logGroupName"] for g in groups})
            if problem:
                raise Refused("InvalidParameterException", problem)
            return {"accountPolicy": self._store(name, policy_type, document, selection, None).as_api(self.account_id)}
        if policy_type == FIELD_INDEX:
            if request.get("dryRun"):
                raise Refused("InvalidParameterException", "dryRun is valid only for RETENTION_POLICY")
            others = {n: selected_prefixes(p.selection) for (t, n), p in self.policies.items() if t == FIELD_INDEX}
            problem = account_policy_problem(name, document, selection, others)
            if problem:
                raise Refused(*problem)
            return {"accountPolicy": self._store(name, policy_type, document, selection, None).as_api(self.account_id)}
        raise Refused("InvalidParameterException", f"policyType {policy_type!r} is not modelled here (only {SUBSCRIPTION}, {RETENTION}, "
                                                   f"{DATA_PROTECTION}, {FIELD_INDEX})")

    def describe(self, request: dict[str, Any]) -> dict[str, Any]:
        policy_type, names = request.get("policyType"), request.get("policyName")
        found = [p.as_api(self.account_id) for (t, n), p in sorted(self.policies.items())
                 if t == policy_type and (names is None or n == names)]
        return {"accountPolicies": found}

    def delete(self, request: dict[str, Any], groups: list[dict[str, Any]]) -> dict[str, Any]:
        key = (request.get("policyType", ""), request.get("policyName", ""))
        if key not in self.policies:
            raise Refused("ResourceNotFoundException", f"account policy {key[1]!r} of type {key[0]} does not exist")
        if request.get("dryRun"):
            return {"dryRunResult": self._dry_run(groups, change=(key[1], None, None))}
        del self.policies[key]
        return {}

    # --- what DescribeLogGroups shows -------------------------------------------------------------
    def effective_retention(self, group: str, created_s: float) -> tuple[str, int | None] | None:
        """(policy name, days or None for never expire) of the policy in effect for ``group``, or None."""
        return self._winner(group, created_s, self._in_effect(self.clock()))

    # --- checks ------------------------------------------------------------------------------------
    def _check_subscription(self, name: str, document: str, selection: str | None) -> None:
        others = [n for (t, n) in self.policies if t == SUBSCRIPTION and n != name]
        if others:
            raise Refused("LimitExceededException", f"an account can have one subscription filter policy; {others[0]!r} exists")
        body = _json_object(document)
        if "DestinationArn" not in body:
            raise Refused("InvalidParameterException", "a subscription filter policy needs DestinationArn")
        if selection is not None:
            if len(selection.encode()) > SELECTION_LIMIT_BYTES:
                raise Refused("InvalidParameterException", f"selectionCriteria is {len(selection.encode())} bytes; at most {SELECTION_LIMIT_BYTES}")
            match = _NOT_IN.match(selection)
            if not match or not _string_list(match[1]):
                raise Refused("InvalidParameterException", "the only supported selectionCriteria is LogGroupName NOT IN [...]")

    def _check_retention(self, name: str, document: str, selection: str | None) -> tuple[str, ...] | None:
        body = _json_object(document)
        days, mode = body.get("retentionInDays"), body.get("enforcementMode")
        if days != NEVER_EXPIRE and days not in RETENTION_DAYS:
            raise Refused("InvalidParameterException", f"retentionInDays {days!r}: account-level retention is at least 30 days "
                                                       f"({', '.join(map(str, RETENTION_DAYS))}) or {NEVER_EXPIRE}")
        if mode not in ("RETROACTIVE", "NEW_ONLY"):
            raise Refused("InvalidParameterException", f"enforcementMode {mode!r}: NEW_ONLY or RETROACTIVE")
        if (RETENTION, name) not in self.policies and sum(t == RETENTION for t, _ in self.policies) >= MAX_RETENTION_POLICIES:
            raise Refused("LimitExceededException", f"an account can have {MAX_RETENTION_POLICIES} retention policies")
        if selection is None:
            return None
        match = _PREFIX_IN.match(selection)
        prefixes = _string_list(match[1]) if match else None
        if not prefixes:
            raise Refused("InvalidParameterException", "retention policies select by LogGroupNamePrefix only")
        return tuple(prefixes)

    # --- state -------------------------------------------------------------------------------------
    def _store(self, name: str, policy_type: str, document: str, selection: str | None, prefixes: tuple[str, ...] | None) -> _Policy:
        now = self.clock()
        old = self.policies.get((policy_type, name))
        if old is None:
            policy = _Policy(name, policy_type, document, selection, now, now, prefixes=prefixes)
        else:
            in_effect = self._document_in_effect(old, now)
            policy = _Policy(name, policy_type, document, selection, old.created_s, now, previous=in_effect[0],
                             prefixes=prefixes, previous_prefixes=in_effect[1])
        self.policies[(policy_type, name)] = policy
        return policy

    def _document_in_effect(self, policy: _Policy, now: float) -> tuple[str | None, tuple[str, ...] | None]:
        if now >= policy.updated_s + IN_EFFECT_AFTER_S:
            return policy.document, policy.prefixes
        return policy.previous, policy.previous_prefixes

    def _in_effect(self, now: float) -> list[tuple[str, float, dict[str, Any], tuple[str, ...] | None]]:
        """(name, created, document, prefixes) of each retention policy as it is in effect at ``now``."""
        found = []
        for (policy_type, name), policy in self.policies.items():
            if policy_type == RETENTION:
                document, prefixes = self._document_in_effect(policy, now)
                if document is not None:
                    found.append((name, policy.created_s, json.loads(document), prefixes))
        return found

    @staticmethod
    def _winner(group: str, created_s: float, policies: list[tuple[str, float, dict[str, Any], tuple[str, ...] | None]]
                ) -> tuple[str, int | None] | None:
        applying = [(name, created, doc) for name, created, doc, prefixes in policies
                    if (prefixes is None or group.startswith(prefixes))
                    and (doc["enforcementMode"] == "RETROACTIVE" or created_s >= created)]
        if not applying:
            return None

        def weight(item: tuple[str, float, dict[str, Any]]) -> tuple[float, float]:
            days = item[2]["retentionInDays"]
            return (float("inf") if days == NEVER_EXPIRE else days, -item[1])  # longest; on a tie, the first created

        name, _, document = max(applying, key=weight)
        days = document["retentionInDays"]
        return name, None if days == NEVER_EXPIRE else days

    def _dry_run(self, groups: list[dict[str, Any]], *, change: tuple[str, str | None, tuple[str, ...] | None]) -> dict[str, Any]:
        """Effective retention of every group before and after ``change`` (name, new document or None
        to delete, prefixes), as if both were in effect now."""
        name, document, prefixes = change
        now = float("inf")  # every stored document as if in effect
        before = self._in_effect(now)
        after = [p for p in before if p[0] != name]
        existing = self.policies.get((RETENTION, name))
        if document is not None:
            after.append((name, existing.created_s if existing else self.clock(), json.loads(document), prefixes))
        # "The number of log groups in the scope of the policy that were analyzed" (DryRunResult.totalMatchedLogGroups,
        # botocore 1.44.8): the groups the policy selects. For an update or a deletion, the groups its stored
        # selection took count too, since their retention changes as well (*assumed*: the model says only "scope").
        scopes = [p for p in (*([prefixes] if document is not None else []), *([existing.prefixes] if existing else []))]
        counts = {"increased": 0, "decreased": 0, "unchanged": 0}
        analysed = []
        for group in groups:
            if group.get("logGroupClass") == "DELIVERY":
                continue  # "Log groups in the Delivery class are not included" (DryRunResult)
            if not any(scope is None or group["logGroupName"].startswith(scope) for scope in scopes):
                continue
            created_s = group.get("creationTime", 0) / 1000
            own = group.get("retentionInDays")
            current = (self._winner(group["logGroupName"], created_s, before) or (None, own))[1]
            proposed = (self._winner(group["logGroupName"], created_s, after) or (None, own))[1]
            longer = (proposed is None and current is not None) or (current is not None and proposed is not None and proposed > current)
            shorter = (current is None and proposed is not None) or (current is not None and proposed is not None and proposed < current)
            counts["increased" if longer else "decreased" if shorter else "unchanged"] += 1
            analysed.append({"logGroupName": group["logGroupName"], "currentRetention": _days_text(current),
                             "proposedRetention": _days_text(proposed), "storedBytes": group.get("storedBytes", 0)})
        # "Up to 20 log groups in the scope of the policy, sorted by stored bytes in descending order. This list
        # can include log groups whose effective retention period would not change." (DryRunResult.topLogGroupsImpacted)
        return {"totalMatchedLogGroups": sum(counts.values()), "increasedRetentionLogGroupCount": counts["increased"],
                "decreasedRetentionLogGroupCount": counts["decreased"], "unchangedRetentionLogGroupCount": counts["unchanged"],
                "failedAnalysisCount": 0, "topLogGroupsImpacted": sorted(analysed, key=lambda i: -i["storedBytes"])[:20]}


def _json_object(document: str) -> dict[str, Any]:
    try:
        body = json.loads(document)
    except ValueError:
        raise Refused("InvalidParameterException", "policyDocument is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused("InvalidParameterException", "policyDocument must be a JSON object")
    return body


def _string_list(text: str) -> list[str] | None:
    try:
        values = json.loads(text)
    except ValueError:
        return None
    return values if isinstance(values, list) and all(isinstance(v, str) and v for v in values) else None


def _days_text(days: int | None) -> str:
    return NEVER_EXPIRE if days is None else str(days)


def data_protection_problem(document: str, existing: Any = None) -> str | None:
    if len(document) > 30_720:
        return "the policy document can be up to 30,720 characters"
    try:
        statements = json.loads(document)["Statement"]
        audit, redact = statements
        audit_op, redact_op = audit["Operation"], redact["Operation"]
    except (ValueError, KeyError, TypeError):
        return "the policy must include two JSON blocks, each with a DataIdentifier array and an Operation"
    if not isinstance(audit_op.get("Audit", {}).get("FindingsDestination"), dict):
        return "the first block's Audit action must contain a FindingsDestination object"
    if redact_op.get("Deidentify", {}).get("MaskConfig") != {}:
        return "the second block's Deidentify action must contain an empty MaskConfig object"
    if audit.get("DataIdentifier") != redact.get("DataIdentifier") or not audit.get("DataIdentifier"):
        return "the contents of the two DataIdentifier arrays must match exactly"
    findings = audit_op["Audit"]["FindingsDestination"].get("CloudWatchLogs", {}).get("LogGroup")
    if findings and existing is not None and findings not in existing:
        return f"the audit findings destination {findings} must already exist"
    return None

"""Field index policies of CloudWatch Logs, which moto 5.2.5 does not implement (its logs backend has no
PutIndexPolicy, DescribeIndexPolicies or DeleteIndexPolicy), as botocore 1.44.8's model and the guide's
"Field index syntax and quotas" page document them (localaws/FIDELITY.md, rows I1-I9; in-process only).

What is modelled (and checked, so a test against it fails where AWS would refuse):
- PutIndexPolicy: a group-level policy for a Standard-class group named by name or ARN; the document JSON with
  ``Fields`` (names) and/or ``FieldsV2`` (name -> ``{"type": "FIELD_INDEX" | "FACET"}``), the names of the two
  apart, at least one field, at most 20 fields of at most 100 characters, at most 51,200 characters.
- DescribeIndexPolicies: exactly one group; its own policy (``source`` LOG_GROUP), else the account-level
  FIELD_INDEX_POLICY that selects it (``source`` ACCOUNT, with ``policyName``), else none.
- DeleteIndexPolicy: the group-level policy goes; DeleteLogGroup forgets it.
- PutAccountPolicy of FIELD_INDEX_POLICY (``account_policies`` calls the checks here): one all-groups policy or up
  to 20 selected by ``LogGroupNamePrefix``, their prefixes never overlapping.

Not modelled: ``DataSourceName AND DataSourceType`` selections (refused as not modelled here), what the indexes do
to queries (DescribeFieldIndexes), the default field indexes.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

FIELD_INDEX = "FIELD_INDEX_POLICY"
#: "As many as 20 fields can be included in the policy." / "Each field name can include as many as 100 characters."
#: (the model, PutIndexPolicy; the guide, "Field index syntax and quotas")
MAX_FIELDS = 20
MAX_FIELD_NAME = 100
#: The model: PutIndexPolicy's ``PolicyDocument`` max 51200; AccountPolicy.policyDocument "up to 30,720 characters".
GROUP_DOCUMENT_MAX = 51_200
ACCOUNT_DOCUMENT_MAX = 30_720
#: "as many as 20 account-level field index policies that are each scoped to a subset of log groups using
#: LogGroupNamePrefix" (the model, PutAccountPolicy).
MAX_PREFIX_POLICIES = 20
FIELD_TYPES = ("FIELD_INDEX", "FACET")
#: The prefix selection as a list (the grammar the model shows for prefix lists) or one prefix (as aws-cdk renders it).
_PREFIX_IN = re.compile(r"^LogGroupNamePrefix IN (\[.*\])$", re.DOTALL)
_PREFIX_IS = re.compile(r'^LogGroupNamePrefix = ("(?:[^"\\]|\\.)*")$', re.DOTALL)
_DATA_SOURCE = re.compile(r"\bDataSource(Name|Type)\b")

#: (code, message) of a refusal.
Problem = tuple[str, str]


def document_problem(document: str, limit: int = GROUP_DOCUMENT_MAX) -> str | None:
    """What is wrong with a field index policy document (I2), or None."""
    if len(document) > limit:
        return f"the policy document can be up to {limit} characters"
    try:
        body = json.loads(document)
    except ValueError:
        return "the policy document must be JSON"
    if not isinstance(body, dict):
        return "the policy document must be a JSON object"
    fields, typed = body.get("Fields", []), body.get("FieldsV2", {})
    if not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields):
        return "Fields must be an array of field names"
    if not isinstance(typed, dict) or not all(isinstance(v, dict) and v.get("type") in FIELD_TYPES for v in typed.values()):
        return f"FieldsV2 must map each field name to {{\"type\": {' or '.join(FIELD_TYPES)}}}"
    if set(fields) & set(typed):
        return f"Field names within Fields and FieldsV2 must be mutually exclusive: {sorted(set(fields) & set(typed))}"
    names = [*fields, *typed]
    if not names:
        return "The policy document must include at least one field index"
    if len(names) > MAX_FIELDS:
        return f"As many as {MAX_FIELDS} fields can be included in the policy (got {len(names)})"
    long = [n for n in names if len(n) > MAX_FIELD_NAME]
    if long:
        return f"Each field name can include as many as {MAX_FIELD_NAME} characters: {long[0][:20]}..."
    return None


def selected_prefixes(selection: str | None) -> tuple[str, ...] | None:
    """The prefixes a FIELD_INDEX_POLICY's selection names (None: every group); ValueError if it names none."""
    if selection is None:
        return None
    if (match := _PREFIX_IN.match(selection)) is not None:
        try:
            prefixes = json.loads(match[1])
        except ValueError:
            prefixes = None
    elif (match := _PREFIX_IS.match(selection)) is not None:
        prefixes = [json.loads(match[1])]
    else:
        prefixes = None
    if not isinstance(prefixes, list) or not prefixes or not all(isinstance(p, str) and p for p in prefixes):
        raise ValueError(selection)
    return tuple(prefixes)


def account_policy_problem(name: str, document: str, selection: str | None,
                           others: Mapping[str, tuple[str, ...] | None]) -> Problem | None:
    """PutAccountPolicy of FIELD_INDEX_POLICY (I7): ``others`` are the account's other field index policies, name ->
    prefixes (None: all groups). None when it may be stored."""
    problem = document_problem(document, ACCOUNT_DOCUMENT_MAX)
    if problem:
        return "InvalidParameterException", problem
    if selection is not None and _DATA_SOURCE.search(selection):
        return "InvalidParameterException", "DataSourceName/DataSourceType selections are not modelled by localaws"
    try:
        prefixes = selected_prefixes(selection)
    except ValueError:
        return "InvalidParameterException", "a field index policy selects log groups by LogGroupNamePrefix IN [...] only"
    others = {n: p for n, p in others.items() if n != name}
    everyone = [n for n, p in others.items() if p is None]
    if everyone or (prefixes is None and others):
        return "LimitExceededException", (f"an account-level field index policy that applies to all log groups excludes any other "
                                          f"({(everyone or sorted(others))[0]!r} exists)")
    if len(others) >= MAX_PREFIX_POLICIES:
        return "LimitExceededException", f"an account can have {MAX_PREFIX_POLICIES} field index policies selected by prefix"
    for other, theirs in sorted(others.items()):
        for mine in prefixes or ():
            clash = next((p for p in theirs or () if p.startswith(mine) or mine.startswith(p)), None)
            if clash is not None:
                return "InvalidParameterException", (f"the log group name prefix {mine!r} overlaps {clash!r} of the field index "
                                                     f"policy {other!r}")
    return None


def _group_name(identifier: str) -> str:
    return identifier.split(":log-group:", 1)[1] if identifier.startswith("arn:") and ":log-group:" in identifier else identifier


@dataclass
class IndexPolicies:
    """Group-level field index policies, by (account, region, group name): (document, last update in epoch ms)."""

    by_group: dict[tuple[str, str, str], tuple[str, int]] = field(default_factory=dict)
    clock: Callable[[], float] = time.time

    def call(self, operation: str, request: Mapping[str, Any], *, account: str, region: str, groups: Mapping[str, Any],
             classes: Mapping[str, str], account_policies: Any) -> tuple[Problem | None, dict[str, Any]]:
        """Answer one of Put/Describe/DeleteIndexPolicy: (refusal or None, answer). ``groups``: moto's groups of the region;
        ``classes``: each group's class; ``account_policies``: the region's ``AccountPolicies``."""
        if operation == "DescribeIndexPolicies":
            identifiers = request.get("logGroupIdentifiers") or []
            if len(identifiers) != 1:
                # I4: the model's DescribeIndexPoliciesLogGroupIdentifiers (min 1, max 1); botocore checks only the minimum.
                return ("InvalidParameterException", f"1 validation error detected: Value '{identifiers}' at 'logGroupIdentifiers' "
                                                     "failed to satisfy constraint: Member must have length less than or equal to 1"), {}
            identifier = identifiers[0]
        else:
            identifier = request.get("logGroupIdentifier", "")
        name = _group_name(identifier)
        if name not in groups:
            return ("ResourceNotFoundException", "The specified log group does not exist."), {}
        key, arn = (account, region, name), f"arn:aws:logs:{region}:{account}:log-group:{name}"
        if operation == "PutIndexPolicy":
            if classes.get(name, "STANDARD") != "STANDARD":
                return ("InvalidParameterException", "Only log groups in the Standard log class support field index policies"), {}
            document = request.get("policyDocument", "")
            problem = document_problem(document)
            if problem:
                return ("InvalidParameterException", problem), {}
            self.by_group[key] = (document, int(self.clock() * 1000))
            return None, {"indexPolicy": self._as_api(key, arn)}
        if operation == "DeleteIndexPolicy":
            if self.by_group.pop(key, None) is None:
                return ("ResourceNotFoundException", "The specified log group has no field index policy."), {}
            return None, {}
        if key in self.by_group:
            return None, {"indexPolicies": [self._as_api(key, arn)]}
        if classes.get(name, "STANDARD") != "STANDARD":
            return None, {"indexPolicies": []}
        found = self._account_policy_for(name, account_policies)
        return None, {"indexPolicies": [found | {"logGroupIdentifier": arn}] if found else []}

    def forget(self, account: str, region: str, name: str) -> None:
        """DeleteLogGroup: a group created again under the name has no policy (I6)."""
        self.by_group.pop((account, region, name), None)

    def _as_api(self, key: tuple[str, str, str], arn: str) -> dict[str, Any]:
        document, updated_ms = self.by_group[key]
        return {"logGroupIdentifier": arn, "lastUpdateTime": updated_ms, "policyDocument": document, "source": "LOG_GROUP"}

    @staticmethod
    def _account_policy_for(name: str, account_policies: Any) -> dict[str, Any] | None:
        """The account's FIELD_INDEX_POLICY selecting ``name`` (I5): prefixes never overlap and an all-groups policy stands
        alone (I7), so at most one does."""
        for (policy_type, policy_name), policy in sorted(account_policies.policies.items()):
            if policy_type != FIELD_INDEX:
                continue
            prefixes = selected_prefixes(policy.selection)
            if prefixes is None or name.startswith(prefixes):
                return {"policyName": policy_name, "lastUpdateTime": int(policy.updated_s * 1000), "policyDocument": policy.document,
                        "source": "ACCOUNT"}
        return None

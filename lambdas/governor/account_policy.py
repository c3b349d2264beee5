"""The account-level subscription filter policy's selection: the log groups that must not ship.

Pure logic (issue #9, subscriptionMode account-policy; not wired to a mode yet). An account-level
subscription filter policy covers every group of the account and region, existing and future; its
only selection is ``LogGroupName NOT IN [...]`` of exact names, at most 25 KB of UTF-8 (botocore
1.44's model of PutAccountPolicy). So the policy core's "must not ship" becomes a list of names:
the guard's exact names (even for groups that do not exist yet: the loop guard cannot wait for a
group to appear) and every existing group the policy excludes or guards by prefix, pattern or tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .policy import EXCLUSION_REASONS, Action, LogGroupFacts, Policy

#: "The selectionCriteria string can be up to 25KB in length ... determined by using its UTF-8 bytes."
SELECTION_LIMIT_BYTES = 25 * 1024
#: Past this share of the limit the governor alarms, while there is still room to act.
SELECTION_WARN_SHARE = 0.8


class SelectionTooLarge(ValueError):
    """The list does not fit: writing a truncated one would ship groups that must not ship."""

    def __init__(self, message: str, selection: Selection) -> None:
        super().__init__(message)
        #: The whole list, as it would have been written.
        self.selection = selection


@dataclass(frozen=True)
class Selection:
    names: tuple[str, ...]
    criteria: str

    @property
    def size_bytes(self) -> int:
        return len(self.criteria.encode())

    @property
    def near_limit(self) -> bool:
        return self.size_bytes >= SELECTION_LIMIT_BYTES * SELECTION_WARN_SHARE


def must_not_ship(policy: Policy, facts: LogGroupFacts) -> bool:
    """The policy core's answer, for one existing group: would it be left out of shipping?"""
    decision = policy.subscription(facts)
    return decision.action in (Action.SKIP, Action.REMOVE_FILTER) and decision.reason in EXCLUSION_REASONS


def selection(policy: Policy, excluded_groups: Iterable[str]) -> Selection:
    """``LogGroupName NOT IN [...]`` of the guard's exact names and ``excluded_groups``; refuses what does not fit."""
    names = tuple(sorted({*policy.guarded_names, *excluded_groups}))
    criteria = "LogGroupName NOT IN " + json.dumps(list(names), separators=(", ", ": "))
    chosen = Selection(names, criteria)
    if chosen.size_bytes > SELECTION_LIMIT_BYTES:
        raise SelectionTooLarge(
            f"the account-level subscription filter policy's selection would take {chosen.size_bytes:,} bytes for {len(names):,} "
            f"log groups, more than the {SELECTION_LIMIT_BYTES:,} AWS accepts; a shorter list would ship groups that must not ship, "
            f"so nothing was written. Exclude fewer groups (or rename them under fewer, shorter names), or use "
            f"subscriptionMode per-group",
            chosen,
        )
    return chosen

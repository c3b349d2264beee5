"""The controls the governor governs on a log group, one module each (#28), in the order rules list them. Everything that
names a control's IAM actions, the CloudTrail calls that undo it, its metrics or its conflicts reads them here."""

from __future__ import annotations

from collections.abc import Mapping

from . import data_protection, deletion_protection, field_indexes, kms_key, retention, shipping
from ..decision import Action, Reason
from .base import ConflictFix, Control, Grant, NativeForm, Undo

REGISTRY: tuple[Control, ...] = (retention.CONTROL, shipping.CONTROL, deletion_protection.CONTROL, kms_key.CONTROL, data_protection.CONTROL,
                                 field_indexes.CONTROL)
BY_NAME: Mapping[str, Control] = {c.name: c for c in REGISTRY}
BY_ASPECT: Mapping[str, Control] = {c.aspect: c for c in REGISTRY}
#: The controls that plug in whole: their rule keys, facts, actions and handlers go through the registry alone.
PLUGGED: tuple[Control, ...] = tuple(c for c in REGISTRY if c.plugged)
#: Every action a control's own enum adds (value -> member), beside the core's (governor.decision.Action).
OWN_ACTIONS: Mapping[str, object] = {a.value: a for c in REGISTRY if c.own_actions is not None for a in c.own_actions}  # type: ignore[attr-defined]

#: Every action value that writes, the core's and the controls' own (plan's and apply's summaries count them as changes).
WRITE_ACTIONS: frozenset[str] = frozenset({a.value for a in Action if a.writes} | {v for v, a in OWN_ACTIONS.items() if a.writes})  # type: ignore[attr-defined]
#: Every reason value a decision may give: the core's and the controls' own.
REASONS: frozenset[str] = frozenset({r.value for r in Reason} | {r.value for c in REGISTRY if c.own_reasons for r in c.own_reasons})  # type: ignore[attr-defined]

__all__ = ["REASONS", "WRITE_ACTIONS", "BY_ASPECT", "BY_NAME", "OWN_ACTIONS", "PLUGGED", "REGISTRY", "ConflictFix", "Control", "Grant", "NativeForm", "Undo"]

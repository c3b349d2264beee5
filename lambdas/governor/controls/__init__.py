"""The controls the governor governs on a log group, one module each (#28), in the order rules list them. Everything that
names a control's IAM actions, the CloudTrail calls that undo it, its metrics or its conflicts reads them here."""

from __future__ import annotations

from collections.abc import Mapping

from . import data_protection, deletion_protection, kms_key, retention, shipping
from .base import ConflictFix, Control, Undo

REGISTRY: tuple[Control, ...] = (retention.CONTROL, shipping.CONTROL, deletion_protection.CONTROL, kms_key.CONTROL, data_protection.CONTROL)
BY_NAME: Mapping[str, Control] = {c.name: c for c in REGISTRY}
BY_ASPECT: Mapping[str, Control] = {c.aspect: c for c in REGISTRY}

__all__ = ["BY_ASPECT", "BY_NAME", "REGISTRY", "ConflictFix", "Control", "Undo"]

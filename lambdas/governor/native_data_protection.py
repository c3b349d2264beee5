"""dataProtectionVia account-policy (#21): the account's one DATA_PROTECTION_POLICY, compiled from the dataProtection
rule that matches every group. Pure: the CLI writes what this answers (cli.native)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import PolicyConfig, Via
from .policy import data_protection_document
from .rules import DataProtectionControl

POLICY_TYPE = "DATA_PROTECTION_POLICY"
#: The governor's account-level data protection policy (an account holds one: AWS-FACTS).
POLICY_NAME = "log-group-governor-data-protection"


@dataclass(frozen=True)
class NativeDataProtection:
    identifiers: tuple[str, ...]
    document: str

    def request(self) -> dict[str, str]:
        """PutAccountPolicy's request (the pinned model: policyName, policyType, policyDocument, scope)."""
        return {"policyName": POLICY_NAME, "policyType": POLICY_TYPE, "policyDocument": self.document, "scope": "ALL"}


def compile_data_protection(config: PolicyConfig) -> NativeDataProtection | None:
    """The account policy the configuration asks for; None when no rule sets dataProtection (or the mode is per-group).
    parse_policy_config has refused a selecting rule and exclusions under this mode, so the first rule is every group's."""
    if config.data_protection_via is not Via.ACCOUNT_POLICY:
        return None
    control: DataProtectionControl | None = next((r.data_protection for r in config.rules if r.data_protection is not None), None)
    if control is None:
        return None
    partition = config.destination.partition if config.destination else "aws"
    return NativeDataProtection(control.identifiers, data_protection_document(list(control.identifiers), "every log group of the account",
                                                                              partition, audit_log_group=control.audit_log_group))

"""A realistic account: the mix of log groups a backfill meets."""

from __future__ import annotations

from dataclasses import dataclass

from .account import LocalAccount

FILTER_NAME = "log-group-governor"
EXCLUDED_PREFIX = "/aws/lambda/sandbox-"


@dataclass(frozen=True)
class Mix:
    #: name -> what the group is: compliant, plain, excluded, infrequent-access, full, shipper
    kinds: dict[str, str]

    def names(self, kind: str) -> list[str]:
        return [name for name, k in self.kinds.items() if k == kind]


def create_mix(account: LocalAccount, shipper_arn: str, total: int, *, retention_days: int = 30, functions: bool = False) -> Mix:
    """``total`` log groups: a third already compliant, one in twelve excluded by prefix, one in
    twelve Infrequent Access, one in twelve with both filter slots taken by other tools, the
    shipper's own group, and the rest new and plain. ``functions``: create the function of each
    /aws/lambda/<name> group but one in ten (those are orphaned, as in an account that deletes functions)."""
    vendor = account.create_function("vendor-apm-forwarder")
    shipper_group = f"/aws/lambda/{shipper_arn.rsplit(':', 1)[-1]}"
    kinds: dict[str, str] = {shipper_group: "shipper"}
    if not account.logs.describe_log_groups(logGroupNamePrefix=shipper_group, limit=1)["logGroups"]:
        account.create_log_group(shipper_group, retention_days=retention_days)
    for i in range(total - 1):
        slot = i % 12
        if slot < 4:
            name = account.create_log_group(f"/aws/lambda/svc-{i:07d}", retention_days=retention_days, filters=[(FILTER_NAME, shipper_arn)])
            kinds[name] = "compliant"
        elif slot == 4:
            kinds[account.create_log_group(f"{EXCLUDED_PREFIX}{i:07d}")] = "excluded"
        elif slot == 5:
            kinds[account.create_log_group(f"/archive/audit-{i:07d}", log_group_class="INFREQUENT_ACCESS")] = "infrequent-access"
        elif slot == 6:
            name = account.create_log_group(f"/ecs/batch-{i:07d}", filters=[("vendor-a", vendor), ("vendor-b", vendor)])
            kinds[name] = "full"
        else:
            kinds[account.create_log_group(f"/aws/lambda/new-{i:07d}", retention_days=7 if i % 2 else None)] = "plain"
    if functions:
        lambda_groups = sorted(n for n in kinds if n.startswith("/aws/lambda/") and kinds[n] in ("compliant", "plain"))
        for i, name in enumerate(lambda_groups):
            if i % 10:
                account.create_function(name.removeprefix("/aws/lambda/"))
    return Mix(kinds)

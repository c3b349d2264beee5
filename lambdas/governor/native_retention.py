"""The governor's retention configuration as native account-level retention policies, where they say
the same thing, and the reasons where they cannot (issue #9, part 2).

Native policies (botocore 1.44.8's model of PutAccountPolicy): at most 20, each selecting by name
prefix or every group, 30 days at least (or never expire), the longest retention winning where they
overlap, and replacing a group's own retention even when that is longer. So they express "exactly
N days for these prefixes" and nothing that keeps, excludes or depends on anything but a prefix.
Never shorten silently: whatever they cannot express is refused with the reason, never approximated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .config import PolicyConfig, RetentionMode

#: The native minimum and the number of policies an account may hold.
MIN_NATIVE_DAYS = 30
MAX_NATIVE_POLICIES = 20
NAME_PREFIX = "log-group-governor-"


@dataclass(frozen=True)
class NativeRetentionPolicy:
    name: str
    #: None: every group of the account and region.
    prefix: str | None
    #: None: never expire.
    days: int | None

    def request(self, *, dry_run: bool = False) -> dict[str, object]:
        """The PutAccountPolicy request that writes it."""
        request: dict[str, object] = {
            "policyName": self.name, "policyType": "RETENTION_POLICY",
            "policyDocument": json.dumps({"retentionInDays": self.days if self.days is not None else "NEVER_EXPIRE",
                                          "enforcementMode": "RETROACTIVE"}),
        }
        if self.prefix is not None:
            request["selectionCriteria"] = "LogGroupNamePrefix IN " + json.dumps([self.prefix])
        if dry_run:
            request["dryRun"] = True
        return request


@dataclass(frozen=True)
class Compiled:
    policies: tuple[NativeRetentionPolicy, ...]
    #: Why the configuration cannot be expressed natively; empty when it can.
    refusals: tuple[str, ...]

    @property
    def expressible(self) -> bool:
        return not self.refusals


def compile_retention(config: PolicyConfig) -> Compiled:
    """Native policies equivalent to ``config``'s retention, or the reasons there are none."""
    refusals = []
    if config.retention_mode is not RetentionMode.EXACT:
        refusals.append(f"retentionMode {config.retention_mode.value!r}: a native policy replaces a group's own retention, even a "
                        f"longer one, so only \"exact\" can be expressed (it would shorten what {config.retention_mode.value!r} keeps)")
    if config.exclude_prefixes or config.exclude_patterns or config.exclude_tags:
        refusals.append("excludePrefixes / excludePatterns / excludeTags: native retention policies select by prefix only and "
                        "cannot leave a group out, so excluded groups would get the retention too")
    if config.orphan_retention_days is not None:
        refusals.append("orphanRetentionDays: whether a function still exists is not something a native policy can see")
    if config.never_expire_compliant:
        refusals.append("neverExpireCompliant: a native policy gives groups that never expire the retention too")

    targets: dict[str | None, int | None] = {}
    if config.default_retention_days is not None:
        targets[None] = config.default_retention_days
    for prefix, days in config.retention_overrides.items():
        if days is None:
            if config.default_retention_days is not None:
                refusals.append(f"retentionOverrides[{prefix!r}] is null (leave alone): under a default policy no prefix can be left alone")
            continue
        targets[prefix] = days
    for prefix, days in targets.items():
        where = "defaultRetentionDays" if prefix is None else f"retentionOverrides[{prefix!r}]"
        if days is not None and days < MIN_NATIVE_DAYS:
            refusals.append(f"{where} is {days} days: native retention policies keep at least {MIN_NATIVE_DAYS}")
        for broader, broader_days in targets.items():
            covers = broader is None or (prefix is not None and broader != prefix and prefix.startswith(broader))
            if prefix is not None and covers and broader_days is not None and days is not None and broader_days > days:
                what = "defaultRetentionDays" if broader is None else f"retentionOverrides[{broader!r}]"
                refusals.append(f"{where} is {days} days under {what} of {broader_days}: where native policies overlap the longest "
                                f"wins, so {prefix!r} would keep {broader_days}")
    if len(targets) > MAX_NATIVE_POLICIES:
        refusals.append(f"{len(targets)} retention targets: an account holds at most {MAX_NATIVE_POLICIES} native retention policies")
    if refusals:
        return Compiled((), tuple(refusals))
    return Compiled(tuple(NativeRetentionPolicy(_name(prefix), prefix, days) for prefix, days in sorted(targets.items(), key=_order)), ())


def _name(prefix: str | None) -> str:
    if prefix is None:
        return NAME_PREFIX + "default"
    # Policy names are the governor's own; a digest keeps them unique and free of a prefix's characters.
    return NAME_PREFIX + hashlib.sha256(prefix.encode()).hexdigest()[:12]


def _order(item: tuple[str | None, int | None]) -> tuple[int, str]:
    return (0, "") if item[0] is None else (1, item[0])

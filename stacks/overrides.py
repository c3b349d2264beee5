"""``rollout:overrides`` (#30 item 8): settings by organizational unit and by account, on top of the
organization's ``governor:`` keys, the most specific winning.

A member's configuration is the organization's ``governor:`` keys, then every override naming the OU it
was deployed through (``rollout:waves``), in the order listed, then every override naming its account, in
the order listed: an account's override beats its OU's, an OU's beats the organization's, and of two of the
same kind the later one wins, key by key. The rollout and the CLI (``rules``/``plan --member``) resolve it
with :func:`resolve`, so what ``plan`` shows for a member is what its StackSet deployed.

The rollout deploys each resolved configuration as a StackSet of its own (:func:`stack_set_groups`). StackSets
target OUs, and narrow them to accounts only by account filters (AWS::CloudFormation::StackSet
DeploymentTargets: DIFFERENCE leaves listed accounts out of an OU, INTERSECTION keeps only them). So:

- the OUs with the same OU overrides share a StackSet, which leaves out every account with an override
  (DIFFERENCE);
- the accounts with the same account overrides get, for each such OU group, a StackSet of those OUs kept to
  them (INTERSECTION): an account belongs to one OU, so exactly one of them deploys it.

An OU override names an OU listed in ``rollout:waves`` itself: StackSets deploy an OU to its child OUs' accounts
too and cannot leave a child OU out, so an override of a child OU under a listed parent would deploy two
governors there (listed OUs must not nest: docs/organization.md).

No CDK import here: the CLI reads it without synthesizing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.config import ConfigError, key_errors, nearest

from .settings import GOVERNOR

#: What the rollout sets for every member itself (per region, or for the organization's destination): an override
#: of them would point a member somewhere the archive does not expect.
ROLLOUT_OWNED = ("destinationArn", "destinationRoleArn", "senderRole", "fleetBusArn", "shippingPathLogGroups")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")
_OU = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
_ACCOUNT = re.compile(r"^\d{12}$")
#: AWS::CloudFormation::StackSet StackSetName: at most 128 characters, a letter first, then letters, digits, '-'.
STACK_SET_NAME_MAX = 128


@dataclass(frozen=True, eq=False)  # grouped by identity: the governor mapping is not hashable
class Override:
    name: str
    organizational_units: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    #: ``governor:`` keys (with their prefix) and values, as cdk.json writes them.
    governor: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        target = {"organizationalUnits": list(self.organizational_units)} if self.organizational_units else {"accounts": list(self.accounts)}
        return {"name": self.name, **target, "governor": dict(self.governor)}


def parse_overrides(raw: Any, *, waves: Sequence[Sequence[str]] = ()) -> tuple[Override, ...]:
    """``rollout:overrides``: a list of ``{"name", "organizationalUnits" | "accounts", "governor": {key: value}}``.
    Every mistake of every override at once, each naming the override."""
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"rollout:overrides: a list of overrides, each {{\"name\", \"organizationalUnits\" or \"accounts\", \"governor\"}}; "
                          f"got {raw!r}")
    listed = {ou for wave in waves for ou in wave}
    errors: list[str] = []
    found: list[Override] = []
    names: set[str] = set()
    for index, entry in enumerate(raw):
        where = f"rollout:overrides[{index}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: an object with name, organizationalUnits or accounts, and governor; got {entry!r}")
            continue
        name = entry.get("name")
        if isinstance(name, str) and _NAME.match(name):
            where = f"rollout:overrides[{index}] ({name})"
            if name in names:
                errors.append(f"{where}: name: another override has this name (it names the StackSets: each must be unique)")
            names.add(name)
        else:
            errors.append(f"{where}: name: 1 to 32 letters, digits and '-', a letter first (it names its StackSets); got {name!r}")
        unknown = sorted(set(entry) - {"name", "organizationalUnits", "accounts", "governor", "description"})
        for key in unknown:
            match = nearest(key, ("name", "organizationalUnits", "accounts", "governor", "description"))
            errors.append(f"{where}: unknown key {key!r}" + (f" (did you mean {match!r}?)" if match else
                          "; an override takes name, organizationalUnits or accounts, governor and description"))
        ous, accounts = entry.get("organizationalUnits"), entry.get("accounts")
        if (ous is None) == (accounts is None):
            errors.append(f"{where}: exactly one of organizationalUnits (OU ids listed in rollout:waves) or accounts (12-digit ids): an "
                          f"account's override wins over its OU's, so one override is one or the other")
        elif ous is not None:
            if not isinstance(ous, list) or not ous or any(not isinstance(o, str) or not _OU.match(o) for o in ous):
                errors.append(f"{where}: organizationalUnits: a list of OU ids (ou-xxxx-xxxxxxxx, or the root r-xxxx); got {ous!r}")
            else:
                unlisted = [o for o in ous if o not in listed]
                if unlisted:
                    errors.append(f"{where}: organizationalUnits: {', '.join(unlisted)} not in rollout:waves: an override names an OU "
                                  f"the rollout targets itself (StackSets cannot leave a child OU out of its parent's deployment)")
        elif not isinstance(accounts, list) or not accounts or any(not isinstance(a, str) or not _ACCOUNT.match(a) for a in accounts):
            errors.append(f"{where}: accounts: a list of 12-digit account ids (as strings); got {accounts!r}")
        governor = entry.get("governor")
        if not isinstance(governor, dict) or not governor:
            errors.append(f"{where}: governor: an object of governor: keys and their values, as cdk.json writes them; got {governor!r}")
            governor = {}
        full = {k if ":" in k else GOVERNOR.prefix + k: v for k, v in governor.items()}
        errors += [f"{where}: governor: {e}" for e in key_errors({k: None for k in full}, (GOVERNOR,))]
        # Only governor: keys: another prefix's (archive:, rollout:, a team's own) would move the account to a StackSet of
        # its own that deploys the organization's configuration.
        errors += [f"{where}: governor: {k} is not a governor: key (an override changes the members' governor: keys only)"
                   for k in full if not k.startswith(GOVERNOR.prefix) or k[len(GOVERNOR.prefix):] not in GOVERNOR.names
                   if not key_errors({k: None}, (GOVERNOR,))]
        owned = [k for k in full if k[len(GOVERNOR.prefix):] in ROLLOUT_OWNED]
        if owned:
            errors.append(f"{where}: governor: {', '.join(owned)} the rollout sets for every member (each region's archive, "
                          f"its sender role and fleet bus, the archive's loop guard): not overridable")
        found.append(Override(name=name if isinstance(name, str) else "", organizational_units=tuple(ous or ()) if isinstance(ous, list) else (),
                              accounts=tuple(accounts or ()) if isinstance(accounts, list) else (), governor=full))
    if errors:
        raise ConfigError(*errors)
    return tuple(found)


@dataclass(frozen=True)
class Resolved:
    """A member's ``governor:`` context and, for each key an override set, which overrides set it (last wins)."""

    context: Mapping[str, Any]
    applied: tuple[Override, ...]
    set_by: Mapping[str, tuple[str, Any]]  # key -> (override name, value)
    was: Mapping[str, Any]  # key -> the organization's value (absent: the default)


def applicable(overrides: Sequence[Override], *, ou: str | None, account: str | None) -> tuple[Override, ...]:
    """The overrides of a member deployed through ``ou``, in the order they apply: its OU's, then its account's."""
    return (*(o for o in overrides if ou is not None and ou in o.organizational_units),
            *(o for o in overrides if account is not None and account in o.accounts))


def resolve(context: Mapping[str, Any], overrides: Sequence[Override], *, ou: str | None, account: str | None) -> Resolved:
    """The context a member deployed through ``ou`` with ``account`` gets: the organization's, then the overrides."""
    return _apply(context, applicable(overrides, ou=ou, account=account))


def _apply(context: Mapping[str, Any], overrides: Sequence[Override]) -> Resolved:
    merged, set_by = dict(context), {}
    for override in overrides:
        for key, value in override.governor.items():
            merged[key] = value
            set_by[key] = (override.name, value)
    return Resolved(context=merged, applied=tuple(overrides), set_by=set_by,
                    was={k: context[k] for k in set_by if k in context})


@dataclass(frozen=True)
class StackSetGroup:
    """One StackSet of a region: the OUs it targets, the accounts it leaves out (DIFFERENCE) or keeps to
    (INTERSECTION), and the overrides its members get, in order."""

    label: str  # "" for the organization's own configuration (the StackSet named as before overrides existed)
    organizational_units: tuple[str, ...]
    overrides: tuple[Override, ...]
    exclude_accounts: tuple[str, ...] = ()
    intersection_accounts: tuple[str, ...] = ()

    @property
    def short_label(self) -> str:
        """The label in construct ids (and so in cdk.out's file names, which the file system bounds): long ones shortened
        with a digest of the whole."""
        if len(self.label) <= 48:
            return self.label
        return f"{self.label[:39]}-{hashlib.sha256(self.label.encode()).hexdigest()[:8]}"

    def stack_set_name(self, region: str) -> str:
        base = f"LogGroupGovernor-{region}"
        if not self.label:
            return base
        name = f"{base}-{self.label}"
        if len(name) <= STACK_SET_NAME_MAX:
            return name
        digest = hashlib.sha256(self.label.encode()).hexdigest()[:8]
        return f"{name[:STACK_SET_NAME_MAX - 9]}-{digest}"


def stack_set_groups(overrides: Sequence[Override], targeted: Sequence[str]) -> list[StackSetGroup]:
    """The StackSets a region needs for the targeted OUs: one per OU group, and one per OU group and account group."""
    by_ous: dict[tuple[Override, ...], list[str]] = {}
    for ou in dict.fromkeys(targeted):
        by_ous.setdefault(applicable(overrides, ou=ou, account=None), []).append(ou)
    accounts = list(dict.fromkeys(a for o in overrides for a in o.accounts))
    by_accounts: dict[tuple[Override, ...], list[str]] = {}
    for account in accounts:
        by_accounts.setdefault(applicable(overrides, ou=None, account=account), []).append(account)
    groups = []
    for ou_overrides, ous in by_ous.items():
        ou_label = "-".join(o.name for o in ou_overrides)
        groups.append(StackSetGroup(label=ou_label, organizational_units=tuple(ous), overrides=ou_overrides,
                                    exclude_accounts=tuple(sorted(accounts))))
        for account_overrides, members in by_accounts.items():
            groups.append(StackSetGroup(label="-".join(o.name for o in (*ou_overrides, *account_overrides)), organizational_units=tuple(ous),
                                        overrides=(*ou_overrides, *account_overrides), intersection_accounts=tuple(sorted(members))))
    return groups


def group_context(context: Mapping[str, Any], group: StackSetGroup) -> Mapping[str, Any]:
    return _apply(context, group.overrides).context

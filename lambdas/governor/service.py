"""Look a log group up, ask the policy, apply its answer: the steps every entry point shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from .aws import (ConfigurationRefused, KmsGateway, LogGroupGone, LogGroupInfo, LogsGateway, NoFreeFilterSlot, RetryLater, SenderRoleNotAssumable,
                  TaggingGateway)
from .controls import BY_NAME, REGISTRY
from .policy import Action, Decision, Policy, Reason, SubscriptionFilter


#: A check before a write: None lets it through, an Outcome replaces it.
Gate = Callable[["Outcome"], "Outcome | None"]
#: Whether a group's function is gone: True, False, or None (not a function's group, too young, unknown).
Orphans = Callable[[LogGroupInfo], "bool | None"]


#: What an event handler governs: the subscription, retention, each control a rule sets (one handler each, generated from
#: governor.controls: DELETION-PROTECTION's aspect "protection" is Aspect.PROTECTION), and removal (uninstalling: the
#: governor's own filter is removed).
Aspect = Enum("Aspect", [("SUBSCRIPTION", "subscription"), ("RETENTION", "retention"),
                         *((c.aspect.upper().replace("-", "_"), c.aspect) for c in REGISTRY if c.rule_only),
                         ("REMOVAL", "removal")], type=str)


#: Reported when the group disappears between the event and our look-up (not a policy decision).
LOG_GROUP_GONE = "log-group-gone"

#: The actions a control's own module applies (governor.controls), by action.
APPLIED_BY = {action: control for control in REGISTRY for action in control.applies}
#: The aspect each control a rule sets is governed as (its module says).
CONTROL_ASPECTS: Mapping[str, Aspect] = {c.name: Aspect(c.aspect) for c in REGISTRY}
CONTROL_OF: Mapping[Aspect, str] = {aspect: control for control, aspect in CONTROL_ASPECTS.items()}


@dataclass(frozen=True)
class Outcome:
    log_group: str
    aspect: Aspect
    action: Action
    reason: str
    detail: str
    #: True when the change was made; False for a dry run or when there was nothing to write.
    applied: bool = False
    #: The other principal of a drift fight.
    principal: str | None = None
    #: When the group was created, epoch ms, as the look-up found it (the replay's window is measured from it).
    created_ms: int | None = None
    #: The pattern of the filter the decision puts (subscribe, update-filter), as the group's shipping rule says.
    filter_pattern: str | None = None
    #: The group's stored bytes, as the look-up found them.
    stored_bytes: int = 0
    #: The retention the decision sets (set-retention), in days.
    retention_days: int | None = None
    #: A retention change's estimate of the stored bytes it expires (``governor.savings``); None for other decisions.
    estimated_expiring_bytes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        answer = {
            "logGroup": self.log_group,
            "aspect": self.aspect.value,
            "action": self.action.value,
            "reason": self.reason,
            "detail": self.detail,
            "applied": self.applied,
        }
        if self.principal:
            answer["principal"] = self.principal
        if self.estimated_expiring_bytes is not None:
            answer.update(storedBytes=self.stored_bytes, estimatedExpiringBytes=self.estimated_expiring_bytes)
        return answer


class LiveFacts:
    """A log group's facts, with tags and filters looked up only if the policy asks for them."""

    def __init__(self, info: LogGroupInfo, logs: LogsGateway, *, orphaned: Orphans = lambda info: None,
                 tag_index: Mapping[str, dict[str, str]] | None = None, tags: Mapping[str, str] | None = None) -> None:
        """``orphaned``: answers whether a /aws/lambda/<name> group's function is gone (a run's listing of
        functions, or a look-up); asked only when the policy needs it. ``tag_index``: the tags of every
        group carrying an exclusion key (a run's bulk look-up, minutes old by the time of a write: confirmed
        before it); a group absent from it carries none. ``tags``: the group's tags as an event batch's bulk
        look-up found them seconds ago (a tag change since is an event of its own, looked up alone)."""
        self.info = info
        self._tag_index = tag_index
        self._logs = logs
        self._orphaned = orphaned
        # Looked up once, on first use. Not functools.cached_property: before Python 3.12 it holds
        # one lock for every instance while a look-up runs, which serialises concurrent callers.
        self._tags: dict[str, str] | None = dict(tags) if tags is not None else None
        self._filters: tuple[SubscriptionFilter, ...] | None = None
        self._facts: dict[str, Any] = {}

    def fact(self, control: str) -> Any:
        """What a control that plugs in whole reads of the group (its module's look-up), on first use."""
        if control not in self._facts:
            self._facts[control] = BY_NAME[control].look_up(self._logs, self.info)  # type: ignore[misc]
        return self._facts[control]

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def log_group_class(self) -> str:
        return self.info.log_group_class

    @property
    def retention_days(self) -> int | None:
        return self.info.retention_days

    @property
    def tags(self) -> dict[str, str]:
        if self._tags is None:
            self._tags = self._tag_index.get(self.info.arn, {}) if self._tag_index is not None else self._logs.tags(self.info.arn)
        return self._tags

    def confirm_tags(self) -> bool:
        """Tags read from a run's bulk look-up can be minutes old: look them up for this group before a
        write (a group tagged to opt out since must not be subscribed again). True when they changed."""
        if self._tag_index is None or self._tags is None:
            return False
        self._tag_index = None
        fresh = self._logs.tags(self.info.arn)
        changed, self._tags = fresh != self._tags, fresh
        return changed

    @property
    def filters(self) -> tuple[SubscriptionFilter, ...]:
        if self._filters is None:
            self._filters = self._logs.subscription_filters(self.info.name)
        return self._filters

    @property
    def orphaned(self) -> bool | None:
        return self._orphaned(self.info)

    @property
    def retention_policy_name(self) -> str | None:
        return self.info.retention_policy_name




class LookedUp:
    """An event batch's groups, looked up at once (#20, item 4): DescribeLogGroups by ``logGroupIdentifiers``
    (50 a call) and, when the policy reads tags, GetResources by ``ResourceARNList`` (100 a call), instead of one
    DescribeLogGroups and one ListTagsForResource per group and handler. Each group's answer serves one record:
    a later record of the same group in the batch (it may follow a write of ours) looks the group up alone."""

    def __init__(self, infos: Mapping[str, LogGroupInfo], names: frozenset[str], tags: Mapping[str, dict[str, str]] | None) -> None:
        self._infos = dict(infos)
        #: Every name asked about: one absent from ``_infos`` names no group.
        self._unused = set(names)
        self._tags = tags

    def take(self, name: str) -> tuple[LogGroupInfo | None, dict[str, str] | None] | None:
        """(info or None for a group that does not exist, its tags or None when not looked up); None when the
        batch's look-up does not answer for ``name`` (not asked, or already used)."""
        if name not in self._unused:
            return None
        self._unused.discard(name)
        info = self._infos.get(name)
        tags = self._tags.get(info.arn, {}) if self._tags is not None and info is not None else None
        return info, tags


class Governor:
    def __init__(self, policy: Policy | Callable[[], Policy], logs: LogsGateway, *, tagging: TaggingGateway | None = None,
                 keys: KmsGateway | None = None) -> None:
        """``policy``: a fixed policy, or a callable answering the policy to decide with now (a guard
        whose look-ups expire: see ``runtime.GuardedPolicies``). ``tagging``: reads a batch's tags in bulk
        (None: each group's tags are looked up alone)."""
        self._policy = policy
        self.logs = logs
        self.tagging = tagging
        #: Reads a KMS key's policy before the governor associates it (made on first use: most runs associate none).
        self.keys = keys

    def look_up(self, names: Iterable[str]) -> LookedUp:
        """``names`` at once, with their tags when the policy reads them (and a tagging gateway was given)."""
        wanted = frozenset(names)
        infos = self.logs.describe_log_groups(wanted)
        tags = None
        if self.tagging is not None and self.policy.needs_tags:
            tags = self.tagging.tags_of(info.arn for info in infos.values())
        return LookedUp(infos, wanted, tags)

    @property
    def policy(self) -> Policy:
        return self._policy if isinstance(self._policy, Policy) else self._policy()

    def refresh_policy(self) -> Policy:
        """The policy, its guard looked up again now (a guarded policy's look-up), not at its next expiry."""
        refresh = getattr(self._policy, "refresh", None)
        return refresh() if callable(refresh) else self.policy

    def govern_by_name(self, name: str, aspect: Aspect, *, dry_run: bool = False, before_write: Gate | None = None,
                       orphaned: Orphans | None = None, looked_up: LookedUp | None = None,
                       known_tags: Mapping[str, str] | None = None) -> Outcome:
        """The event handlers' path: the event names a group; look it up rather than trust the event.
        ``looked_up``: the batch's bulk look-up, used when it answers for ``name``. ``known_tags``: tags the
        group surely carries (a CreateLogGroup's own), added to a bulk look-up's, which can lag behind a creation."""
        found = looked_up.take(name) if looked_up is not None else None
        info, tags = found if found is not None else (self.logs.describe_log_group(name), None)
        if info is None:
            return _gone(name, aspect)
        if tags is not None and known_tags:
            tags = {**tags, **known_tags}
        facts = LiveFacts(info, self.logs, orphaned=orphaned or (lambda info: None), tags=tags)
        return self.govern(facts, aspect, dry_run=dry_run, before_write=before_write)

    def govern(self, facts: LiveFacts, aspect: Aspect, *, dry_run: bool = False, before_write: Gate | None = None) -> Outcome:
        """``before_write``: asked with the planned outcome before anything is written; an Outcome it
        answers is returned instead (a contested group is left alone). The outcome names the group's life (its
        creation time), which state kept about it is judged by."""
        return replace(self._govern(facts, aspect, dry_run=dry_run, before_write=before_write), created_ms=facts.info.created_ms,
                       stored_bytes=facts.info.stored_bytes)

    def _govern(self, facts: LiveFacts, aspect: Aspect, *, dry_run: bool, before_write: Gate | None) -> Outcome:
        name = facts.name
        try:
            policy = self.policy
            decide = policy.removal if aspect is Aspect.REMOVAL else (lambda facts: policy.decide(facts, CONTROL_OF[aspect]))
            decision = decide(facts)
            if decision.action.writes and not dry_run and facts.confirm_tags():
                decision = decide(facts)
            if not decision.action.writes or dry_run:
                return _outcome(name, aspect, decision, applied=False)
            if before_write is not None:
                stopped = before_write(replace(_outcome(name, aspect, decision, applied=False), created_ms=facts.info.created_ms))
                if stopped is not None:
                    return stopped
            control = APPLIED_BY.get(decision.action.value)
            if control is not None and control.before_write is not None:  # a precondition read now (a KMS key's policy)
                if self.keys is None:
                    self.keys = KmsGateway()
                why = control.before_write(self.keys, facts.info, decision)
                if why is not None:
                    return Outcome(name, aspect, Action.CONFLICT, control.refused or "refused", why)
            self._apply(name, decision)
        except LogGroupGone:
            return _gone(name, aspect)
        except ConfigurationRefused as refused:
            control = BY_NAME[CONTROL_OF[aspect]] if aspect in CONTROL_OF else None
            if control is None or control.refused is None:
                raise  # only a control's write is refused as the configuration's: anything else is a bug to see
            return Outcome(name, aspect, Action.CONFLICT, control.refused, f"AWS refused {control.summary} the rule asks for ({refused}); fix the rule "
                                                                             "(docs/rules.md)")
        except SenderRoleNotAssumable as refused:
            # The event handlers ask again while the queue redelivers (a role a StackSet just created propagates within
            # minutes); this is the answer once it stops: fix the role.
            return Outcome(name, aspect, Action.CONFLICT, Reason.SENDER_ROLE_NOT_ASSUMABLE.value,
                           f"CloudWatch Logs cannot assume the sender role ({refused}); the role in governor:destinationRoleArn must "
                           "exist in this account and trust logs.amazonaws.com (docs/organization.md)")
        except NoFreeFilterSlot as refused:
            taken = self.logs.subscription_filters(name)
            if len(taken) < self.policy.config.max_filters_per_log_group:
                # "LimitExceededException: Resource limit exceeded." has come from PutSubscriptionFilter under load on a group
                # with a free slot (recorded: SumoLogic/sumologic-aws-lambda#109): not a full group, a call to make again.
                raise RetryLater(f"PutSubscriptionFilter on {name} answered LimitExceededException with {len(taken)} of "
                                 f"{self.policy.config.max_filters_per_log_group} filter slots taken: asked again later") from refused
            return Outcome(name, aspect, Action.CONFLICT, Reason.NO_FREE_SLOT.value,
                           f"a filter slot was taken between our look-up and our write ({', '.join(repr(f.name) for f in taken)}); "
                           "foreign filters are never replaced")
        return _outcome(name, aspect, decision, applied=True)

    def _apply(self, name: str, decision: Decision) -> None:
        if decision.action.value in APPLIED_BY:  # its control's module applies it (governor.controls)
            APPLIED_BY[decision.action.value].apply(self.logs, name, decision)
        else:  # a writing decision always carries what to write; anything else is a bug in the policy
            raise AssertionError(f"decision {decision} has nothing to apply")


def _outcome(name: str, aspect: Aspect, decision: Decision, *, applied: bool) -> Outcome:
    pattern = decision.subscription_filter.filter_pattern if decision.subscription_filter is not None else None
    return Outcome(name, aspect, decision.action, decision.reason.value, decision.detail, applied, filter_pattern=pattern,
                   retention_days=decision.retention_days if aspect is Aspect.RETENTION else None)


def _gone(name: str, aspect: Aspect) -> Outcome:
    return Outcome(name, aspect, Action.SKIP, LOG_GROUP_GONE, "the log group no longer exists")

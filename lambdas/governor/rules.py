"""Governance rules (#21): an ordered list, each a selector and the desired state of some controls.

Resolution is **per control, first match**: for each control, the first rule (in order) whose selector
matches the group and that sets the control decides it. Why not the first matching rule for everything: a
rule that adds deletion protection to production groups would then have to repeat their retention and
shipping, and every copy can drift from the others. Why not the most specific rule: specificity across
name prefixes, patterns, tags and classes has no order anyone can predict ("is a tag more specific than a
prefix?"); an ordered list is read top to bottom, and `log-group-governor plan --explain GROUP` names the
rule that decided each control.

Today's flat keys compile into rules placed after the configured ones: each ``retentionOverrides`` prefix
(longest first) sets retention, and a last rule that matches every group sets ``defaultRetentionDays`` with
``retentionMode``, shipping with ``filterPattern``. Scope comes first and is not a rule: ``excludePrefixes``,
``excludePatterns``, ``excludeTags`` and the shipping path's groups are left alone whatever a rule says.

Pure code: the facts are handed in (``tags`` read only when a rule that could decide needs them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .primitives import RULE_CLASSES as _CLASSES, RULE_RETENTION_MODES as _RETENTION_MODES, ConfigError, RetentionMode, retention_days
from .primitives import Destination, DestinationKind, parse_destination, refuse_backtracking
from .controls import REGISTRY as _REGISTRY
from shared.config import unknown_member_error

#: The controls a rule can set, as ``governor:rules`` spells them.
RETENTION, SHIPPING = "retention", "shipping"
#: The controls only rules set plug in whole (governor.controls): their keys and values are their modules' own.
PLUGGED: Mapping[str, Any] = {c.name: c for c in _REGISTRY if c.plugged}
CONTROLS = tuple(c.name for c in _REGISTRY)
#: Controls the pinned API model has per group that rules do not set yet: refused with why (none left).
NOT_YET: dict[str, str] = {}
_SELECTOR_KEYS = ("namePrefixes", "namePatterns", "tags", "logGroupClasses")
_RULE_KEYS = ("name", "match", *CONTROLS, "exact")
#: The controls a rule may enforce exactly ("exact"); the others say it in their own "mode", if they have one.
EXACT_CONTROLS = tuple(c.name for c in _REGISTRY if c.exact)


class GroupFacts(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def log_group_class(self) -> str: ...
    @property
    def tags(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Selector:
    """Every criterion given must hold; within one, any entry may. An empty selector matches every group."""

    name_prefixes: tuple[str, ...] = ()
    name_patterns: tuple[re.Pattern[str], ...] = ()
    #: Tag key -> value (``"*"``: any value); every pair must be on the group.
    tags: Mapping[str, str] = field(default_factory=dict)
    log_group_classes: tuple[str, ...] = ()

    @property
    def needs_tags(self) -> bool:
        return bool(self.tags)

    def why_not(self, facts: GroupFacts) -> str | None:
        """None when ``facts`` match; else the first criterion that fails. Names and classes are checked before tags
        (a look-up), so a rule that cannot match costs no tag read."""
        if self.name_prefixes and not facts.name.startswith(self.name_prefixes):
            return "no name prefix matches"
        if self.name_patterns and not any(p.search(facts.name) for p in self.name_patterns):
            return "no name pattern matches"
        if self.log_group_classes and facts.log_group_class not in self.log_group_classes:
            return f"class {facts.log_group_class} is not {'/'.join(self.log_group_classes)}"
        if self.tags:
            tags = facts.tags
            missing = [f"{k}={v}" for k, v in self.tags.items() if not (k in tags and (v == "*" or tags[k] == v))]
            if missing:
                return f"not tagged {', '.join(missing)}"
        return None

    def describe(self) -> str:
        parts = [*(f"name starts with {p!r}" for p in self.name_prefixes), *(f"name matches {p.pattern!r}" for p in self.name_patterns),
                 *(f"tagged {k}={v}" for k, v in self.tags.items()), *(f"class {c}" for c in self.log_group_classes)]
        return " and ".join(parts) if parts else "every group"

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.name_prefixes:
            found["namePrefixes"] = list(self.name_prefixes)
        if self.name_patterns:
            found["namePatterns"] = [p.pattern for p in self.name_patterns]
        if self.tags:
            found["tags"] = dict(self.tags)
        if self.log_group_classes:
            found["logGroupClasses"] = list(self.log_group_classes)
        return found


@dataclass(frozen=True)
class RetentionControl:
    days: int | None
    mode: RetentionMode | None = None  # None: the configuration's retentionMode


@dataclass(frozen=True)
class ShippingControl:
    enabled: bool
    filter_pattern: str = ""
    #: Where the rule's groups ship (None: governor:destinationArn). Kinesis, Firehose or a CloudWatch Logs destination:
    #: a Lambda destination's own log group needs the guard's look-up of its LoggingConfig, kept for governor:destinationArn.
    destination: Destination | None = None


@dataclass(frozen=True)
class Rule:
    #: Where it comes from: ``governor:rules[2]`` (its ``name`` too, when given) or the flat key it compiles.
    source: str
    match: Selector
    retention: RetentionControl | None = None
    shipping: ShippingControl | None = None
    #: The values of the controls that plug in whole (their modules parse them), by control name.
    plugged: Mapping[str, Any] = field(default_factory=dict)
    #: Controls this rule enforces exactly: it may weaken or replace what someone
    #: else set (without it, the governor never weakens a stricter setting).
    exact: frozenset[str] = frozenset()

    def sets(self, control: str) -> bool:
        return self.value(control) is not None

    def value(self, control: str) -> Any:
        if control in PLUGGED:
            return self.plugged.get(control)
        return {RETENTION: self.retention, SHIPPING: self.shipping}[control]

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.source, "match": self.match.to_json()}
        if self.retention is not None:
            found[RETENTION] = {"days": self.retention.days, **({"mode": self.retention.mode.value} if self.retention.mode else {})}
        if self.shipping is not None:
            destination = self.shipping.destination
            found[SHIPPING] = {"enabled": self.shipping.enabled, **({"filterPattern": self.shipping.filter_pattern}
                                                                    if self.shipping.filter_pattern else {}),
                               **({"destinationArn": destination.arn} if destination else {}),
                               **({"destinationRoleArn": destination.role_arn} if destination and destination.role_arn else {})}
        if self.exact:
            found["exact"] = sorted(self.exact)
        for name, value in self.plugged.items():
            found[name] = PLUGGED[name].to_json(value)
        return found


@dataclass(frozen=True)
class Resolved:
    """One control's answer for one group: its value and the rule that set it (None: no rule sets it)."""

    control: str
    value: Any
    rule: Rule | None
    #: Rules passed over, each with why it did not decide (for --explain).
    passed: tuple[tuple[str, str], ...] = ()

    def explain(self) -> str:
        if self.rule is None:
            return f"{self.control}: no rule sets it (left as it is)"
        return f"{self.control}: {self.rule.source} ({self.rule.match.describe()})"


def resolve(rules: Sequence[Rule], facts: GroupFacts, control: str, *, explain: bool = False) -> Resolved:
    """The first rule that sets ``control`` and matches ``facts``."""
    passed: list[tuple[str, str]] = []
    for rule in rules:
        if not rule.sets(control):
            continue
        why = rule.match.why_not(facts)
        if why is None:
            return Resolved(control, rule.value(control), rule, tuple(passed))
        if explain:
            passed.append((rule.source, why))
    return Resolved(control, None, None, tuple(passed))


def compile_flat(*, filter_pattern: str, default_retention_days: int | None, retention_overrides: Mapping[str, int | None],
                 retention_mode: RetentionMode) -> tuple[Rule, ...]:
    """Today's keys as rules (after the configured ones): each retention override, longest prefix first, then the rule
    every group matches. An override of null leaves retention alone: a rule that sets ``days`` None."""
    mode = retention_mode if retention_mode in (RetentionMode.MINIMUM, RetentionMode.EXACT) else None
    found = [Rule(f"retentionOverrides[{prefix!r}]", Selector(name_prefixes=(prefix,)), retention=RetentionControl(days, mode))
             for prefix, days in sorted(retention_overrides.items(), key=lambda item: len(item[0]), reverse=True)]
    found.append(Rule("defaultRetentionDays, filterPattern", Selector(), retention=RetentionControl(default_retention_days, mode),
                      shipping=ShippingControl(True, filter_pattern)))
    return tuple(found)


def parse_rules(raw: Any, *, max_pattern_length: int) -> tuple[Rule, ...]:
    """``governor:rules``; every error names the rule's index and the key."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"rules: expected a list of rules; got {type(raw).__name__}")
    rules, problems = [], []
    for index, item in enumerate(raw):  # every mistake of every rule, in one error
        try:
            rules.append(_rule(item, index, max_pattern_length))
        except ConfigError as error:
            problems.extend(error.messages)
    if problems:
        raise ConfigError(*problems)
    return tuple(rules)


def _collecting(problems: list[str], parse: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``parse(*args)``, its errors added to ``problems`` (None then)."""
    try:
        return parse(*args, **kwargs)
    except ConfigError as error:
        problems.extend(error.messages)
        return None


def _rule(item: Any, index: int, max_pattern_length: int) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected an object with match and the controls it sets; got {item!r}")
    problems: list[str] = []  # every mistake of the rule at once, not one per synth
    problems += [f"{where}.{key}: not governed yet ({NOT_YET[key]} per group is planned, issue #21); remove it" for key in item if key in NOT_YET]
    unknown = [key for key in item if key not in NOT_YET and key not in _RULE_KEYS]
    if unknown:
        problems += unknown_member_error(where, unknown, tuple(_RULE_KEYS), "a rule").messages
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        problems.append(f"{where}.name: expected a non-empty string; got {name!r}")
        name = None
    selector = _collecting(problems, _selector, item.get("match", {}), where)
    controls = dict(
        retention=_collecting(problems, _retention, item.get(RETENTION), f"{where}.{RETENTION}"),
        shipping=_collecting(problems, _shipping, item.get(SHIPPING), f"{where}.{SHIPPING}", max_pattern_length))
    plugged = {name: _collecting(problems, control.parse, item.get(name), f"{where}.{name}") for name, control in PLUGGED.items()}
    controls["plugged"] = {name: value for name, value in plugged.items() if value is not None}
    if problems:
        raise ConfigError(*problems)
    rule = Rule(f"{where} {name!r}" if name else where, selector, **controls)
    if not any(rule.sets(control) for control in CONTROLS):
        raise ConfigError(f"{where}: sets no control; give at least one of {', '.join(CONTROLS)}")
    exact = item.get("exact", [])
    if not isinstance(exact, list) or not all(c in EXACT_CONTROLS and rule.sets(c) for c in exact):
        raise ConfigError(f"{where}.exact: expected a list of the controls this rule sets among {', '.join(EXACT_CONTROLS)} ({', '.join(c.name for c in _REGISTRY if c.mode)} "
                          f"say it in their own \"mode\"); got {exact!r}")
    return replace(rule, exact=frozenset(exact))


def _selector(raw: Any, where: str) -> Selector:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}.match: expected an object with any of {', '.join(_SELECTOR_KEYS)}; got {raw!r}")
    unknown = [key for key in raw if key not in _SELECTOR_KEYS]
    if unknown:
        raise unknown_member_error(f"{where}.match", unknown, tuple(_SELECTOR_KEYS), "a selector")
    prefixes = _strings(raw.get("namePrefixes", []), f"{where}.match.namePrefixes")
    patterns = []
    for index, pattern in enumerate(_strings(raw.get("namePatterns", []), f"{where}.match.namePatterns")):
        try:
            patterns.append(re.compile(pattern))
        except re.error as error:
            raise ConfigError(f"{where}.match.namePatterns: {pattern!r} is not a valid regular expression ({error})") from None
        refuse_backtracking(pattern, f"{where}.match.namePatterns[{index}]")
    tags = raw.get("tags", {})
    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in tags.items()):
        raise ConfigError(f"{where}.match.tags: expected tag key -> value (\"*\" for any value); got {tags!r}")
    classes = _strings(raw.get("logGroupClasses", []), f"{where}.match.logGroupClasses")
    unknown = [c for c in classes if c not in _CLASSES]
    if unknown:
        raise ConfigError(f"{where}.match.logGroupClasses: {unknown[0]!r} is not a log group class; one of {', '.join(_CLASSES)}")
    return Selector(tuple(prefixes), tuple(patterns), dict(tags), tuple(classes))


def _strings(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(s, str) and s for s in raw):
        raise ConfigError(f"{where}: expected a list of non-empty strings; got {raw!r}")
    return raw


def _retention(raw: Any, where: str) -> RetentionControl | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or "days" not in raw or set(raw) - {"days", "mode"}:
        raise ConfigError(f"{where}: expected {{\"days\": <days or null>, \"mode\": \"minimum\" | \"exact\"}}; got {raw!r}")
    days = retention_days(raw["days"], f"{where}.days", allow_none=True)
    mode = raw.get("mode")
    if mode is not None and mode not in _RETENTION_MODES:
        raise ConfigError(f"{where}.mode: expected one of {', '.join(_RETENTION_MODES)}; got {mode!r}")
    return RetentionControl(days, RetentionMode(mode) if mode else None)


def _shipping(raw: Any, where: str, max_pattern_length: int) -> ShippingControl | None:
    if raw is None:
        return None
    if (not isinstance(raw, Mapping) or not isinstance(raw.get("enabled"), bool)
            or set(raw) - {"enabled", "filterPattern", "destinationArn", "destinationRoleArn"}):
        raise ConfigError(f"{where}: expected {{\"enabled\": true | false, \"filterPattern\": \"...\", \"destinationArn\": \"...\", "
                          f"\"destinationRoleArn\": \"...\"}}; got {raw!r}")
    pattern = raw.get("filterPattern", "")
    if not isinstance(pattern, str) or len(pattern) > max_pattern_length:
        raise ConfigError(f"{where}.filterPattern: expected a filter pattern of at most {max_pattern_length} characters; got {pattern!r}")
    if pattern and not raw["enabled"]:
        raise ConfigError(f"{where}.filterPattern: a rule that turns shipping off ships nothing; remove filterPattern or set enabled true")
    destination = None
    if raw.get("destinationArn") or raw.get("destinationRoleArn"):
        if not raw["enabled"]:
            raise ConfigError(f"{where}.destinationArn: a rule that turns shipping off ships nowhere; remove it or set enabled true")
        destination = parse_destination(raw.get("destinationArn"), raw.get("destinationRoleArn"), key=f"{where}.destinationArn",
                                        role_key=f"{where}.destinationRoleArn")
        if destination.kind is DestinationKind.LAMBDA:
            raise ConfigError(f"{where}.destinationArn: a Lambda function per rule is not offered (the loop guard looks up "
                              "governor:destinationArn's own log group only); use a Kinesis, Firehose or CloudWatch Logs destination, "
                              "or make the function governor:destinationArn")
    return ShippingControl(raw["enabled"], pattern, destination)


def uses(rules: Iterable[Rule], control: str) -> bool:
    """Whether any rule sets ``control`` (the stack grants a control's actions only then)."""
    return any(rule.sets(control) for rule in rules)

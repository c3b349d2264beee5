"""What every configuration parser shares: the error type, the JSON-or-string decoding of values,
and the context prefix."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Prefix of every context key the governor reads from cdk.json.
CONTEXT_PREFIX = "governor:"
SERVICE_NAME = "log-group-governor"
METRICS_NAMESPACE = "LogGroupGovernor"


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key and the valid values. Several
    messages (every mistake of one rule, say) make one error: ``messages`` lists them, ``str()`` joins them."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages: tuple[str, ...] = messages or ("",)


#: Where every key is described (a message names the nearest key, never lists them all).
KEYS_DOC = "docs/configuration.md"
#: Context keys of the CDK itself and of its CLI (feature flags, lookups, metadata switches): never the project's.
_CDK_KEYS = ("@aws-cdk", "aws:cdk:", "cdk-", "acknowledged-issue-numbers", "availability-zones:", "hosted-zone:", "ami:",
             "vpc-provider:", "security-group:", "ssm:", "load-balancer", "key-provider:", "plugin:", "cli-")


def decode(raw: Mapping[str, Any], key: str, default: Any, expected: type | tuple[type, ...]) -> Any:
    """Read ``key`` from ``raw``; a string where another JSON type is expected is decoded as JSON (``-c`` overrides)."""
    value = raw.get(key, default)
    if isinstance(value, str) and str not in _as_tuple(expected):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(f"{key}: {value!r} is not valid JSON; expected {_describe(expected)}") from None
    if value is None and type(None) in _as_tuple(expected):
        return None
    # bool is an int in Python; a retention of True is a mistake, not one day.
    if isinstance(value, bool) and bool not in _as_tuple(expected):
        raise ConfigError(f"{key}: expected {_describe(expected)}; got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{key}: expected {_describe(expected)}; got {value!r}")
    return value


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _describe(expected: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", bool: "true or false", list: "a list", dict: "an object", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in _as_tuple(expected))


def strip_context_prefix(context: Mapping[str, Any], known_keys: tuple[str, ...]) -> dict[str, Any]:
    """The ``governor:*`` entries of a CDK context, without the prefix; an unknown ``governor:`` key is a typo."""
    found = {key[len(CONTEXT_PREFIX):]: value for key, value in context.items() if key.startswith(CONTEXT_PREFIX)}
    unknown = sorted(set(found) - set(known_keys))
    if unknown:
        raise unknown_keys_error(CONTEXT_PREFIX, unknown, known_keys)
    return found


@dataclass(frozen=True)
class Key:
    """One configuration key: what the parser reads (type, default) and what the docs say of it.
    docs/configuration.md and the JSON Schema of cdk.json are generated from these (``make docs``)."""

    name: str
    types: type | tuple[type, ...]
    default: Any
    help: str
    #: A valid value other than the default, for the docs (tests parse it).
    example: Any = None
    #: JSON Schema keywords beyond the type (enum, minimum, maximum, pattern, items...).
    schema: Mapping[str, Any] = field(default_factory=dict)
    #: The app refuses to synthesize without it.
    required: bool = False

    def read(self, raw: Mapping[str, Any]) -> Any:
        return decode(raw, self.name, self.default, self.types)

    def json_types(self) -> list[str]:
        names = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object", type(None): "null"}
        found = [names[t] for t in _as_tuple(self.types)]
        return list(dict.fromkeys("number" if t == "integer" and "number" in found else t for t in found))


class Keys(Mapping[str, Key]):
    """The keys of one app's context prefix (``governor:``, ``archive:``, ``rollout:``) or of a nested object."""

    def __init__(self, prefix: str, title: str, *keys: Key) -> None:
        self.prefix, self.title = prefix, title
        self._keys = {k.name: k for k in keys}

    def __getitem__(self, name: str) -> Key:
        return self._keys[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def read(self, raw: Mapping[str, Any], name: str) -> Any:
        return self._keys[name].read(raw)


def nearest(name: str, candidates: tuple[str, ...]) -> str | None:
    """The candidate ``name`` most likely misspells (case and one or two letters), if any."""
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.8)
    return lowered[found[0]] if found else None


def suspicious_keys(context: Mapping[str, Any], apps: tuple[Keys, ...]) -> list[str]:
    """The context keys :func:`key_errors` refuses (kept for callers of the name from before it refused them)."""
    return key_errors(context, apps)


def unknown_keys_error(prefix: str, unknown: list[str], known: tuple[str, ...]) -> ConfigError:
    """An unknown key of a prefix is a typo: name the nearest valid key of each (every key: docs/configuration.md)."""
    guesses = [f"{prefix}{k}{f' (did you mean {prefix}{m}?)' if (m := nearest(k, known)) else ''}" for k in unknown]
    return ConfigError(f"unknown context key(s) {', '.join(guesses)}; every key: {KEYS_DOC}")


def unknown_member_error(where: str, unknown: list[str], known: tuple[str, ...], what: str) -> ConfigError:
    """An unknown key of an object (``shipLogs``, a rule, a rule's match): the nearest valid key of each."""
    guesses = [f"{k!r}{f' (did you mean {m!r}?)' if (m := nearest(k, known)) else ''}" for k in unknown]
    return ConfigError(f"{where}: unknown key(s) {', '.join(guesses)}; {what} takes {', '.join(known)}")


def key_errors(context: Mapping[str, Any], registries: tuple[Keys, ...]) -> list[str]:
    """The one rule for context keys, for every app and tool: a key under one of the project's prefixes
    (``registries``: governor:, archive:, rollout:) that is not one of its keys, a key under a look-alike prefix
    (``govenor:``, ``Governor:``), and a key of ours without its prefix are errors, each naming the nearest key.
    Keys of other prefixes (the CDK's feature flags, a team's own) are not ours. One message per bad key."""
    prefixes = {k.prefix: k for k in registries}
    errors = []
    for key in context:
        if key.startswith(_CDK_KEYS):
            continue
        prefix, sep, name = key.rpartition(":")
        prefix += sep
        if prefix in prefixes:
            if name not in prefixes[prefix]:
                match = nearest(name, prefixes[prefix].names)
                errors.append(f"unknown context key {key}: " + (f"did you mean {prefix}{match}?" if match else
                              f"{prefix} has no such key (every key: {KEYS_DOC})"))
            continue
        if prefix:
            owner = nearest(prefix, tuple(prefixes))
            if owner is None:
                continue  # another tool's prefix
            match = nearest(name, prefixes[owner].names)
            errors.append(f"unknown context key {key}: its prefix {prefix!r} is not one of the project's ("
                          f"{', '.join(prefixes)}), so nothing would read it; did you mean " + (f"{owner}{match}?" if match else
                          f"the prefix {owner}? (it has no key {name!r}; every key: {KEYS_DOC})"))
            continue
        for keys in registries:
            match = nearest(name, keys.names)
            if match:
                errors.append(f"unknown context key {key}: it has no prefix, so nothing would read it; did you mean {keys.prefix}{match}?")
                break
    return errors


def override_key(key: str, keys: Keys, registries: tuple[Keys, ...] = ()) -> str:
    """The context key a tool's ``-c KEY=VALUE`` sets when the tool reads ``keys`` (the CLI: governor:): KEY with its
    prefix, or ``keys``' prefix added when it has none. Refused (ConfigError naming the nearest key) by the rule of
    :func:`key_errors`: an unknown key of a project prefix, a look-alike prefix, or a key of another prefix than ``keys``'."""
    full = key if ":" in key else keys.prefix + key
    errors = key_errors({full: None}, (keys, *(r for r in registries if r.prefix != keys.prefix)))
    if errors:
        raise ConfigError(*errors)
    if not full.startswith(keys.prefix):
        raise ConfigError(f"-c {key}: this tool reads {keys.prefix} keys only (every key: {KEYS_DOC})")
    return full


def every_error(parse: Callable[[dict[str, Any]], Any], context: Mapping[str, Any], max_errors: int = 50,
                registries: tuple[Keys, ...] = ()) -> list[str]:
    """Every error of a configuration, not only the first, each once: parse, set aside the keys the error names,
    parse again. Empty when ``parse`` accepts it. An error between keys is reported once its keys are valid alone.
    A key set aside falls back to its default, or, when ``registries`` say it is required, to its (valid) example,
    so its absence is not reported as a second error."""
    required = {keys.prefix + k.name: k.example for keys in registries for k in keys.values() if k.required}
    remaining, errors = dict(context), []
    for _ in range(max_errors):
        try:
            parse(remaining)
            return errors
        except ConfigError as error:
            messages = [m for m in error.messages if m not in errors]
            errors.extend(messages)
            named = list(dict.fromkeys(k for m in messages for k in _named_keys(m, {**required, **remaining})
                                       if k in remaining or k in required and k not in remaining and m.startswith(k)
                                       if not (k in required and remaining.get(k) == required[k])))
            if not named:
                return errors
            for key in named:
                if key in required:
                    remaining[key] = required[key]
                else:
                    remaining.pop(key)
    return errors


def _named_keys(message: str, context: Mapping[str, Any]) -> list[str]:
    """The context keys an error message is about: those named before its first ': ' (``a / b: ...``,
    ``archive:shards: ...``, ``retentionOverrides['x']: ...``, ``shipLogs.sink: ...``), or listed as unknown."""
    if message.startswith(("unknown context key(s) ", "unknown context key ")):
        listed = re.sub(r"^unknown context key(\(s\))? ", "", message).split("; every key")[0].split(": ")[0]
        listed = re.sub(r"\([^)]*\)", "", listed)  # not the keys it suggests
        return [k for k in context if k in re.findall(r"[\w:@/.-]+", listed)]
    subject = message.split(": ", 1)[0]
    found = []
    for part in subject.split(" / "):
        named = re.match(r"\s*(?:(\w+):)?(\w+)", part)
        if not named:
            continue
        prefix, name = named.groups()
        # A name without its prefix is a governor: key (the policy's and deployment's messages name them so).
        found += [k for k in context if k == f"{prefix}:{name}" or (prefix is None and k.rpartition(":")[2] == name
                                                                    and k.rpartition(":")[0] in ("", "governor"))]
    return list(dict.fromkeys(found))

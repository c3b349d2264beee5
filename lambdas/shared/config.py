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
    """A configuration value is missing or invalid; the message names the key and the valid values."""


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
    """Context keys that look like one of ``apps``' keys but are not read (a missing or misspelled prefix):
    each with the key it most likely means. ``cdk synth`` would otherwise take the defaults silently."""
    prefixes = {k.prefix: k for k in apps}
    warnings = []
    for key in context:
        prefix, sep, name = key.rpartition(":")
        prefix = prefix + sep
        if prefix in prefixes or key.startswith(("@aws-cdk", "aws:cdk:", "cdk-")):
            continue
        owner = prefixes.get(nearest(prefix, tuple(prefixes)) or "") if prefix else None
        for keys in ([owner] if owner else apps):
            match = nearest(name, keys.names)
            if match:
                reason = "has no prefix" if not prefix else f"has the prefix {prefix!r}"
                warnings.append(f"context key {key!r} {reason}, so it is ignored: did you mean {keys.prefix}{match}?")
                break
    return warnings


def unknown_keys_error(prefix: str, unknown: list[str], known: tuple[str, ...]) -> ConfigError:
    """An unknown key of a prefix is a typo: name the nearest valid key of each."""
    guesses = [f"{prefix}{k}{f' (did you mean {prefix}{m}?)' if (m := nearest(k, known)) else ''}" for k in unknown]
    return ConfigError(f"unknown context key(s) {', '.join(guesses)}; valid keys: {', '.join(prefix + k for k in known)}")


def every_error(parse: Callable[[dict[str, Any]], Any], context: Mapping[str, Any], max_errors: int = 50) -> list[str]:
    """Every error of a configuration, not only the first: parse, set aside the key the error names, parse
    again. Empty when ``parse`` accepts it. An error between keys is reported once its keys are valid alone."""
    remaining, errors = dict(context), []
    for _ in range(max_errors):
        try:
            parse(remaining)
            return errors
        except ConfigError as error:
            message = str(error)
            errors.append(message)
            named = _named_keys(message, remaining)
            if not named:
                return errors
            for key in named:
                remaining.pop(key)
    return errors


def _named_keys(message: str, context: Mapping[str, Any]) -> list[str]:
    """The context keys an error message is about: those named before its first ': ' (``a / b: ...``,
    ``archive:shards: ...``, ``retentionOverrides['x']: ...``, ``shipLogs.sink: ...``), or listed as unknown."""
    if message.startswith("unknown context key(s) "):
        listed = message.removeprefix("unknown context key(s) ").split("; valid keys")[0]
        return [k for k in context if k in re.findall(r"[\w:@/.-]+", listed)]
    head = message.split(": ", 2)
    subject = head[0] if not (len(head) > 2 and head[0] in ("archive", "rollout", "governor")) else f"{head[0]}:{head[1]}"
    names = {re.split(r"[\[.]", part.strip())[0].split(":")[-1] for part in subject.split(" / ")}
    return [k for k in context if k.rpartition(":")[2] in names]

"""What every configuration parser shares: the error type, the JSON-or-string decoding of values,
and the context prefix."""

from __future__ import annotations

import json
from collections.abc import Mapping
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
        raise ConfigError(
            f"unknown context key(s) {', '.join(CONTEXT_PREFIX + k for k in unknown)}; "
            f"valid keys: {', '.join(CONTEXT_PREFIX + k for k in known_keys)}"
        )
    return found

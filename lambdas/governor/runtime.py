"""The functions' environment, read once per container into a validated model."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .aws import LambdaGateway
from .config import ENV_CONFIG, ENV_PROTECTED_LOG_GROUPS, ConfigError, DestinationKind, PolicyConfig, parse_policy_config
from .policy import Policy


@dataclass(frozen=True)
class Settings:
    config: PolicyConfig
    #: Log groups of the shipping path known at deploy time (e.g. the governor's own shipper).
    protected_log_groups: tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        raw = environ.get(ENV_CONFIG)
        if not raw:
            raise ConfigError(f"{ENV_CONFIG} is not set: set it to the policy configuration as JSON (the stack does this on deploy)")
        try:
            config = parse_policy_config(json.loads(raw))
        except json.JSONDecodeError as error:
            raise ConfigError(f"{ENV_CONFIG} is not valid JSON ({error})") from None
        except ConfigError as error:
            raise ConfigError(f"{ENV_CONFIG}: {error}") from None
        protected = json.loads(environ.get(ENV_PROTECTED_LOG_GROUPS) or "[]")
        if not isinstance(protected, list) or not all(isinstance(n, str) and n for n in protected):
            raise ConfigError(f"{ENV_PROTECTED_LOG_GROUPS}: expected a JSON list of log group names; got {protected!r}")
        return cls(config=config, protected_log_groups=tuple(protected))


def guarded_policy(settings: Settings, lambdas: LambdaGateway | None = None) -> Policy:
    """The policy with the guard's full list of names, including a Lambda destination's custom log group.

    Looked up rather than configured, since a function's ``LoggingConfig.LogGroup`` can change after
    deploy. A failed look-up fails the caller: subscribing without knowing the loop is worse than retrying.
    """
    protected = list(settings.protected_log_groups)
    destination = settings.config.destination
    if destination.kind is DestinationKind.LAMBDA:
        custom = (lambdas or LambdaGateway()).function_log_group(destination.arn)
        if custom:
            protected.append(custom)
    return Policy(settings.config, protected_log_groups=protected)

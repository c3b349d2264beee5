"""The functions' environment, read once per container into a validated model."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .aws import LambdaGateway
from .config import (
    ENV_CONFIG,
    ENV_EVENT_CONCURRENCY,
    ENV_OWN_PRINCIPALS,
    ENV_PROTECTED_LOG_GROUPS,
    ENV_STATE_TABLE,
    ConfigError,
    DestinationKind,
    PolicyConfig,
    parse_policy_config,
)
from .pacing import DEFAULT_EVENT_CONCURRENCY
from .policy import Policy


@dataclass(frozen=True)
class Settings:
    config: PolicyConfig
    #: Log groups of the shipping path known at deploy time (e.g. the governor's own shipper).
    protected_log_groups: tuple[str, ...] = ()
    #: How many containers of each event handler may run at once (their pacing divides by it).
    event_concurrency: int = DEFAULT_EVENT_CONCURRENCY
    #: The DynamoDB table of drift fights and conflicts (None: the CLI, with no table).
    state_table: str | None = None
    #: The governor's own roles: their calls are not drift.
    own_principals: tuple[str, ...] = ()

    def require_state_table(self) -> str:
        if not self.state_table:
            raise ConfigError(f"{ENV_STATE_TABLE} is not set: set it to the governor's state table (the stack does this)")
        return self.state_table

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
        concurrency = environ.get(ENV_EVENT_CONCURRENCY) or str(DEFAULT_EVENT_CONCURRENCY)
        if not concurrency.isdigit() or int(concurrency) < 1:
            raise ConfigError(f"{ENV_EVENT_CONCURRENCY}: expected a whole number of at least 1 (the queue consumer's maximum concurrency); got {concurrency!r}")
        own = json.loads(environ.get(ENV_OWN_PRINCIPALS) or "[]")
        if not isinstance(own, list) or not all(isinstance(n, str) and n for n in own):
            raise ConfigError(f"{ENV_OWN_PRINCIPALS}: expected a JSON list of the governor's role ARNs; got {own!r}")
        return cls(config=config, protected_log_groups=tuple(protected), event_concurrency=int(concurrency),
                   state_table=environ.get(ENV_STATE_TABLE) or None, own_principals=tuple(own))


#: How long the backfill and the CLI trust their look-up of the destination's ``LoggingConfig``. Short, because the
#: log group can be changed at any time and a stale guard subscribes the shipper to itself; long enough that a
#: run of pages costs one GetFunctionConfiguration every few seconds. The subscribe handler trusts none: it reads
#: it afresh for every batch (#26: a warm container's look-up subscribed the destination's new group).
GUARD_LOOKUP_TTL_S = 10.0


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


class GuardedPolicies:
    """The current guarded policy, rebuilt once its look-up is ``ttl_s`` old, or when its caller says so.

    Kept for a container's life, this object holds only what cannot change while the container lives
    (the environment's settings, a client); the destination's ``LoggingConfig`` can, so it is looked up
    again after ``ttl_s`` (the backfill, the CLI). ``ttl_s`` None: never on its own; its caller ``refresh``es it
    (the subscribe handler, once per batch). Call it to get the policy to decide with now.
    """

    def __init__(self, settings: Settings, lambdas: LambdaGateway | None = None, *,
                 clock: Callable[[], float] = time.monotonic, ttl_s: float | None = GUARD_LOOKUP_TTL_S) -> None:
        self.settings = settings
        self._lambdas = lambdas
        self._clock = clock
        self._ttl_s = ttl_s
        self._policy: Policy | None = None
        self._looked_up_at = 0.0
        #: Why the last ``refresh`` failed: answered again, without asking again, until the next one.
        self._failed: Exception | None = None

    def refresh(self) -> Policy:
        """Look the destination up now (its configuration may just have changed). A look-up that fails is not made again
        until the next refresh: every caller until then gets its error (subscribing without the guard would loop)."""
        self._policy, self._failed = None, None
        try:
            return self()
        except Exception as error:
            self._failed = error
            raise

    def __call__(self) -> Policy:
        destination = self.settings.config.destination
        if self._policy is not None and destination.kind is not DestinationKind.LAMBDA:
            return self._policy  # nothing to look up: the names are all configured
        if self._failed is not None:
            raise self._failed
        now = self._clock()
        if self._policy is None or (self._ttl_s is not None and now - self._looked_up_at >= self._ttl_s):
            self._lambdas = self._lambdas or LambdaGateway()
            self._policy = guarded_policy(self.settings, self._lambdas)
            self._looked_up_at = now
        return self._policy

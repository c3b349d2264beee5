"""boto3 client settings every function uses: standard retries within a budget that fits the
functions' timeouts."""

from __future__ import annotations

from botocore.config import Config

#: Standard mode retries throttles with exponential backoff and jitter. Four attempts wait at most
#: 1 + 2 + 4 s; with the timeouts below one call cannot take longer than ``retry_budget_s()``
#: (51 s), which every function's timeout holds twice. Pacing, not retries, is what keeps the
#: governor under the quotas.
DEFAULT_RETRY_ATTEMPTS = 4
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 8
#: botocore's cap on one backoff pause (standard mode).
MAX_BACKOFF_S = 20


def client_config(max_attempts: int = DEFAULT_RETRY_ATTEMPTS) -> Config:
    return Config(retries={"mode": "standard", "max_attempts": max_attempts}, connect_timeout=CONNECT_TIMEOUT_S,
                  read_timeout=READ_TIMEOUT_S, user_agent_extra="log-group-governor")


def retry_budget_s(config: Config | None = None) -> float:
    """The longest one API call can take with ``config``: every attempt timing out on connect and
    read, and every pause at its longest (standard mode: min(2**i, 20) s before retry i+1)."""
    config = config or client_config()
    attempts = config.retries["max_attempts"]
    pauses = sum(min(2 ** i, MAX_BACKOFF_S) for i in range(attempts - 1))
    return attempts * (config.connect_timeout + config.read_timeout) + pauses

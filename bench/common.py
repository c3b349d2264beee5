"""What the benchmarks share: the governor built as the functions build it, and a sink that keeps counts."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lambdas"))

from governor.config import parse_policy_config  # noqa: E402
from governor.policy import Policy  # noqa: E402
from governor.service import Outcome  # noqa: E402

from localaws.mix import EXCLUDED_PREFIX  # noqa: E402


def bench_policy(destination_arn: str, **overrides: Any) -> Policy:
    raw = {"destinationArn": destination_arn, "excludePrefixes": [EXCLUDED_PREFIX],
           "excludeTags": {"log-group-governor:opt-out": "true"}, **overrides}
    return Policy(parse_policy_config(raw))


class CountingSink:
    """Keeps what a run decided, as the S3 store would write it."""

    def __init__(self) -> None:
        self.decisions: Counter[tuple[str, str]] = Counter()

    def write_page(self, run_id: str, page_number: int, outcomes: list[Outcome], position: int) -> int:
        self.decisions.update((o.log_group, o.aspect.value) for o in outcomes)
        return position + 1

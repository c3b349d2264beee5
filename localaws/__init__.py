"""A local, moto-backed AWS account for the tests, the demo and the benchmarks (never shipped to Lambda)."""

import sys
from pathlib import Path

# The policy core and handlers are packages under lambdas/ (governor, ship_logs, shared): the local account runs them,
# so `python -m localaws.<module>` works from the repository without the caller setting a path (as the CLI does).
_LAMBDAS = str(Path(__file__).resolve().parent.parent / "lambdas")
if _LAMBDAS not in sys.path:
    sys.path.insert(0, _LAMBDAS)

"""The benches' cost rows (#29, item 4): what Lambda bills for what a bench counted, at stacks/cost.py's prices.

Lambda bills each request and each GB-second: an invocation's billed duration (its duration rounded up to 1 ms) times
its configured memory. The benches count the invocations and each one's duration (simulated time in the burst and the
backfill, whose invocations spend it on API calls and the pacer's waits, all billed; measured CPU time for ship-logs),
and take each function's memory from the constant its stack passes (read from the stack's source, so the bench starts no
Node): a row says which of its figures are measured, simulated or assumed.
"""

from __future__ import annotations

import ast
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stacks.cost import PRICES

STACKS = Path(__file__).resolve().parent.parent / "stacks"
#: The Datadog Forwarder's CloudFormation template at its defaults (Forwarder 4.4.0): MemorySize 1024, Architectures
#: arm64, python3.12 (DataDog/datadog-serverless-functions, aws/logs_monitoring/template.yaml, commit 00719eae).
DATADOG_FORWARDER_MEMORY_MIB = 1024
DATADOG_FORWARDER_ARCHITECTURE = "arm64"
DATADOG_FORWARDER_SOURCE = ("https://github.com/DataDog/datadog-serverless-functions/blob/"
                            "00719eae0cda1e22cc3cf279b1a05747871f4e1b/aws/logs_monitoring/template.yaml")


def billed_ms(seconds: float) -> int:
    """One invocation's billed duration: its duration rounded up to the millisecond (at least 1 ms)."""
    return max(1, math.ceil(round(seconds * 1000, 6)))


def _constant(module: str, name: str) -> Any:
    tree = ast.parse((STACKS / f"{module}.py").read_text())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            return ast.literal_eval(node.value) if not isinstance(node.value, ast.Attribute) else node.value.attr
    raise LookupError(f"stacks/{module}.py sets no {name}")


def _default_memory_mib() -> int:
    """GovernorFunction's memory_size_mib default (stacks/functions.py)."""
    tree = ast.parse((STACKS / "functions.py").read_text())
    [init] = [n for c in tree.body if isinstance(c, ast.ClassDef) and c.name == "GovernorFunction"
              for n in c.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    arguments = init.args.kwonlyargs
    [default] = [d for a, d in zip(arguments, init.args.kw_defaults) if a.arg == "memory_size_mib"]
    return ast.literal_eval(default)


def function_memory_mib() -> dict[str, int]:
    """Each function's memory as its stack configures it: the event handlers take GovernorFunction's default (the
    governor stack passes them none), the backfill and ship-logs their stacks' constants. All arm64."""
    if "memory_size_mib" in (STACKS / "governor_stack.py").read_text():
        raise AssertionError("stacks/governor_stack.py now sets an event handler's memory: read it here")
    if _constant("functions", "ARCHITECTURE") != "ARM_64":
        raise AssertionError("the functions are no longer arm64: PRICES['lambda_gb_second'] is arm64's")
    return {"event_handler": _default_memory_mib(), "backfill": _constant("backfill", "BACKFILL_MEMORY_MIB"),
            "ship_logs": _constant("ship_logs", "SHIP_LOGS_MEMORY_MIB")}


def usd(value: float) -> str:
    """Dollars to the cent from $0.10, else to three significant figures."""
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.3g}"


@dataclass(frozen=True)
class CostRow:
    """Lambda's bill for ``per`` (a number of ``unit``), scaled from what a bench counted over ``counted`` units."""

    what: str
    per: int
    unit: str
    requests: float
    gb_seconds: float
    memory_mib: int
    usd_requests: float
    usd_compute: float
    usd: float
    how: str

    def line(self) -> str:
        return (f"cost: {self.what} {usd(self.usd)} per {self.per:,} {self.unit} ({self.requests:,.1f} invocations, "
                f"{self.gb_seconds:,.1f} GB-s at {self.memory_mib} MB arm64; {self.how})")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cost_row(what: str, *, per: int, unit: str, counted: float, invocations: int, billed_ms_total: int, memory_mib: int,
             how: str) -> CostRow:
    """``invocations`` and ``billed_ms_total`` (the sum of each invocation's billed ms) counted over ``counted`` units,
    scaled to ``per`` units; priced with PRICES['lambda_requests'] (per million) and PRICES['lambda_gb_second']."""
    scale = per / counted
    requests = invocations * scale
    gb_seconds = billed_ms_total / 1000 * memory_mib / 1024 * scale
    usd_requests = requests * PRICES["lambda_requests"].usd / 1e6
    usd_compute = gb_seconds * PRICES["lambda_gb_second"].usd
    return CostRow(what, per, unit, requests, gb_seconds, memory_mib, usd_requests, usd_compute, usd_requests + usd_compute, how)

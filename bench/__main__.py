"""`make bench`: the backfill's quota efficiency on moto, a burst of 5,000 new log groups (and, to a same-account
destination, the lines written before each filter, lost without the replay and delivered once with it) and a
million-group account in simulated time, a destination failing for 10 minutes under load (the delivery gaps' replay), and
ship-logs' throughput."""

from __future__ import annotations

import subprocess
import sys

from . import burst, delivery_gap, million_groups, quota_efficiency

if __name__ == "__main__":
    quota_efficiency.main()
    print()
    burst.scenarios()
    print()
    delivery_gap.main()
    print()
    million_groups.main()
    print()
    # In a process of its own: after the simulations, this one's heap made ship-logs' figures swing
    # (its ratios read 0.48x and 0.29x in one make bench, 0.60-0.63x and 0.35-0.37x in three runs alone).
    sys.stdout.flush()
    subprocess.run([sys.executable, "-m", "bench.ship_logs_throughput"], check=True)

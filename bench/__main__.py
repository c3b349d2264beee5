"""`make bench`: the backfill's quota efficiency on moto, a burst of 5,000 new log groups and a
million-group account in simulated time, and ship-logs' throughput."""

from __future__ import annotations

from . import burst, million_groups, quota_efficiency, ship_logs_throughput

if __name__ == "__main__":
    quota_efficiency.main()
    print()
    burst.scenarios()
    print()
    million_groups.main()
    print()
    ship_logs_throughput.main()

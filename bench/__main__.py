"""`make bench`: the backfill's quota efficiency on moto, a simulated million-group account, and
ship-logs' throughput."""

from __future__ import annotations

from . import million_groups, quota_efficiency, ship_logs_throughput

if __name__ == "__main__":
    quota_efficiency.main()
    print()
    million_groups.main()
    print()
    ship_logs_throughput.main()

"""`make bench`: the backfill's quota efficiency on moto, and a simulated million-group account."""

from __future__ import annotations

from . import million_groups, quota_efficiency

if __name__ == "__main__":
    quota_efficiency.main()
    print()
    million_groups.main()

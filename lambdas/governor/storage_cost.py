"""What CloudWatch Logs charges to keep stored log data a month: one price, kept apart so that a price table can take
it over later. Nothing here calls AWS."""

from __future__ import annotations

#: CloudWatch Logs storage, USD per GB-month: "Store (Archival)", us-east-1 list price, Standard log class.
#: Source: https://aws.amazon.com/cloudwatch/pricing/ (Logs tab, "Store (Archival)": $0.03 per GB), checked 2026-12-06.
#: *assumed*: the figure was confirmed only through secondary sources quoting that page (infracost's CloudWatch log group
#: estimate, "Archival Storage $0.03 per GB"), not read on the AWS page itself; other regions differ. The page bills the
#: stored data compressed; DescribeLogGroups' ``storedBytes`` is priced here as it is reported (*assumed*).
USD_PER_GB_MONTH = 0.03
#: The GB of the price: 2**30 bytes, the unit AWS bills GB-months in (*assumed*; decimal GB would make figures 7% larger).
BYTES_PER_GB = 2**30


def monthly_storage_usd(stored_bytes: float) -> float:
    """What keeping ``stored_bytes`` a month costs at the list price above."""
    return stored_bytes / BYTES_PER_GB * USD_PER_GB_MONTH


def about(usd: float) -> str:
    """An estimated figure for people: "about $0.16", or "less than $0.01" rather than a $0.00 that reads as nothing."""
    return "less than $0.01" if 0 < usd < 0.005 else f"about ${usd:,.2f}"

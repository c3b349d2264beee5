"""The fleet view (#10), in the central account: each member governor's latest coverage and alarms,
per account and region, and who stopped reporting."""

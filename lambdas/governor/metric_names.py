"""Names of the metrics the functions publish (namespace LogGroupGovernor, dimension service), shared
by the code that publishes them and the stack that alarms on them. No imports: synth reads it too."""

SUBSCRIBED = "Subscribed"
FILTERS_UPDATED = "FiltersUpdated"
RETENTION_SET = "RetentionSet"
COMPLIANT = "Compliant"
#: Also published with a Reason dimension.
SKIPPED = "Skipped"
#: Also published with a Reason dimension.
CONFLICTS = "Conflicts"
IGNORED_EVENTS = "IgnoredEvents"
ERRORS = "Errors"
#: The destination refused a subscription while the group exists: a misconfiguration that alarms.
DESTINATION_ERRORS = "DestinationErrors"
#: A change another principal made (a filter deleted, retention changed) that an event handler undid.
DRIFT_REPAIRED = "DriftRepaired"
#: subscriptionMode account-policy: the account's subscription filter policy was written, and the
#: size of its NOT IN list after each write or check (alarms before the 25 KB AWS accepts).
ACCOUNT_POLICY_UPDATED = "AccountPolicyUpdated"
SUBSCRIPTION_SELECTION_BYTES = "SubscriptionSelectionBytes"
#: Someone deleted or changed the governor's account policy; an event handler wrote it back from the state table.
ACCOUNT_POLICY_RESTORED = "AccountPolicyRestored"
#: Replay (#20): events a new group held before the governor's filter, delivered; and those past the bounds, not sent.
REPLAYED_EVENTS = "ReplayedEvents"
REPLAY_TRUNCATED = "ReplayTruncated"
#: A replay outlasted its slice of an invocation: its event was queued again to go on with it.
REPLAY_CONTINUED = "ReplayContinued"
#: A member asked the organization's archive to pull what a group held before its filter (#31).
REPLAY_PULL_REQUESTED = "ReplayPullRequested"
#: The subscribe handler asked the replay function for a new group's first lines (#31 item 3).
REPLAY_QUEUED = "ReplayQueued"
#: Delivery gaps (#31): windows a filter skipped, queued by the watch; their events replayed; windows (by reason) that
#: could not be replayed whole, alarmed.
DELIVERY_GAPS = "DeliveryGaps"
GAP_REPLAYED_EVENTS = "GapReplayedEvents"
GAP_UNREPLAYED = "GapUnreplayed"
#: Removed the governor's own filter from a group that opted out.
FILTERS_REMOVED = "FiltersRemoved"
#: Published by every finished run over all groups (backfill or reconcile): the account's coverage.
COVERAGE_LOG_GROUPS = "CoverageLogGroups"
COVERAGE_GOVERNED = "CoverageGoverned"
COVERAGE_COMPLIANT = "CoverageCompliant"
COVERAGE_COMPLIANT_PERCENT = "CoverageCompliantPercent"
COVERAGE_REPAIRED = "CoverageRepaired"
COVERAGE_ORPHANS = "CoverageOrphans"
COVERAGE_UNSUPPORTED_CLASS = "CoverageUnsupportedClass"
COVERAGE_DRIFT_REPAIRED = "CoverageDriftRepaired"
#: Both also published with a Reason dimension.
COVERAGE_EXCLUDED = "CoverageExcluded"
COVERAGE_CONFLICTS = "CoverageConflicts"
#: Per control (#21): the % of governed groups compliant for that control, dimension Control (subscription, retention, ...).
COVERAGE_CONTROL_COMPLIANT_PERCENT = "CoverageControlCompliantPercent"
#: The stored bytes of the governed groups, and of them in groups that never expired before the run (no dimension).
COVERAGE_STORED_BYTES = "CoverageStoredBytes"
COVERAGE_NEVER_EXPIRE_STORED_BYTES = "CoverageNeverExpireStoredBytes"
#: Metric name -> key of the coverage report, published in bytes.
COVERAGE_BYTES = {COVERAGE_STORED_BYTES: "storedBytes", COVERAGE_NEVER_EXPIRE_STORED_BYTES: "neverExpireStoredBytes"}
#: Metric name -> key of the coverage report.
COVERAGE = {
    COVERAGE_LOG_GROUPS: "logGroups", COVERAGE_GOVERNED: "governed", COVERAGE_COMPLIANT: "compliant",
    COVERAGE_COMPLIANT_PERCENT: "compliantPercent", COVERAGE_REPAIRED: "repairedByThisRun", COVERAGE_ORPHANS: "orphans",
    COVERAGE_UNSUPPORTED_CLASS: "unsupportedClass", COVERAGE_DRIFT_REPAIRED: "driftRepairedSinceLastRun",
}

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

"""Lambda entry points: parse the event, call the governor, shape the result."""

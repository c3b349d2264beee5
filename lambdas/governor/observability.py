"""Log lines and metrics for outcomes, the same for every entry point."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from . import metric_names as names
from .controls import OWN_ACTIONS, REGISTRY
from .policy import Action
from .service import Outcome

#: Metric per action that changed something or settled a group; skips and conflicts carry a Reason dimension.
METRIC_BY_ACTION = {
    Action.SUBSCRIBE: names.SUBSCRIBED,
    Action.UPDATE_FILTER: names.FILTERS_UPDATED,
    Action.REMOVE_FILTER: names.FILTERS_REMOVED,
    Action.SET_RETENTION: names.RETENTION_SET,
    Action.UPDATE_ACCOUNT_POLICY: names.ACCOUNT_POLICY_UPDATED,
    Action.LEAVE: names.COMPLIANT,
    Action.SKIP: names.SKIPPED,
    Action.CONFLICT: names.CONFLICTS,
    # The actions of the controls that plug in whole (their modules name their metrics).
    **{OWN_ACTIONS[action]: metric for control in REGISTRY for action, metric in control.metric_by_action.items()},
}
IGNORED_EVENTS_METRIC = names.IGNORED_EVENTS
ERRORS_METRIC = names.ERRORS
DESTINATION_ERRORS_METRIC = names.DESTINATION_ERRORS


def record_outcome(outcome: Outcome, logger: Logger, metrics: Metrics) -> None:
    logger.append_keys(logGroupName=outcome.log_group, decision=outcome.action.value, reason=outcome.reason)
    fields = {"aspect": outcome.aspect.value, "detail": outcome.detail, "applied": outcome.applied}
    if outcome.principal:
        fields["principal"] = outcome.principal
    if outcome.action is Action.CONFLICT:
        logger.warning(f"{outcome.aspect.value}: conflict ({outcome.reason}), the group is left as it is", extra=fields)
    else:
        logger.info(f"{outcome.aspect.value}: {outcome.action.value}", extra=fields)

    if outcome.action.writes and not outcome.applied:
        return  # a dry run changes nothing, so counts nothing as changed
    name = METRIC_BY_ACTION[outcome.action]
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if outcome.action in (Action.SKIP, Action.CONFLICT, Action.REMOVE_FILTER):
        # The same count again by reason, for "why was this skipped" dashboards.
        with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace,
                           default_dimensions=metrics.default_dimensions) as metric:
            metric.add_dimension(name="Reason", value=outcome.reason)

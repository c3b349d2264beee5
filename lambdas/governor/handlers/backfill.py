"""backfill: bring existing log groups into line, one time-boxed slice per invocation.

The state machine invokes it in a loop with ``{"execution": <execution name>, "input": <execution
input>}`` until it answers ``done``. It can also be invoked directly with the input itself
(``{"dryRun": true}``): a small account finishes in one invocation; a large one answers
``done: false`` and is continued by invoking again with the same ``runId``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..aws import LogsGateway, Pacer, S3RunStore, retry_budget_s
from ..backfill import Backfill, BackfillRequest, Progress, start_or_resume
from ..config import ENV_REPORTS_BUCKET, SERVICE_NAME, ConfigError
from ..runtime import GuardedPolicies, Settings
from ..service import Governor

#: Start no new page with less time left than this: a page at quota takes ~10 s, a throttled one longer.
PAGE_MARGIN_MS = 120_000
#: Abandon a page (to be done again next time) with less than this left before the next group: the
#: longest one API call can take (every retry, every timeout), and room to save.
GROUP_MARGIN_MS = int(retry_budget_s() * 1000) + 10_000

logger = Logger(service=SERVICE_NAME)


@dataclass(frozen=True)
class BackfillParts:
    governor: Governor
    store: S3RunStore
    clock: Callable[[], float] = time.monotonic


def build_parts(environ: Mapping[str, str], *, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> BackfillParts:
    settings = Settings.from_environ(environ)
    bucket = environ.get(ENV_REPORTS_BUCKET)
    if not bucket:
        raise ConfigError(f"{ENV_REPORTS_BUCKET} is not set: set it to the bucket for backfill checkpoints and reports (the stack does this)")
    pacer = Pacer(settings.config.backfill_rates_tps(), clock=clock, sleep=sleep)
    return BackfillParts(Governor(GuardedPolicies(settings, clock=clock), LogsGateway(pacer=pacer)), S3RunStore(bucket), clock)


def _save_quietly(store: S3RunStore, progress: Progress) -> None:
    try:
        store.save(progress.run_id, progress.to_json())
    except Exception:  # the failure being raised matters more; the last page's checkpoint stands
        logger.exception("could not save the session's counts after a failure")


@cache
def backfill_parts() -> BackfillParts:
    """Built on the first invocation and kept for the container's life."""
    return build_parts(os.environ)


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return handle_backfill(event, context, backfill_parts())


def handle_backfill(event: Any, context: Any, parts: BackfillParts) -> dict[str, Any]:
    if isinstance(event, dict) and "execution" in event:  # from the state machine
        request = BackfillRequest.from_input(event.get("input"), default_run_id=str(event["execution"]))
    else:
        request = BackfillRequest.from_input(event, default_run_id=f"run-{context.aws_request_id}")
    logger.append_keys(runId=request.run_id, dryRun=request.dry_run)
    store = parts.store

    progress = start_or_resume(request, store)
    if not progress.done:
        def page_done(p: Progress) -> None:
            store.save(p.run_id, p.to_json())
            logger.info("page done", extra={"pages": p.pages, "logGroups": p.groups, "errors": p.error_count})

        try:
            Backfill(parts.governor, store, save=page_done, clock=parts.clock).run(
                progress,
                time_left=lambda: context.get_remaining_time_in_millis() > PAGE_MARGIN_MS,
                page_time_left=lambda: context.get_remaining_time_in_millis() > GROUP_MARGIN_MS,
            )
        except Exception:
            # Position fields change only when a page is finished, so saving now keeps the resume
            # point and adds this session's calls and time to the run's summary.
            _save_quietly(store, progress)
            raise
        store.save(progress.run_id, progress.to_json())  # keeps the session's API-call counts

    summary = progress.summary()
    result: dict[str, Any] = {"runId": progress.run_id, "done": progress.done, "summary": summary}
    if progress.done:
        result["summaryLocation"] = store.write_summary(progress.run_id, summary)
        result["decisionsLocation"] = f"s3://{store.bucket}/runs/{progress.run_id}/decisions/"
        logger.info("backfill finished", extra={"summary": summary})
    else:
        logger.info("backfill continues in the next invocation", extra={"pages": progress.pages, "logGroups": progress.groups})
    return result

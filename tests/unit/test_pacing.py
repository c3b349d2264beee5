"""The pacer (decrease on throttle, recover slowly) and the event handlers' share of the quotas, on a clock the test drives."""

from __future__ import annotations

import pytest

from governor.aws import Pacer
from governor.config import DEFAULT_API_QUOTAS_TPS, parse_policy_config
from governor.pacing import BASE_ASPECTS, OPERATIONS_BY_ASPECT, event_handler_rates_tps
from localaws.lambda_runtime import SimulatedClock

SHIPPER = "arn:aws:lambda:eu-west-1:123456789012:function:log-shipper"


def _seconds_for(pacer: Pacer, clock: SimulatedClock, operation: str, calls: int) -> float:
    """Simulated time ``calls`` paced calls take, from the first to the last."""
    pacer.wait(operation)
    start = clock.now
    for _ in range(calls - 1):
        pacer.wait(operation)
    return clock.now - start


def test_the_pacer_keeps_its_rate_and_halves_it_on_a_throttle_then_recovers_slowly() -> None:
    clock = SimulatedClock()
    pacer = Pacer({"DescribeSubscriptionFilters": 2.5}, clock=clock.monotonic, sleep=clock.sleep)

    assert _seconds_for(pacer, clock, "DescribeSubscriptionFilters", 26) == pytest.approx(10.0)

    pacer.throttled("DescribeSubscriptionFilters")
    pacer.throttled("DescribeSubscriptionFilters")
    assert pacer.rate("DescribeSubscriptionFilters") == pytest.approx(0.625)
    assert _seconds_for(pacer, clock, "DescribeSubscriptionFilters", 6) == pytest.approx(8.0, abs=0.01)  # held low

    clock.sleep(Pacer.RECOVERY_HOLD_S + 10)
    assert 0.625 < pacer.rate("DescribeSubscriptionFilters") < 2.5  # climbing back, not back yet
    clock.sleep(3600)
    assert pacer.rate("DescribeSubscriptionFilters") == 2.5


def test_the_pacer_never_stops_an_operation_altogether() -> None:
    clock = SimulatedClock()
    pacer = Pacer({"PutRetentionPolicy": 5.0}, clock=clock.monotonic, sleep=clock.sleep)
    for _ in range(50):
        pacer.throttled("PutRetentionPolicy")
    assert pacer.rate("PutRetentionPolicy") == pytest.approx(5.0 * Pacer.MIN_SHARE)
    assert pacer.throttles["PutRetentionPolicy"] == 50


def test_a_backfill_aims_at_half_of_each_quota_by_default() -> None:
    config = parse_policy_config({"destinationArn": SHIPPER})
    assert config.backfill_rates_tps() == {op: tps / 2 for op, tps in DEFAULT_API_QUOTAS_TPS.items()}


@pytest.mark.parametrize("concurrency", [2, 5])
def test_the_event_handlers_together_never_exceed_their_share_of_any_quota(concurrency: int) -> None:
    share = 0.3
    for deployed in (BASE_ASPECTS, tuple(OPERATIONS_BY_ASPECT)):  # with and without deletion protection's handler
        total: dict[str, float] = {}
        for aspect in deployed:
            for operation, tps in event_handler_rates_tps(DEFAULT_API_QUOTAS_TPS, share, aspect, concurrency, deployed=deployed).items():
                total[operation] = total.get(operation, 0.0) + tps * concurrency
        assert total == pytest.approx({op: DEFAULT_API_QUOTAS_TPS[op] * share for op in total})

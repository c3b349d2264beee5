"""The benchmarks' simulation still runs and sees every group (its figures are printed by `make bench`)."""

from __future__ import annotations

import pytest

from bench import burst, delivery_gap, million_groups


def test_million_group_simulation_runs_on_a_small_account(capsys) -> None:
    results = million_groups.main(groups=1_200)

    for result in results.values():
        assert result["summary"]["logGroups"] == 1_200 and result["summary"]["done"] is True
        assert result["invocations"] == 1
    for name in ("per-group, tags one by one", "per-group, tags in bulk"):
        assert results[name]["simulated_s"] > 1_000 / 2.5  # ~1,000 groups need a DescribeSubscriptionFilters call, at half of 5 per second
    # Tags read in bulk: only the groups about to be written are looked up one by one.
    one_by_one, bulk = (results[k]["calls"]["ListTagsForResource"] for k in ("per-group, tags one by one", "per-group, tags in bulk"))
    assert bulk < one_by_one
    # Both native: no call per group at all; the account policy is written once, with the run's whole list.
    native = results["both account-policy"]
    assert set(native["calls"]) == {"DescribeLogGroups", "DescribeAccountPolicies", "PutAccountPolicy"}
    assert native["calls"]["PutAccountPolicy"] == 1 and native["summary"]["accountSubscriptionPolicy"]["written"] is True
    # Rules (#21): the production third (by name, excluded groups aside) gets protection and a key, one write each.
    ruled = results["per-group, rules with all controls"]
    production = sum(1 for i in range(1_200) if str(i)[-1] in "036" and million_groups._kind(i, False) != "excluded")
    assert ruled["calls"]["PutLogGroupDeletionProtection"] == ruled["calls"]["AssociateKmsKey"] == production
    assert ruled["calls"]["PutDataProtectionPolicy"] == production and "GetDataProtectionPolicy" not in ruled["calls"]
    assert ruled["summary"]["coverage"]["byControl"]["encryption"]["compliant"] == ruled["summary"]["coverage"]["governed"]
    assert native["simulated_s"] < results["per-group, tags in bulk"]["simulated_s"] / 10
    printed = capsys.readouterr().out
    assert "Lambda invocations: 1" in printed and "over the per-group mix: 101 names, 3,147 bytes: fits" in printed


def test_burst_simulation_governs_every_group_without_dead_letters_or_timeouts(capsys) -> None:
    """The real batch handler, paced at the event share, against an account that throttles beyond
    its quotas while another tool takes more than the governor leaves: everything is governed."""
    figures = burst.main(groups=300, neighbour_share=burst.GREEDY_NEIGHBOUR_SHARE)

    assert figures["governed"] == 300
    assert figures["dead_lettered"] == 0 and figures["timed_out"] == 0
    assert figures["throttles"] > 0  # the account did throttle: the run absorbed it
    assert set(figures["peak"].values()) == {2}
    assert "dead-lettered messages: 0" in capsys.readouterr().out


def test_burst_simulation_looks_a_batch_up_at_once(capsys) -> None:
    """#20, item 4: one DescribeLogGroups and one GetResources per batch of each handler, no ListTagsForResource."""
    figures = burst.main(groups=300)

    assert figures["governed"] == 300
    lookups = figures["lookups_per_group"]
    assert lookups["ListTagsForResource"] == 0 and 0 < lookups["DescribeLogGroups"] < 0.1 and 0 < lookups["GetResources"] < 0.1
    # #31: another account's destination: the member never writes there, the organization's archive pulls the lines itself
    assert figures["before_filter"] > 0 and (figures["lost"], figures["twice"]) == (0, 0)
    assert 0 < figures["replay_lag_s"]["p50"] <= figures["replay_lag_s"]["p99"]
    assert "look-ups per group" in capsys.readouterr().out


def test_ship_logs_paths_and_floors_run_on_a_small_payload() -> None:
    """The throughput benchmark's stages (its figures come from `make bench`, never from a test)."""
    from bench import ship_logs_throughput as throughput
    from localaws.payloads import lambda_log_events, subscription_event

    events = [subscription_event("/aws/lambda/orders-api", lambda_log_events(200, seed=s, json_format=bool(s % 2))) for s in range(2)]
    stages = throughput.path_stages(events)
    up_to_the_sink = throughput.Shipper(throughput._Taking(), throughput._Discard(), throughput._Discard(), metrics=throughput.ALL_METRICS)

    for stage in stages.values():
        stage()
    throughput.floor_stdlib(events)
    throughput.floor_compiled(events)
    outcome = up_to_the_sink.ship_batch(throughput.decode_batch(events[0]))
    assert set(stages) == {"decode_parse_metrics", "full"}
    assert outcome.records == outcome.shipped > 150 and outcome.usage_reports > 0


def test_burst_simulation_loses_the_lines_before_the_filter_without_replay_and_none_with_it(capsys) -> None:
    """#20: each new group writes from its first second; the real subscribe handler replays the gap once."""
    without = burst.main(groups=200, replay=False)
    replayed = burst.main(groups=200, replay=True)

    assert without["before_filter"] > 0 and without["lost"] == without["before_filter"]  # the subscription alone loses them all
    assert replayed["before_filter"] > 0 and replayed["lost"] == 0 and replayed["twice"] == 0
    assert replayed["filter_log_events_per_group"] == 1.0 and replayed["governed"] == 200
    assert "with replay: events written before the filter" in capsys.readouterr().out


def test_delivery_gap_simulation_replays_what_a_failing_destination_skipped_once(capsys) -> None:
    """#31 item 2: the stream refuses for 10 minutes; the real watch finds each group's gap, the real GapReplay replays it."""
    figures = delivery_gap.main(groups=30)

    assert figures["gaps"] == 30 and figures["undelivered"] == figures["failed"] + figures["skipped"] > 0
    assert figures["replayed"] > 0 and figures["restored"] == figures["undelivered"]  # through Replayer.gap, into the stream
    assert figures["lost"] == 0
    assert figures["twice"] <= figures["may_repeat"]
    assert figures["dead_lettered"] == 0 and figures["timed_out"] == 0
    assert figures["filter_log_events_per_group"] > 0 and figures["get_metric_data_per_group"] > 0
    assert "lines skipped by AWS" in capsys.readouterr().out


def test_delivery_gap_model_decides_runs_as_it_decides_batch_by_batch() -> None:
    """The bench decides a run of batches of one fate at once: the same fates and datapoints as one batch at a time."""
    names = [f"/g{i}" for i in range(5)]
    lines = delivery_gap.Lines(names, 1_796_371_200_000)
    refused = (1_796_371_200_000 + 330_000, 1_796_371_200_000 + 930_000)
    runs, one_by_one = delivery_gap.Delivery(lines, *refused), delivery_gap.Delivery(lines, *refused)
    for now_ms in (1_796_371_200_000 + s * 1000 for s in (100, 330, 331, 700, 930, 931, 2_000)):
        runs.advance(now_ms)
        for name in names:
            for k in range(one_by_one.next_k[name], lines.last_ingested_by(name, now_ms) + 1):
                one_by_one.batch(name, k)
    assert runs.runs == one_by_one.runs and runs.errors == one_by_one.errors and runs.forwarded == one_by_one.forwarded
    assert {fate for group in runs.runs.values() for _, _, fate in group} == {delivery_gap.FAILED, delivery_gap.SKIPPED, delivery_gap.DELIVERED}


# -- The cost rows (#29 item 4): computed from what each bench counted, priced with stacks/cost.py ---------------------

def _priced(requests: float, gb_seconds: float) -> float:
    from stacks.cost import PRICES

    return requests * PRICES["lambda_requests"].usd / 1e6 + gb_seconds * PRICES["lambda_gb_second"].usd


def test_the_memory_the_cost_rows_read_is_the_stacks(monkeypatch) -> None:
    """The rows read each function's memory from the stacks' source (no Node): the same as the modules' own values."""
    import inspect

    monkeypatch.setenv("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from bench.cost_rows import function_memory_mib
    from stacks import backfill, functions, ship_logs

    default = inspect.signature(functions.GovernorFunction.__init__).parameters["memory_size_mib"].default
    assert function_memory_mib() == {"event_handler": default, "backfill": backfill.BACKFILL_MEMORY_MIB,
                                     "ship_logs": ship_logs.SHIP_LOGS_MEMORY_MIB}
    assert functions.ARCHITECTURE.name == "arm64"


def test_burst_cost_row_is_priced_from_its_counted_invocations_and_simulated_durations(capsys) -> None:
    small, double = burst.main(groups=150), burst.main(groups=300)

    for figures in (small, double):
        cost = figures["cost"]
        assert cost["per"] == 1_000 and cost["memory_mib"] == 256
        assert cost["requests"] == pytest.approx(figures["invocations"] * 1_000 / figures["groups"])
        assert cost["gb_seconds"] == pytest.approx(figures["billed_ms"] / 1000 * 256 / 1024 * 1_000 / figures["groups"])
        assert cost["usd"] == pytest.approx(_priced(cost["requests"], cost["gb_seconds"]))
        # Each invocation billed at least 1 ms, at most its simulated duration rounded up.
        assert figures["invocations"] <= figures["billed_ms"] <= figures["invocations"] * (figures["longest_invocation_s"] * 1000 + 1)
    assert 1.5 <= double["invocations"] / small["invocations"] <= 2.5  # twice the groups: about twice the requests
    assert 1.5 <= double["billed_ms"] / small["billed_ms"] <= 2.5
    assert "cost: governor Lambda (the event handlers) $" in capsys.readouterr().out


def test_backfill_cost_row_is_priced_from_its_counted_invocations_and_simulated_durations(capsys) -> None:
    from bench.cost_rows import billed_ms

    small, double = million_groups.run(1_200, bulk_tags=True), million_groups.run(2_400, bulk_tags=True)

    for groups, result in ((1_200, small), (2_400, double)):
        cost = result["cost"]
        assert cost["per"] == 1_000_000 and cost["memory_mib"] == 512
        assert cost["requests"] == pytest.approx(result["invocations"] * 1_000_000 / groups)
        assert cost["gb_seconds"] == pytest.approx(result["billed_ms"] / 1000 * 512 / 1024 * 1_000_000 / groups)
        assert cost["usd"] == pytest.approx(_priced(cost["requests"], cost["gb_seconds"]))
        # The invocations spend the run's simulated time: billed, rounded up to the millisecond each.
        assert billed_ms(result["simulated_s"]) <= result["billed_ms"] <= billed_ms(result["simulated_s"]) + result["invocations"]
    assert 1.5 <= double["billed_ms"] / small["billed_ms"] <= 2.5
    assert "cost: governor Lambda (the backfill) $" in capsys.readouterr().out


def test_ship_logs_cost_rows_from_the_measured_time_per_event_beside_the_datadog_forwarder(capsys) -> None:
    from bench import ship_logs_throughput as throughput
    from bench.cost_rows import billed_ms
    from localaws.payloads import lambda_log_events, subscription_event

    events = [subscription_event("/aws/lambda/orders-api", lambda_log_events(300, seed=s)) for s in range(2)]
    figures = throughput.cost_figures(events, rounds=1)

    per_invocation = figures["events_per_invocation"]
    assert figures["billed_ms_per_invocation"] == billed_ms(figures["cpu_s_per_event"] * per_invocation)
    ours, theirs = figures["ship_logs"], figures["datadog_forwarder"]
    assert (ours["memory_mib"], theirs["memory_mib"]) == (512, 1024)
    for row in (ours, theirs, figures["ship_logs_cpu_share"], figures["datadog_forwarder_cpu_share"]):
        assert row["per"] == 1_000_000 and row["requests"] == pytest.approx(1_000_000 / per_invocation)
        assert row["usd"] == pytest.approx(_priced(row["requests"], row["gb_seconds"]))
    assert ours["gb_seconds"] == pytest.approx(1_000_000 / per_invocation * figures["billed_ms_per_invocation"] / 1000 * 512 / 1024)
    assert theirs["gb_seconds"] == pytest.approx(2 * ours["gb_seconds"])  # the same duration, twice the memory
    printed = capsys.readouterr().out
    assert "cost: ship-logs Lambda $" in printed and "cost: Datadog Forwarder Lambda $" in printed

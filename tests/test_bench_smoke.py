"""The benchmarks' simulation still runs and sees every group (its figures are printed by `make bench`)."""

from __future__ import annotations

from bench import burst, million_groups


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
    assert figures["lost"] == figures["before_filter"] > 0  # another account's destination: never replayed to
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

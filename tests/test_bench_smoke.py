"""The benchmarks' simulation still runs and sees every group (its figures are printed by `make bench`)."""

from __future__ import annotations

from bench import million_groups


def test_million_group_simulation_runs_on_a_small_account(capsys) -> None:
    result = million_groups.main(groups=1_200)

    assert result["summary"]["logGroups"] == 1_200 and result["summary"]["done"] is True
    assert result["invocations"] == 1
    assert result["simulated_s"] > 1_000 / 5  # ~1,000 groups need a DescribeSubscriptionFilters call at 5 per second
    assert "Lambda invocations: 1" in capsys.readouterr().out

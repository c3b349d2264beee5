"""The layout holds (#28): no import circles among the project's packages, nothing that imports back up (`python -m
tests.layout` prints the graph's figures, the files each control is named in and the largest files)."""

from __future__ import annotations

from tests import layout


def test_no_module_imports_in_a_circle() -> None:
    assert layout.cycles(layout.import_graph()) == []


def test_no_import_runs_back_up_a_floor() -> None:
    assert layout.upward(layout.import_graph()) == []


def test_the_checks_see_a_circle_through_a_packages_init_and_an_import_back_up() -> None:
    """The graph the checks read: a package __init__ that imports a module importing back into the package is a circle."""
    graph = {"governor.config": {"governor.config.policy"}, "governor.config.policy": {"governor.rules"},
             "governor.rules": {"governor.config", "governor.config.base"}, "governor.config.base": set(),
             "governor.service": {"governor.handlers.backfill"}, "governor.handlers.backfill": set(), "shared.config": {"stacks.settings"},
             "stacks.settings": set()}

    assert layout.cycles(graph) == [["governor.config", "governor.config.policy", "governor.rules"]]
    assert layout.upward(graph) == ["governor.service -> governor.handlers.backfill", "shared.config -> stacks.settings"]


def test_a_package_import_counts_its_parents_init_and_a_script_block_does_not_count() -> None:
    graph = layout.import_graph()

    assert {"stacks", "stacks.org_settings"} <= graph["cli.rules"]  # `from stacks.org_settings import ...` runs stacks/__init__ too
    assert "localaws.sandbox" not in graph["localaws.server"]  # only under `if __name__ == "__main__":`
    assert "localaws.server" in graph["localaws.sandbox"]


def test_a_control_that_plugs_in_whole_is_named_in_its_module_and_the_registry_alone() -> None:
    """#28's proof: field indexes (new) and deletion protection (moved) touch nothing of lambdas/, stacks/ or cli/ but their
    module and the registry's import; the handler, queue, rule, role, schema, docs rows, pacing, metrics, facts and the CLI's
    native form read the registry."""
    from governor import controls

    found = layout.files_per_control()
    # Every control only rules set plugs in whole; retention and shipping are the core the rest is built around.
    assert {c.name for c in controls.PLUGGED} == {c.name for c in controls.REGISTRY if c.rule_only}
    #: Beyond its module, a KMS key's "create" is a key the stack makes (a CloudFormation resource) and the CLI reads back.
    beyond = {"kmsKeyArn": ["cli/__main__.py", "stacks/governor_stack.py"]}
    for control in controls.PLUGGED:
        module = controls.BY_NAME[control.name].apply.__module__.replace(".", "/")  # type: ignore[union-attr]
        expected = sorted(["lambdas/governor/controls/__init__.py", f"lambdas/{module}.py", *beyond.get(control.name, [])])
        assert found[control.name] == expected, control.name

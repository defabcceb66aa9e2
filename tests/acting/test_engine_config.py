"""Config loading against the sim: repository file over the org default over safe defaults; a
bad file keeps the last good config in force and is recorded once, with its line number;
unchanged files cost only conditional requests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ledger import decisions
from ledger.repositories import get_repository
from tests.acting.conftest import ActingWorld, acting_scenario

World = Callable[..., Awaitable[ActingWorld]]
REPO = "acme/widgets"
CONFIG = ".github/prsteward.yml"
CONTENTS = "GET /repos/{owner}/{repo}/contents/{path}"


def with_org_default(scenario: dict[str, Any], text: str) -> dict[str, Any]:
    """Add the organisation's ``.github`` repository holding ``text`` as the org default."""
    repos = scenario["installations"][0]["repositories"]
    repos.append({"name": ".github", "files": {CONFIG: text}})
    return scenario


async def config_decisions(world: ActingWorld) -> list[Any]:
    return await decisions.list_decisions(
        world.db, repository_id=await world.db_repository(), kind="config"
    )


async def test_bad_config_keeps_last_good_and_is_recorded_once_with_line(
    acting_world: World,
) -> None:
    world = await acting_world(
        acting_scenario(mode="", files={CONFIG: "mode: act\ndays-before-pr-stale: 30\n"})
    )
    await world.sync()
    loaded = await world.loader.refresh(REPO)
    assert loaded.config.mode == "act" and loaded.config.days_before_pr_stale == 30
    assert loaded.changed and not loaded.errors

    world.set_file(REPO, CONFIG, "mode: act\ndays-before-pr-stale: soon\nbogus-option: 1\n")
    refused = await world.loader.refresh(REPO)

    assert refused.new_error
    assert refused.config.mode == "act" and refused.config.days_before_pr_stale == 30
    assert refused.error_text is not None
    assert "line 2" in refused.error_text and "days-before-pr-stale" in refused.error_text
    assert "line 3" in refused.error_text and "bogus-option" in refused.error_text
    row = await get_repository(world.db, REPO)
    assert row is not None and row.config_error == refused.error_text
    assert row.config is not None and row.config["days-before-pr-stale"] == 30

    # Refreshing again (and evaluating) with the same bad file records nothing new.
    again = await world.loader.refresh(REPO)
    assert not again.new_error and again.config.mode == "act"
    results = await world.evaluate()
    assert results and results[0].mode == "act"
    recorded = await config_decisions(world)
    assert [(d.rule_id, d.to_value) for d in recorded] == [
        ("config.mode", "act"),  # the first load switched it from the default shadow
        ("config.invalid", "error"),
    ]

    # Fixed: the new config is in force and the fix is recorded once.
    world.set_file(REPO, CONFIG, "mode: shadow\n")
    fixed = await world.loader.refresh(REPO)
    assert fixed.changed and fixed.config.mode == "shadow"
    row = await get_repository(world.db, REPO)
    assert row is not None and row.config_error is None
    recorded = await config_decisions(world)
    assert [(d.rule_id, d.to_value) for d in recorded][1:] == [
        ("config.invalid", "error"),
        ("config.mode", "shadow"),
        ("config.valid", "valid"),
    ]


async def test_yaml_syntax_error_on_first_load_falls_back_to_safe_defaults(
    acting_world: World,
) -> None:
    world = await acting_world(acting_scenario(mode="", files={CONFIG: "mode: [act\n"}))
    await world.discover()
    result = await world.loader.refresh(REPO)
    assert result.new_error and result.config.mode == "shadow"
    assert result.error_text is not None and "line" in result.error_text
    assert len(await config_decisions(world)) == 1


async def test_no_files_mean_defaults_in_shadow_mode(acting_world: World) -> None:
    world = await acting_world(acting_scenario(mode=""))
    await world.sync()
    await world.control.reset_accounting()
    results = await world.evaluate()
    assert results[0].mode == "shadow"
    assert (await world.control.accounting())["totals"]["writes"] == 0


async def test_org_default_applies_and_repository_file_overrides_it(acting_world: World) -> None:
    scenario = with_org_default(acting_scenario(mode=""), "mode: act\ndays-before-pr-stale: 45\n")
    world = await acting_world(scenario)
    await world.discover()
    result = await world.loader.refresh(REPO)
    assert result.config.mode == "act" and result.config.days_before_pr_stale == 45

    world.set_file(REPO, CONFIG, "days-before-pr-stale: 50\n")
    result = await world.loader.refresh(REPO)
    assert result.config.mode == "act" and result.config.days_before_pr_stale == 50


async def test_unchanged_files_are_read_with_conditional_requests(acting_world: World) -> None:
    world = await acting_world(acting_scenario(mode="act"))
    await world.discover()
    await world.loader.refresh(REPO)
    await world.control.reset_accounting()

    result = await world.loader.refresh(REPO)

    accounting = await world.control.accounting()
    assert result.config.mode == "act" and not result.changed
    assert accounting["conditional_hits"].get(CONTENTS) == 1  # the repository's file: 304
    assert accounting["requests"].get(CONTENTS) == 2  # + the org's .github: 404

"""docs/configuration.md is generated from the models and committed up to date."""

from __future__ import annotations

from bot.docs import OUTPUT, main, render
from bot.settings import Settings
from policies.config import Config


def test_committed_configuration_reference_is_up_to_date() -> None:
    assert OUTPUT.read_text() == render(), (
        "docs/configuration.md is stale: run `python -m bot.docs`"
    )
    assert main(["--check"]) == 0


def test_every_setting_and_every_option_is_documented() -> None:
    text = render()
    for name in Settings.model_fields:
        assert f"`PRSTEWARD_{name.upper()}`" in text
    for name, field in Config.model_fields.items():
        assert f"`{field.alias or name}" in text
    assert "`budgets.dollars-per-job`" in text
    assert "actions/stale `days-before-pr-stale`" in text

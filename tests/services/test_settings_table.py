"""docs/operations.md lists every CLINIE_* setting of both services, exactly as the settings classes define them."""

from __future__ import annotations

from services.settings import ApiSettings, ExtractorSettings
from services.settings_table import documented_table, settings_table


def test_the_documented_table_matches_the_settings_classes() -> None:
    assert documented_table() == settings_table(), (
        "docs/operations.md is out of date: run `python -m services.settings_table --write`")


def test_every_field_of_both_services_is_a_row() -> None:
    table = documented_table()
    for cls in (ExtractorSettings, ApiSettings):
        for name in cls.model_fields:
            assert f"| `CLINIE_{name.upper()}` |" in table

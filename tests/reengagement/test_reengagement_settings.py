"""Re-engagement settings: defaults, the Variable's JSON, and errors that name the key."""

from __future__ import annotations

import logging

import pytest

from toast_passkit.reengagement.settings import (
    ReengagementConfigError,
    load_reengagement_settings,
    parse_reengagement_settings,
)


def test_defaults_when_the_variable_is_unset_or_empty() -> None:
    for raw in (None, "", "  ", "{}"):
        settings = parse_reengagement_settings(raw)
        assert settings.enabled_channels == ("pass_message",)
        assert settings.message == "We miss you! Come back for a treat."
        assert (settings.control_share, settings.control_salt) == (0.1, "v1")
        assert (settings.winback_campaign_id, settings.winback_offer_id) == (None, None)
        assert (settings.return_window_days, settings.report_window_days) == (30, 90)


def test_the_coupon_channel_needs_its_campaign_and_offer(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        settings = parse_reengagement_settings('{"channels": ["pass_message", "coupon"]}')
    assert settings.enabled_channels == ("pass_message",)
    assert "coupon channel disabled" in caplog.text

    settings = parse_reengagement_settings({
        "channels": ["pass_message", "coupon"], "winback_campaign_id": "camp",
        "winback_offer_id": "offer"})
    assert settings.enabled_channels == ("pass_message", "coupon")

    with pytest.raises(ReengagementConfigError, match="channels: no channel left"):
        parse_reengagement_settings('{"channels": ["coupon"]}')


@pytest.mark.parametrize(("raw", "named"), [
    ('{"control_share": 1.5}', "control_share"),
    ('{"chanels": ["pass_message"]}', "chanels"),
    ('{"channels": ["sms"]}', "channels"),
    ('{"channels": []}', "channels"),
    ('{"message": ""}', "message"),
    ('{"winback_campaign_id": "camp"}', "winback_offer_id"),
    ('{"return_window_days": 0}', "return_window_days"),
    ("[1]", "JSON object"),
    ("{not json", "not JSON"),
])
def test_bad_configuration_fails_naming_the_key(raw: str, named: str) -> None:
    with pytest.raises(ReengagementConfigError, match=named):
        parse_reengagement_settings(raw)


def test_settings_come_from_the_airflow_variable(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_REENGAGEMENT_CONFIG",
                       f'{{"control_share": 0.25, "export_dir": "{tmp_path}"}}')
    settings = load_reengagement_settings()
    assert (settings.control_share, settings.export_dir) == (0.25, tmp_path)

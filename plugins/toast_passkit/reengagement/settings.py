"""Re-engagement settings, validated once from the Airflow Variable ``reengagement_config``.

The Variable (or ``AIRFLOW_VAR_REENGAGEMENT_CONFIG``) holds a JSON object; every key is
optional::

    {"channels": ["pass_message", "coupon"],
     "message": "We miss you! Come back for a treat.",
     "winback_campaign_id": "...", "winback_offer_id": "...",
     "control_share": 0.1, "control_salt": "v1",
     "return_window_days": 30, "report_window_days": 90,
     "export_dir": "/data/exports"}

The coupon channel needs both win-back ids; without them it is disabled (with a warning).
Changing ``control_salt`` or ``control_share`` changes the arm of absences not planned yet
only: a planned absence keeps its row.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from toast_passkit.settings import VAR_DIR

log = logging.getLogger(__name__)

CONFIG_VARIABLE = "reengagement_config"
Channel = Literal["pass_message", "coupon"]


class ReengagementConfigError(ValueError):
    """The re-engagement configuration is invalid; the message names the key."""


class ReengagementSettings(BaseModel):
    """What a deployment can set about re-engagement without touching code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: tuple[Channel, ...] = Field(
        default=("pass_message",), min_length=1,
        description="What treated members whose pass can be notified get, each once")
    message: str = Field(default="We miss you! Come back for a treat.", min_length=1,
                         max_length=500, description="Text shown on the pass (pass_message)")
    winback_campaign_id: str | None = Field(
        default=None, min_length=1, description="PassKit campaign of the win-back coupon")
    winback_offer_id: str | None = Field(
        default=None, min_length=1, description="PassKit offer of the win-back coupon")
    control_share: float = Field(default=0.1, ge=0.0, lt=1.0,
                                 description="Share of absences held out as a control group")
    control_salt: str = Field(default="v1", min_length=1,
                              description="Salt of the arm hash (a new salt = a new draw)")
    return_window_days: int = Field(default=30, ge=1,
                                    description="A return is a qualifying visit within this")
    report_window_days: int = Field(default=90, ge=1,
                                    description="Days of due dates the report covers")
    export_dir: Path = Field(default=VAR_DIR / "exports",
                             description="Folder of the audience CSV files")

    @model_validator(mode="after")
    def _check(self) -> ReengagementSettings:
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels: each channel at most once")
        if (self.winback_campaign_id is None) != (self.winback_offer_id is None):
            raise ValueError("winback_campaign_id and winback_offer_id: set both or neither")
        if not self.enabled_channels:
            raise ValueError("channels: no channel left (coupon needs winback_campaign_id and "
                             "winback_offer_id)")
        return self

    @property
    def coupon_enabled(self) -> bool:
        return self.winback_campaign_id is not None and self.winback_offer_id is not None

    @property
    def enabled_channels(self) -> tuple[Channel, ...]:
        """The configured channels that can be used: coupon only with its campaign and offer."""
        return tuple(c for c in self.channels if c != "coupon" or self.coupon_enabled)


def parse_reengagement_settings(raw: str | dict[str, Any] | None) -> ReengagementSettings:
    """Settings from the Variable's JSON text (or a dict); None or empty gives the defaults."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        data: Any = {}
    elif isinstance(raw, str):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ReengagementConfigError(
                f"{CONFIG_VARIABLE}: not JSON ({exc.msg} at line {exc.lineno})") from None
    else:
        data = raw
    if not isinstance(data, dict):
        raise ReengagementConfigError(f"{CONFIG_VARIABLE}: must be a JSON object")
    try:
        settings = ReengagementSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors())
        raise ReengagementConfigError(f"{CONFIG_VARIABLE}: {problems}") from None
    if "coupon" in settings.channels and not settings.coupon_enabled:
        log.warning("re-engagement coupon channel disabled: winback_campaign_id and "
                    "winback_offer_id are not set")
    return settings


def load_reengagement_settings() -> ReengagementSettings:
    """Settings from the Airflow Variable ``reengagement_config`` (defaults when unset)."""
    from airflow.sdk import Variable

    return parse_reengagement_settings(Variable.get(CONFIG_VARIABLE, default=None))

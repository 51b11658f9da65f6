"""Engine settings, checked together. The command line reads them from flags and `DSIEM_*`
environment variables (typer's `envvar`: a flag wins over its variable, which wins over the
default here; docs/behaviour.md, "Command line")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dsiem_sql import defaults
from dsiem_sql.engine import EngineOptions


class EngineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference_mode: Literal["value", "rule"] = defaults.REFERENCE_MODE
    min_alarm_lifetime: int = Field(defaults.MIN_ALARM_LIFETIME, ge=0, le=65535)
    status: str = defaults.STATUS
    tags: str = defaults.TAGS
    med_risk_min: int = Field(defaults.MED_RISK_MIN, ge=0, le=255)
    med_risk_max: int = Field(defaults.MED_RISK_MAX, ge=0, le=255)
    match_protocol: bool = False
    taxonomy_custom_data: bool = False

    @model_validator(mode="after")
    def _check_risk_thresholds(self) -> EngineSettings:
        lo, hi = self.med_risk_min, self.med_risk_max
        if lo < 2 or hi > 9 or lo >= hi:
            raise ValueError(
                "error reading med_risk_min and med_risk_max: invalid value provided "
                f"(min {lo}, max {hi}; need 2 <= min < max <= 9)"
            )
        return self

    def engine_options(self) -> EngineOptions:
        return EngineOptions(
            reference_mode=self.reference_mode,
            min_alarm_lifetime=self.min_alarm_lifetime,
            status=self.status.split(",")[0],
            tag=self.tags.split(",")[0],
            med_risk_min=self.med_risk_min,
            med_risk_max=self.med_risk_max,
            match_protocol=self.match_protocol,
            taxonomy_custom_data=self.taxonomy_custom_data,
        )

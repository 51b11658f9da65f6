"""Engine settings from command-line flags and `DSIEM_*` environment variables.

Flags win over the environment; the environment wins over the defaults (SPEC §10).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dsiem_sql.engine import EngineOptions


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    reference_mode: Literal["value", "rule"] = Field(
        "value", validation_alias=_env("reference_mode", "DSIEM_REFERENCE_MODE")
    )
    min_alarm_lifetime: int = Field(
        0, ge=0, le=65535, validation_alias=_env("min_alarm_lifetime", "DSIEM_MINALARMLIFETIME")
    )
    status: str = Field("Open,In-Progress,Closed", validation_alias=_env("status", "DSIEM_STATUS"))
    tags: str = Field(
        "Identified Threat,False Positive,Valid Threat,Security Incident",
        validation_alias=_env("tags", "DSIEM_TAGS"),
    )
    med_risk_min: int = Field(
        3, ge=0, le=255, validation_alias=_env("med_risk_min", "DSIEM_MEDRISKMIN")
    )
    med_risk_max: int = Field(
        6, ge=0, le=255, validation_alias=_env("med_risk_max", "DSIEM_MEDRISKMAX")
    )
    match_protocol: bool = Field(
        False, validation_alias=_env("match_protocol", "DSIEM_MATCH_PROTOCOL")
    )
    taxonomy_custom_data: bool = Field(
        False, validation_alias=_env("taxonomy_custom_data", "DSIEM_TAXONOMY_CUSTOM_DATA")
    )

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

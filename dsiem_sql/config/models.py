"""Pydantic models of the Dsiem configuration files (docs/behaviour.md, "Config files").

Typing is strict, as in the Rust decoders: `"priority": "3"` or `null` for a string is an error.
Unknown keys are ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

U8 = Annotated[int, Field(ge=0, le=255, json_schema_extra={"rust": "u8"})]
U32 = Annotated[int, Field(ge=0, le=2**32 - 1, json_schema_extra={"rust": "u32"})]
U64 = Annotated[int, Field(ge=0, le=2**64 - 1, json_schema_extra={"rust": "u64"})]

STRICT = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class RuleConfig(BaseModel):
    model_config = STRICT

    name: str
    stage: U8
    type: Literal["PluginRule", "TaxonomyRule", "ExtendedPluginRule", "ExtendedTaxonomyRule"]
    occurrence: U64
    from_: str = Field(alias="from")
    to: str
    port_from: str
    port_to: str
    protocol: str
    reliability: U8
    timeout: U32
    plugin_id: U64 = 0
    plugin_sid: list[U64] = Field(default_factory=list)
    product: list[str] = Field(default_factory=list)
    category: str = ""
    subcategory: list[str] = Field(default_factory=list)
    sticky_different: str = ""
    custom_data1: str = ""
    custom_data2: str = ""
    custom_data3: str = ""
    custom_label1: str = ""
    custom_label2: str = ""
    custom_label3: str = ""
    # an extension (config/extensions.py); left out of the JSON of a rule that does not use it
    absent: bool = Field(default=False, exclude_if=lambda absent: not absent)


class DirectiveConfig(BaseModel):
    model_config = STRICT

    id: U64
    name: str
    priority: U8
    kingdom: str
    category: str
    disabled: bool = False
    all_rules_always_active: bool = False
    rules: list[RuleConfig]


class DirectivesFile(BaseModel):
    model_config = STRICT

    directives: list[DirectiveConfig]


class AssetConfig(BaseModel):
    model_config = STRICT

    name: str
    cidr: str
    value: U8 = 0
    whitelisted: bool = False


class AssetsFile(BaseModel):
    model_config = STRICT

    assets: list[AssetConfig]


class PluginSource(BaseModel):
    model_config = STRICT

    name: str
    type: str
    enabled: bool
    plugin: str
    config: str


class IntelFile(BaseModel):
    model_config = STRICT

    intel_sources: list[PluginSource]


class VulnFile(BaseModel):
    model_config = STRICT

    vuln_sources: list[PluginSource]


class WiseConfig(BaseModel):
    model_config = STRICT

    url: str


class NesdConfig(BaseModel):
    model_config = STRICT

    url: str
    allow_low_severity: bool = False

"""Configuration files: loading and validation."""

from dsiem_sql.config.assets import Asset, Assets
from dsiem_sql.config.errors import ConfigError
from dsiem_sql.config.loader import Config, FileSummary, load_config
from dsiem_sql.config.models import DirectiveConfig, RuleConfig

__all__ = [
    "Asset",
    "Assets",
    "Config",
    "ConfigError",
    "DirectiveConfig",
    "FileSummary",
    "RuleConfig",
    "load_config",
]

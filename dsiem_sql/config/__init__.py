"""Configuration files: loading and validation.

The names below load on first use, so that importing `dsiem_sql.config.errors` (as the
command line does at start) does not load pydantic and every model.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsiem_sql.config.assets import Asset, Assets
    from dsiem_sql.config.errors import ConfigError
    from dsiem_sql.config.loader import Config, FileSummary, load_assets, load_config
    from dsiem_sql.config.models import DirectiveConfig, RuleConfig

_WHERE = {
    "Asset": "assets", "Assets": "assets", "ConfigError": "errors", "Config": "loader",
    "FileSummary": "loader", "load_assets": "loader", "load_config": "loader",
    "DirectiveConfig": "models", "RuleConfig": "models",
}
__all__ = [
    "Asset", "Assets", "Config", "ConfigError", "DirectiveConfig", "FileSummary", "RuleConfig",
    "load_assets", "load_config",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)

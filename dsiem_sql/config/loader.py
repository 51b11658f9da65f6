"""Load and validate a configuration directory, all or nothing (docs/behaviour.md,
"Config files")."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from dsiem_sql.config.assets import Asset, Assets
from dsiem_sql.config.errors import ConfigError, describe_decode_error
from dsiem_sql.config.models import (
    AssetsFile,
    DirectiveConfig,
    DirectivesFile,
    IntelFile,
    NesdConfig,
    PluginSource,
    VulnFile,
    WiseConfig,
)
from dsiem_sql.config.netparse import ParseError, parse_cidr
from dsiem_sql.config.validate import InvalidDirective, validate_directive
from dsiem_sql.logtext import shown

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# plugin name -> model of its `config` string, and the message when it does not parse
PluginConfig = WiseConfig | NesdConfig
# plugin name -> the model of its `config`, and the message when that does not validate
INTEL_PLUGINS: dict[str, tuple[type[PluginConfig], str]] = {
    "Wise": (WiseConfig, "error parsing wise config")
}
VULN_PLUGINS: dict[str, tuple[type[PluginConfig], str]] = {
    "Nesd": (NesdConfig, "error parsing nesd config")
}


@dataclass(frozen=True)
class FileSummary:
    path: Path
    kind: str
    directives: int = 0
    disabled: int = 0
    rules: int = 0
    assets: int = 0
    sources: int = 0
    sha256: str = ""  # of the bytes loaded


@dataclass(frozen=True)
class PluginSetup:
    source: PluginSource
    config: PluginConfig


@dataclass(frozen=True)
class Config:
    directives: tuple[DirectiveConfig, ...]
    assets: Assets
    intel: tuple[PluginSetup, ...] = ()
    vuln: tuple[PluginSetup, ...] = ()
    files: tuple[FileSummary, ...] = field(default=())
    directive_files: dict[int, Path] = field(default_factory=dict, hash=False, compare=False)


def _read(path: Path, model: type[M]) -> tuple[M, str]:
    """The file's model and the sha256 of its bytes."""
    log.info('reading "%s"', path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"file is not valid UTF-8: {exc}", path) from None
    try:
        return model.model_validate_json(text), hashlib.sha256(data).hexdigest()
    except ValidationError as exc:
        raw: Any
        try:
            raw = json.loads(text)
        except ValueError:
            raw = None
        raise ConfigError(describe_decode_error(exc, raw), path) from None


def load_config(directory: Path | str) -> Config:
    """Read every `assets_*`, `directives_*`, `intel_*` and `vuln_*` JSON file of `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError("configuration directory not found", directory)
    files: list[FileSummary] = []
    assets = _load_assets(directory, files)
    directive_files: dict[int, Path] = {}
    directives = _load_directives(directory, files, directive_files)
    intel = _load_sources(
        directory, "intel_*.json", IntelFile, "intel_sources", INTEL_PLUGINS, files
    )
    vuln = _load_sources(directory, "vuln_*.json", VulnFile, "vuln_sources", VULN_PLUGINS, files)
    return Config(tuple(directives), assets, intel, vuln, tuple(files), directive_files)


def load_assets(directory: Path | str) -> Assets:
    """Only the `assets_*` files of `directory`, checked as `load_config` checks them."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError("configuration directory not found", directory)
    return _load_assets(directory, [])


def _load_assets(directory: Path, files: list[FileSummary]) -> Assets:
    assets: list[Asset] = []
    for path in sorted(directory.glob("assets_*.json")):
        parsed, sha = _read(path, AssetsFile)
        for i, a in enumerate(parsed.assets):
            try:
                network = parse_cidr(a.cidr)
            except ParseError as exc:
                raise ConfigError(
                    f"assets[{i}] ({a.name!r}): cidr {a.cidr!r}: {exc}", path
                ) from None
            if a.value == 0:
                raise ConfigError(f"asset {a.name} value cannot be 0", path)
            if a.name == "":
                raise ConfigError("asset name cannot be empty", path)
            if a.value > 5:
                log.warning(
                    "asset %s value %d is above the documented maximum of 5",
                    shown(a.name), a.value,
                )
            assets.append(Asset(a.name, network, a.value, a.whitelisted))
        files.append(FileSummary(path, "assets", assets=len(parsed.assets), sha256=sha))
    if not assets:
        raise ConfigError("cannot load any asset", directory)
    return Assets(assets)


def _load_directives(directory: Path, files: list[FileSummary],
                     directive_files: dict[int, Path]) -> list[DirectiveConfig]:
    loaded: list[DirectiveConfig] = []
    ids: set[int] = set()
    for path in sorted(directory.glob("directives_*.json")):
        parsed, sha = _read(path, DirectivesFile)
        enabled = disabled = rules = 0
        for d in parsed.directives:
            if d.disabled:
                log.warning("skipping disabled directive %d", d.id)
                disabled += 1
                continue
            try:
                validate_directive(d, ids)
            except InvalidDirective as exc:
                raise ConfigError(str(exc), path) from None
            ids.add(d.id)
            directive_files[d.id] = path
            loaded.append(d)
            enabled += 1
            rules += len(d.rules)
        files.append(
            FileSummary(path, "directives", directives=enabled, disabled=disabled, rules=rules,
                        sha256=sha)
        )
    if not loaded:
        raise ConfigError("cannot load any directive", directory)
    log.info("%d directives found and loaded", len(loaded))
    return loaded


def _load_sources(
    directory: Path,
    pattern: str,
    model: type[IntelFile] | type[VulnFile],
    key: str,
    plugins: dict[str, tuple[type[PluginConfig], str]],
    files: list[FileSummary],
) -> tuple[PluginSetup, ...]:
    setups: list[PluginSetup] = []
    for path in sorted(directory.glob(pattern)):
        parsed, sha = _read(path, model)
        sources: list[PluginSource] = getattr(parsed, key)
        for source in sources:
            if not source.enabled:
                continue
            if source.plugin not in plugins:
                log.warning(
                    "unknown plugin %s of source %s, skipping it",
                    shown(repr(source.plugin)), shown(repr(source.name)),
                )
                continue
            config_model, message = plugins[source.plugin]
            try:
                config = config_model.model_validate_json(source.config)
            except ValidationError as exc:
                detail = describe_decode_error(exc, None)
                raise ConfigError(f"source {source.name!r}: {message}: {detail}", path) from None
            setups.append(PluginSetup(source, config))
        files.append(FileSummary(path, key.split("_")[0], sources=len(sources), sha256=sha))
    return tuple(setups)

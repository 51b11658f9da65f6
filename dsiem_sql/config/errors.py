"""Configuration errors and readable messages for decode failures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError

# Rust integer types of the numeric keys, for serde-like messages.
_RUST_INT = {
    "stage": "u8",
    "priority": "u8",
    "reliability": "u8",
    "value": "u8",
    "timeout": "u32",
}
_EXPECTED = {
    "string_type": "a string",
    "bool_type": "a boolean",
    "list_type": "a sequence",
    "model_type": "a map",
    "model_attributes_type": "a map",
    "dict_type": "a map",
}


class ConfigError(Exception):
    """An invalid configuration. `str()` gives `<path>: <message>`."""

    def __init__(self, message: str, path: Path | str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "sequence"
    return "map"


def _rust_int(field: str | None) -> str:
    return _RUST_INT.get(field or "", "u64")


def _where(loc: tuple, raw: Any) -> str:
    """Turn a pydantic location into `directive ID 2: rules[1].to`."""
    parts: list[str] = []
    node = raw
    path = ""
    listed = len(loc) > 1 and loc[0] in ("directives", "assets", "intel_sources", "vuln_sources")
    for i, key in enumerate(loc):
        node = node[key] if _has(node, key) else None
        if listed and i == 0:
            continue  # the item name below already says which list it is in
        if listed and i == 1:
            parts.append(_item_name(loc[0], key, node))
            continue
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else key)
    if path:
        parts.append(path)
    return ": ".join(parts)


def _has(node: Any, key: Any) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)


def _item_name(kind: str, index: int, node: Any) -> str:
    if kind == "directives" and isinstance(node, dict) and isinstance(node.get("id"), int):
        return f"directive ID {node['id']}"
    if kind == "assets" and isinstance(node, dict) and isinstance(node.get("name"), str):
        return f"asset {node['name']!r}"
    return f"{kind}[{index}]"


def describe_decode_error(exc: ValidationError, raw: Any) -> str:
    """A serde-like message for the first error, naming where it is."""
    err = exc.errors(include_url=False)[0]
    kind, loc, value = err["type"], tuple(err["loc"]), err.get("input")
    if kind == "json_invalid":
        return f"invalid JSON: {err['ctx']['error']}"
    field = loc[-1] if loc and isinstance(loc[-1], str) else None
    if kind == "missing":
        message, loc = f"missing field `{field}`", loc[:-1]
    elif kind == "literal_error" and field == "type":
        message = (f"invalid rule type {_json_kind(value)}, expected PluginRule or "
                   "TaxonomyRule (or, with dsiem-sql's extensions, ExtendedPluginRule or "
                   "ExtendedTaxonomyRule)")
    elif kind in ("greater_than_equal", "less_than_equal") and isinstance(value, int):
        message = f"invalid value: integer `{value}`, expected {_rust_int(field)}"
    elif kind == "int_type":
        message = f"invalid type: {_json_kind(value)}, expected {_rust_int(field)}"
    elif kind in _EXPECTED:
        message = f"invalid type: {_json_kind(value)}, expected {_EXPECTED[kind]}"
    else:
        message = err["msg"]
    where = _where(loc, raw)
    return f"{where}: {message}" if where else message

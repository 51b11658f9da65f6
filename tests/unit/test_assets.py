"""Assets files and lookups (docs/behaviour.md, "Assets").

`tests/fixtures/assets/` holds the `assets_testing.json` fixture of dsiem-backend's
`test_assets` next to a minimal valid directives file (load_config needs at least one
directive).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import kit
import pytest

from dsiem_sql.config import Assets, ConfigError, load_config

FIXTURE = kit.FIXTURES / "assets"
DIRECTIVES = FIXTURE / "directives_x_test.json"


@pytest.fixture(scope="module")
def assets() -> Assets:
    return load_config(FIXTURE).assets


def config_dir(directory: Path, assets_files: dict[str, Any]) -> Path:
    """`directory` with the fixture's directives file and the given assets files."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(DIRECTIVES, directory / DIRECTIVES.name)
    for name, content in assets_files.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (directory / name).write_text(text)
    return directory


def load_error(directory: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    return info.value


def asset(name: str = "foo", cidr: str = "10.0.0.0/8", **extra: Any) -> dict[str, Any]:
    return {"name": name, "cidr": cidr, **extra}


# ---------------------------------------------------------------------------------------------
# the lookups of `test_assets`


@pytest.mark.parametrize(
    ("query", "ip", "expected"),
    [
        ("name", "192.168.0.1", "Firewall"),
        ("networks", "192.168.0.1", ("192.168.0.0/16",)),
        ("in_home_net", "192.168.0.1", True),
        ("is_whitelisted", "192.168.0.2", True),
        ("value", "192.168.0.1", 5),
        ("name", "8.8.8.8", None),
        ("networks", "8.8.8.8", ()),
        ("in_home_net", "8.8.8.8", False),
        ("is_whitelisted", "8.8.8.8", False),
        ("in_home_net", "2002:c0a8:0001:0:0:0:0:1", True),
        ("name", "2002:c0a8:0001::1", "firewall-ipv6"),
        ("value", "2002:c0a8:0001::1", 5),
        ("networks", "2002:c0a8:0001::1", ("2002:c0a8:1::/64",)),
        # derived rows
        ("value", "10.0.0.131", 5),
        ("value", "0.0.0.0", 0),
        # further answers that follow from the definitions
        ("is_whitelisted", "192.168.0.1", False),
        ("in_home_net", "192.168.0.2", True),  # still inside the non-whitelisted 192-168-Net
        ("networks", "192.168.0.2", ("192.168.0.0/16",)),
        ("name", "192.168.0.3", None),  # only host entries (/32, /128) give a name
        ("networks", "10.0.0.131", ("10.0.0.0/8",)),
        ("networks", "172.31.255.255", ("172.16.0.0/12",)),
        ("in_home_net", "172.32.0.1", False),
        ("value", "2002:c0a8:1::2", 2),
        ("name", "2002:c0a8:1::2", None),
        ("networks", "2002:c0a8:1::2", ("2002:c0a8:1::/64",)),
        ("in_home_net", "2002:c0a8:2::1", False),
        ("value", "not an ip", 0),
        ("in_home_net", "not an ip", False),
    ],
)
def test_assets_testing_lookups(assets: Assets, query: str, ip: str, expected: object) -> None:
    assert getattr(assets, query)(ip) == expected


def test_assets_testing_loads_every_entry() -> None:
    config = load_config(FIXTURE)
    assert len(config.assets) == 7
    (summary,) = [f for f in config.files if f.kind == "assets"]
    assert (summary.path.name, summary.assets) == ("assets_testing.json", 7)
    assert [str(n) for n in config.assets.whitelist] == ["192.168.0.2/32"]
    assert [str(a.network) for a in config.assets.assets if not a.whitelisted] == [
        "192.168.0.1/32",
        "192.168.0.0/16",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "2002:c0a8:1::1/128",
        "2002:c0a8:1::/64",
    ]


def test_lookups_are_stable_when_repeated(assets: Assets) -> None:
    """Answers are memoised; a second query must give the same answer."""
    for _ in range(2):
        assert assets.name("192.168.0.1") == "Firewall"
        assert assets.networks("2002:c0a8:0001::1") == ("2002:c0a8:1::/64",)
        assert assets.value("8.8.8.8") == 0


# ---------------------------------------------------------------------------------------------
# value, whitelist and name semantics


def test_value_is_the_maximum_over_all_assets_including_whitelisted(tmp_path: Path) -> None:
    assets = load_config(
        config_dir(
            tmp_path,
            {
                "assets_a.json": {"assets": [
                    asset("net", "10.0.0.0/8", value=2),
                    asset("scanner", "10.1.1.1", value=4, whitelisted=True),
                    asset("wide", "10.0.0.0/16", value=3),
                ]},
            },
        )
    ).assets
    assert assets.value("10.1.1.1") == 4
    assert assets.value("10.0.0.9") == 3
    assert assets.value("10.2.0.1") == 2
    assert assets.is_whitelisted("10.1.1.1") is True
    assert assets.name("10.1.1.1") is None  # whitelisted hosts give no name
    assert assets.networks("10.0.0.9") == ("10.0.0.0/8", "10.0.0.0/16")


def test_whitelisted_only_address_is_not_in_home_net(tmp_path: Path) -> None:
    assets = load_config(
        config_dir(
            tmp_path,
            {"assets_a.json": {"assets": [
                asset("home", "192.168.0.0/24", value=1),
                asset("scanner", "172.16.0.5/32", value=5, whitelisted=True),
            ]}},
        )
    ).assets
    assert assets.is_whitelisted("172.16.0.5") is True
    assert assets.in_home_net("172.16.0.5") is False
    assert assets.networks("172.16.0.5") == ()
    assert assets.value("172.16.0.5") == 5


def test_name_is_the_first_matching_host_entry(tmp_path: Path) -> None:
    assets = load_config(
        config_dir(
            tmp_path,
            {
                "assets_a.json": {"assets": [asset("first", "10.0.0.1", value=1)]},
                "assets_b.json": {"assets": [asset("second", "10.0.0.1/32", value=3)]},
            },
        )
    ).assets
    assert assets.name("10.0.0.1") == "first"
    assert assets.value("10.0.0.1") == 3
    assert assets.networks("10.0.0.1") == ()


def test_asset_files_are_merged(tmp_path: Path) -> None:
    config = load_config(
        config_dir(
            tmp_path,
            {
                "assets_b.json": {"assets": [asset("b", "10.0.0.0/8", value=1)]},
                "assets_a.json": {"assets": [asset("a", "192.168.0.0/16", value=2)]},
                "assets_c.json": {"assets": []},
            },
        )
    )
    assert [a.name for a in config.assets.assets] == ["a", "b"]
    assert [(f.path.name, f.assets) for f in config.files if f.kind == "assets"] == [
        ("assets_a.json", 1),
        ("assets_b.json", 1),
        ("assets_c.json", 0),
    ]
    assert config.assets.in_home_net("10.1.1.1") and config.assets.in_home_net("192.168.1.1")


def test_value_above_5_is_accepted(tmp_path: Path) -> None:
    config = load_config(
        config_dir(tmp_path, {"assets_a.json": {"assets": [asset("big", value=255)]}})
    )
    assert config.assets.value("10.9.9.9") == 255


# ---------------------------------------------------------------------------------------------
# errors


def test_no_asset_file(tmp_path: Path) -> None:
    err = load_error(config_dir(tmp_path, {}))
    assert err.message == "cannot load any asset"
    assert str(err) == f"{tmp_path}: cannot load any asset"


def test_asset_files_without_assets(tmp_path: Path) -> None:
    err = load_error(config_dir(tmp_path, {"assets_a.json": {"assets": []}}))
    assert err.message == "cannot load any asset"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (asset("foo", value=0), "asset foo value cannot be 0"),
        (asset("foo"), "asset foo value cannot be 0"),  # value defaults to 0
        (asset("", value=5), "asset name cannot be empty"),
        (asset("", value=0), "asset  value cannot be 0"),  # the value check comes first
    ],
)
def test_asset_validation(tmp_path: Path, entry: dict, expected: str) -> None:
    good = asset("ok", "192.168.0.0/16", value=1)
    err = load_error(config_dir(tmp_path, {"assets_a.json": {"assets": [good, entry]}}))
    assert err.message == expected
    assert str(err).startswith(f"{tmp_path / 'assets_a.json'}: ")


@pytest.mark.parametrize(
    ("cidr", "detail"),
    [
        ("192.168.0.1/24", "host part of address was not zero"),
        ("2002:c0a8:1::1/64", "host part of address was not zero"),
        ("foo", "couldn't parse address in network: invalid IP address syntax"),
        ("10.0.0.0/33", "Network length 33 is too long for Ipv4 (maximum: 32)"),
        ("10.0.0.0/", "couldn't parse length in network: cannot parse integer from empty string"),
        ("", "invalid IP address syntax"),
    ],
)
def test_invalid_cidr(tmp_path: Path, cidr: str, detail: str) -> None:
    err = load_error(
        config_dir(tmp_path, {"assets_a.json": {"assets": [asset("bad", cidr, value=5)]}})
    )
    assert detail in err.message
    assert "bad" in err.message
    assert str(err).startswith(f"{tmp_path / 'assets_a.json'}: ")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"cidr": "10.0.0.0/8", "value": 1}, "missing field `name`"),
        ({"name": "x", "value": 1}, "missing field `cidr`"),
        (asset("x", value=256), "invalid value: integer `256`, expected u8"),
        (asset("x", value="5"), 'invalid type: string "5", expected u8'),
        (asset("x", value=1, whitelisted="true"), "expected a boolean"),
    ],
)
def test_asset_decode_errors(tmp_path: Path, entry: dict, expected: str) -> None:
    err = load_error(config_dir(tmp_path, {"assets_a.json": {"assets": [entry]}}))
    assert expected in err.message
    assert str(err).startswith(f"{tmp_path / 'assets_a.json'}: ")


def test_malformed_assets_json(tmp_path: Path) -> None:
    err = load_error(config_dir(tmp_path, {"assets_a.json": '{"assets": [}'}))
    assert err.message.startswith("invalid JSON")
    assert str(err).startswith(f"{tmp_path / 'assets_a.json'}: invalid JSON")

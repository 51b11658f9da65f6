"""Strict address and port parsing with the error texts of the Rust backends, and the items
of a rule's comma list (docs/behaviour.md, "Directive validation", "Address lists")."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from functools import lru_cache

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ParseError(ValueError):
    """A value that does not parse; the message is the user-facing detail."""


@lru_cache(maxsize=65536)
def parse_ip(text: str) -> IPAddress | None:
    if "%" in text:  # IPv6 scope ids are not addresses in Dsiem (Rust's IpAddr rejects them)
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@lru_cache(maxsize=65536)
def canonical_ip(text: str) -> str | None:
    """The canonical text of an address (`2002:c0a8:0001::1` -> `2002:c0a8:1::1`), or None."""
    try:  # a plain dotted quad (no leading zeros) is already canonical; ipaddress is slow
        socket.inet_pton(socket.AF_INET, text)
        return text
    except (OSError, ValueError):
        pass
    ip = parse_ip(text)
    return None if ip is None else str(ip)


IPNumber = tuple[int, int]  # (IP version, the address as an integer)
NetNumber = tuple[int, int, int]  # (IP version, network address, netmask) as integers


def ip_number(text: str) -> IPNumber | None:
    """The address of canonical text (as events carry) as a number, or None. Containment
    on numbers costs a mask and a compare; an `ipaddress` object costs microseconds to make."""
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        pass
    if "%" in text:  # no scope ids (see parse_ip)
        return None
    try:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        return None


def net_number(net: IPNetwork) -> NetNumber:
    return net.version, int(net.network_address), int(net.netmask)


def parse_u16(text: str) -> int:
    """Parse like Rust's `u16::from_str`, raising its messages."""
    if text == "":
        raise ParseError("cannot parse integer from empty string")
    digits = text[1:] if text[0] == "+" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ParseError("invalid digit found in string")
    value = int(digits)
    if value > 65535:
        raise ParseError("number too large to fit in target type")
    return value


def parse_cidr(text: str) -> IPNetwork:
    """A strict CIDR (host bits zero) or a bare address, which becomes a host network."""
    addr_text, slash, len_text = text.partition("/")
    addr = parse_ip(addr_text)
    if addr is None:
        raise ParseError("couldn't parse address in network: invalid IP address syntax")
    max_len = addr.max_prefixlen
    if not slash:
        return ipaddress.ip_network(f"{addr}/{max_len}")
    try:
        length = parse_u16(len_text)
    except ParseError as exc:
        raise ParseError(f"couldn't parse length in network: {exc}") from None
    if length > max_len:
        family = "Ipv4" if max_len == 32 else "Ipv6"
        raise ParseError(
            f"invalid length for network: Network length {length} is too long for "
            f"{family} (maximum: {max_len})"
        )
    try:
        return ipaddress.ip_network(f"{addr}/{length}", strict=True)
    except ValueError:
        raise ParseError("host part of address was not zero") from None


@lru_cache(maxsize=4096)
def try_parse_cidr(text: str) -> IPNetwork | None:
    try:
        return parse_cidr(text)
    except ParseError:
        return None


def list_items(value: str) -> Iterator[tuple[bool, str]]:
    """The items of a comma list (addresses, ports, comma custom data) as (negated, item):
    each item trimmed, and negated when it starts with `!`, every `!` of it then removed
    (docs/behaviour.md, "Address lists", "Ports")."""
    for raw in value.split(","):
        item = raw.strip()
        if item.startswith("!"):
            yield True, item.replace("!", "")
        else:
            yield False, item

"""Times, durations and addresses as `explain` writes them. Pure."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(epoch: int) -> str:
    """`2024-05-01 10:00:10 UTC`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: int) -> str:
    """`45 s`, `4 m 12 s`, `2 h 5 m`, `3 d 4 h`: the two largest units."""
    seconds = abs(seconds)
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if seconds >= size or (name == "s" and not parts):
            parts.append(f"{seconds // size} {name}")
            seconds %= size
        elif parts:
            parts.append(f"0 {name}")
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0 "):
        parts.pop()
    return " ".join(parts)


def endpoint(ip: str | None, port: int | None) -> str:
    """`10.0.0.1:22`, `[2002:c0a8:1::1]:22`, or the address alone for port 0."""
    if ip is None:
        return "?"
    if not port:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"

"""Address canonicalisation and containment on numbers agree with `ipaddress` on every input."""

from __future__ import annotations

import ipaddress

from hypothesis import example, given
from hypothesis import strategies as st

from dsiem_sql.config.netparse import canonical_ip, ip_number, net_number


def reference(text: str) -> str | None:
    if "%" in text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


octet = st.one_of(
    st.integers(0, 300).map(str),
    st.from_regex(r"0[0-9]{1,3}", fullmatch=True),  # leading zeros
    st.text("0123456789 +-x", max_size=4),
)
dotted = st.lists(octet, min_size=1, max_size=6).map(".".join)


@given(st.one_of(dotted, st.text(max_size=20)))
@example("1.2.3.4")
@example("0.0.0.0")
@example("255.255.255.255")
@example("01.2.3.4")
@example("1.2.3.4 ")
@example("1.2.3.4\x00")
@example("1.2.3.4%eth0")
@example("::ffff:1.2.3.4")
@example("2002:c0a8:0001::1")
def test_canonical_ip_agrees_with_ipaddress(text):
    assert canonical_ip(text) == reference(text)


def test_canonical_forms():
    assert canonical_ip("10.0.0.1") == "10.0.0.1"
    assert canonical_ip("2002:c0a8:0001::1") == "2002:c0a8:1::1"
    assert canonical_ip("10.0.0.01") is None
    assert canonical_ip("10.0.0") is None


@given(st.ip_addresses(), st.ip_addresses(), st.integers(0, 128))
def test_containment_on_numbers_is_ipaddress_containment(address, base, length):
    net = ipaddress.ip_network(f"{base}/{min(length, base.max_prefixlen)}", strict=False)
    version, number = ip_number(str(address))
    net_version, network, mask = net_number(net)
    assert (version == net_version and number & mask == network) == (address in net)

"""Client networks: the client's address (through the proxies the operator trusts) and the subnet it is in, which
the demo's per-address limits key on (policy, uploads).

Its own module, below both: uploads counts upload attempts per address and subnet, and policy (which imports uploads
to prune them) re-exports these.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence

SUBNET_BITS = {4: 24, 6: 64}  # what one household, office or cloud tenant usually holds


def subnet(address: str) -> str:
    """The network `address` is in (/24 for IPv4, /64 for IPv6), as text: '203.0.113.0/24'; '' for no address."""
    if not address:
        return ""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{SUBNET_BITS[ip.version]}", strict=False))


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted_hops: int) -> str:
    """The client's IP address: the connection's `peer`, or, behind `trusted_hops` proxies the operator trusts, the
    address the outermost trusted proxy saw, i.e. the `trusted_hops`-th entry from the right of X-Forwarded-For
    (entries to its left are whatever the client typed). '' when there is none, or it is not an IP address."""
    if trusted_hops > 0:
        hops = [h.strip() for line in forwarded_for for h in line.split(",") if h.strip()]
        peer = hops[-trusted_hops] if len(hops) >= trusted_hops else None  # too few: the proxy was bypassed
    try:
        return str(ipaddress.ip_address((peer or "").strip()))
    except ValueError:
        return ""

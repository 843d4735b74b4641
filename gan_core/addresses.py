"""Client networks: the subnet an address is in, which the demo's per-address limits also key on (policy, uploads).

Its own module, below both: uploads counts upload attempts per subnet, and policy (which imports uploads to prune
them) re-exports `subnet`.
"""
from __future__ import annotations

import ipaddress

SUBNET_BITS = {4: 24, 6: 64}  # what one household, office or cloud tenant usually holds


def subnet(address: str) -> str:
    """The network `address` is in (/24 for IPv4, /64 for IPv6), as text: '203.0.113.0/24'; '' for no address."""
    if not address:
        return ""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{SUBNET_BITS[ip.version]}", strict=False))

"""``rapport demo --host``: links a phone on the same network can open."""

from __future__ import annotations

import ipaddress

from plugin.demo.steps import LOOPBACK, reachable_address


def test_a_demo_on_every_interface_links_to_this_machines_network_address():
    address = ipaddress.ip_address(reachable_address("0.0.0.0"))  # noqa: S104
    assert not address.is_unspecified
    # Loopback only on a machine without any network route.
    assert address.is_private or address.is_global or str(address) == LOOPBACK


def test_a_demo_on_one_address_links_to_that_address():
    assert reachable_address(LOOPBACK) == LOOPBACK
    assert reachable_address("192.0.2.10") == "192.0.2.10"

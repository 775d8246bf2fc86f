"""Requests to URLs that users typed (webhook subscriptions): where they may go, and a pool that goes only there.

A subscription's URL is the owner's input, and ocicat runs inside the network, so a URL must not reach what only
ocicat can reach (server-side request forgery): loopback, link-local (the cloud metadata service at
169.254.169.254), private, shared, multicast and reserved addresses are refused, unless an administrator allowed
the host or a network (``OCICAT_DELIVERY_ALLOW``, comma-separated host names, addresses or CIDRs). The check is on
the addresses the name resolves to, when the subscription is saved and again for each connection, and the
connection goes to the address that was checked (a name that resolves elsewhere the second time, DNS rebinding,
cannot slip past). Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(ValueError):
    """A URL ocicat will not send to, and why (shown to the subscription's owner)."""


@dataclass(frozen=True)
class Guard:
    """Where outbound requests may go: public addresses, plus the allowed hosts and networks."""

    hosts: frozenset[str] = field(default_factory=frozenset)
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> "Guard":
        """``OCICAT_DELIVERY_ALLOW``: host names, addresses and CIDRs, comma-separated; ValueError names a bad one."""
        hosts, networks = set(), []
        for item in (part.strip() for part in (raw or "").split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                if not item.replace("-", "").replace(".", "").isalnum():
                    raise ValueError(f"not a host name, address or CIDR: {item!r}") from None
                hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def check_url(self, url: str) -> None:
        """Raise Refused unless ``url`` is an http(s) URL whose host resolves only to addresses it may reach."""
        try:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise Refused(f"not a URL: {exc}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused("the URL must be http:// or https:// with a host")
        if parts.username is not None or parts.password is not None:
            raise Refused("the URL must not hold credentials (the body is signed with the subscription's secret)")
        self.vetted_address(parts.hostname, port)

    def vetted_address(self, host: str, port: int) -> str:
        """The address to connect to for ``host``: every address it resolves to must be allowed (one bad answer
        among good ones refuses it), and the first is used."""
        name = host.lower().rstrip(".").strip("[]")
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Refused(f"{host} does not resolve: {exc}") from None
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
        for address in addresses:
            reason = self._refusal(name, ipaddress.ip_address(address.split("%")[0]))
            if reason:
                raise Refused(f"{host} resolves to {address}, {reason}; an administrator can allow it with "
                              "OCICAT_DELIVERY_ALLOW")
        return addresses[0]

    def _refusal(self, name: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        if name in self.hosts or any(address in network for network in self.networks):
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if address.is_loopback:
            return "a loopback address"
        if address.is_link_local:
            return "a link-local address (the cloud metadata service lives there)"
        if address.is_private or not address.is_global:
            return "a private or reserved address"
        if address.is_multicast:
            return "a multicast address"
        return None


def guarded_pool(guard: Guard, maxsize: int) -> urllib3.PoolManager:
    """A urllib3 pool manager whose every connection goes to an address ``guard`` vetted at connect time.

    urllib3 rather than requests: a webhook is one POST with no cookies, proxies or auth to merge, and requests'
    layers on top cost 0.35 ms of CPU per request here, 40% of a delivery's (bench/events.py). No proxy from the
    environment is used either: the guard must see the real destination.
    """

    class Connection(HTTPConnection):
        def _new_conn(self):
            self._dns_host = guard.vetted_address(self.host, self.port)
            return super()._new_conn()

    class TLSConnection(HTTPSConnection):  # the certificate is still checked against the host name
        def _new_conn(self):
            self._dns_host = guard.vetted_address(self.host, self.port)
            return super()._new_conn()

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    pools = urllib3.PoolManager(num_pools=max(10, maxsize), maxsize=maxsize, retries=False)
    pools.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}
    return pools

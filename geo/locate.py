"""Resolve a visitor's IP address to a country, province and city (the I/O adapter).

A MaxMind City database (GeoIP2 or GeoLite2, `settings.GEOIP_DATABASE`) is opened once
per process and shared: maxminddb readers are safe for concurrent look-ups from many
threads (maxminddb docs, "Thread Safety"), so one `Locator` serves the whole API.

Every answer is a `Location` whose `kind` says why it can or cannot be used for routing,
so the caller never has to interpret exceptions:

- ``ok``        found, in the home country (routing may use region and city)
- ``foreign``   found, in another country (stays on the main site)
- ``private``   not a public unicast address (LAN, loopback, reserved…); never looked up
- ``unknown``   a public address the database has no country for
- ``malformed`` not an IP address at all
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import geoip2.database
import geoip2.errors
from maxminddb import InvalidDatabaseError

if TYPE_CHECKING:
    from types import TracebackType

    from settings import Settings

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LocationKind = Literal["ok", "private", "unknown", "malformed", "foreign"]

MODE_AUTO = geoip2.database.MODE_AUTO
MODE_MEMORY = geoip2.database.MODE_MEMORY


@dataclass(frozen=True, slots=True)
class Location:
    """Where an address is; `kind` says whether routing can rely on it (see module doc)."""

    ip: str  # canonical text of the address (the input as given when malformed)
    kind: LocationKind
    country_code: str | None = None  # ISO 3166-1 alpha-2, e.g. "CN"
    region_code: str | None = None  # ISO 3166-2 of the first (province) level, e.g. "CN-BJ"
    city: str | None = None  # English name as in the database, e.g. "Beijing"
    network: str | None = None  # the database network that matched, for the audit trail


def parse_ip(text: str) -> IPAddress | None:
    """The address in `text`, or None; IPv4-mapped IPv6 (``::ffff:a.b.c.d``) becomes IPv4.

    Dual-stack sockets report IPv4 peers in mapped form; unwrapping makes them match IPv4
    proxy networks and look up as the IPv4 address they are.
    """
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_public(addr: IPAddress) -> bool:
    """True for a globally routable unicast address, the only kind worth looking up.

    `is_global` alone lets multicast and some reserved ranges through on Python 3.11.
    """
    return addr.is_global and not (addr.is_multicast or addr.is_reserved)


class Locator:
    """A City database opened once; `resolve` answers for one address at a time."""

    def __init__(
        self,
        database: str | os.PathLike[str],
        *,
        home_country: str = "CN",
        mode: int = MODE_AUTO,
    ) -> None:
        path = os.fspath(database)
        if not path:
            raise ValueError("no GeoIP database configured (GEOIP_DATABASE is empty)")
        # English only: region codes are language-neutral and city names are matched
        # against the English names the sub-site regions and stores are configured with.
        self._reader = geoip2.database.Reader(path, locales=["en"], mode=mode)
        meta = self._reader.metadata()
        if "City" not in meta.database_type:
            self._reader.close()
            raise ValueError(
                f"{path}: a City database is needed for regions and cities, "
                f"this one is {meta.database_type!r}"
            )
        self._has_ipv6 = meta.ip_version == 6
        self.home_country = home_country.strip().upper()
        self.database_type: str = meta.database_type
        self.build_epoch: int = meta.build_epoch

    @classmethod
    def from_settings(cls, cfg: Settings) -> Locator:
        """The locator the running system uses (GEOIP_DATABASE, DEFAULT_COUNTRY)."""
        return cls(cfg.GEOIP_DATABASE, home_country=cfg.DEFAULT_COUNTRY)

    def resolve(self, ip: str | None) -> Location:
        """Locate `ip`; never raises for bad input, the `kind` says what went wrong."""
        if ip is None:
            return Location(ip="", kind="unknown")
        addr = parse_ip(ip)
        if addr is None:
            return Location(ip=ip, kind="malformed")
        text = str(addr)
        if not is_public(addr):
            return Location(ip=text, kind="private")
        if addr.version == 6 and not self._has_ipv6:
            return Location(ip=text, kind="unknown")  # an IPv4-only database cannot know
        try:
            record = self._reader.city(addr)
        except geoip2.errors.AddressNotFoundError:
            return Location(ip=text, kind="unknown")
        except ValueError:  # pragma: no cover - parse_ip already rejected what maxminddb would
            return Location(ip=text, kind="malformed")
        except InvalidDatabaseError:
            # A damaged file must not take the site down: visitors stay on the main site.
            log.exception("GeoIP database is damaged; treating %s as unknown", text)
            return Location(ip=text, kind="unknown")

        country = record.country.iso_code
        # Subdivisions run from largest to smallest: the first is the province level.
        subdivision = record.subdivisions[0].iso_code if record.subdivisions else None
        network = record.traits.network
        kind: LocationKind
        if country is None:
            kind = "unknown"  # e.g. anonymous proxies: only a continent or registered country
        elif country.upper() == self.home_country:
            kind = "ok"
        else:
            kind = "foreign"
        return Location(
            ip=text,
            kind=kind,
            country_code=country,
            region_code=f"{country}-{subdivision}" if country and subdivision else None,
            city=record.city.names.get("en"),
            network=str(network) if network is not None else None,
        )

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Locator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@functools.lru_cache(maxsize=32)
def _networks(trusted: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in trusted)


def _parse_hop(text: str) -> IPAddress | None:
    """One address as proxies write it: bare, ``a.b.c.d:port`` or ``[v6]`` / ``[v6]:port``."""
    value = text.strip()
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1 :] if end != -1 else None
        if rest is None or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # IPv4 with a port; IPv6 always has at least two colons
        value, _, port = value.partition(":")
        if not port.isdigit():
            return None
    return parse_ip(value)


def _trusted(addr: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(addr in net for net in networks)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: Sequence[str]) -> str | None:
    """The visitor's address: X-Forwarded-For is believed only as far as our proxies wrote it.

    The header is used only when the TCP peer is a trusted proxy. It is then read from the
    right: each trusted proxy appended the address it received from, so the first entry
    that is not a trusted proxy is the client; anything to its left was supplied by the
    client and could be forged. If every entry is a trusted proxy, the leftmost is the
    client (a request from inside our own network). An entry that is not an address ends
    the walk with None: the chain cannot be trusted past it. Several X-Forwarded-For
    headers must be joined with "," in order before the call (RFC 9110, 5.3).

    Returns the canonical text of the address, or None when the peer is missing or not an
    address (e.g. a Unix socket).
    """
    peer_addr = _parse_hop(peer) if peer else None
    if peer_addr is None:
        return None
    networks = _networks(tuple(trusted))
    if not forwarded_for or not _trusted(peer_addr, networks):
        return str(peer_addr)
    hops = [hop for hop in forwarded_for.split(",") if hop.strip()]
    addr: IPAddress = peer_addr
    for hop in reversed(hops):
        parsed = _parse_hop(hop)
        if parsed is None:
            return None
        addr = parsed
        if not _trusted(addr, networks):
            return str(addr)
    return str(addr)


@functools.cache
def _open_shared(path: str, home_country: str) -> Locator:
    return Locator(path, home_country=home_country)


def shared_locator() -> Locator:
    """The process's one `Locator` for the configured database (opened on first use).

    Keyed on the database path and home country, so a changed setting (tests) opens the
    new database once; a failed open is not cached and raises again on the next call
    (OSError for a missing file, ValueError or InvalidDatabaseError for a wrong one).
    """
    from settings import settings

    return _open_shared(settings.GEOIP_DATABASE, settings.DEFAULT_COUNTRY.strip().upper())

"""IP location: the visitor's real address and where it is, from a MaxMind City database.

The only I/O here is reading the database; what to do with a location is decided in
`dispatch.routing`, which stays pure.
"""

from geo.locate import Location, LocationKind, Locator, client_ip, parse_ip, shared_locator

__all__ = ["Location", "LocationKind", "Locator", "client_ip", "parse_ip", "shared_locator"]

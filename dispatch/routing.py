"""Sub-site and store routing: which sub-site a visitor belongs to and which store an order goes to.

Pure functions over small frozen dataclasses; the API and activities load the rows, call
these and store the returned reasons. Nothing here reads a database, a header or a clock.

Rules decided here (the SPEC leaves them open):

- Hosts are compared case-insensitively, without port and trailing dot, against each
  sub-site's `domain`. The bare root domain and ``www.<root>`` are the main site. An
  inactive sub-site is not served: its host counts as no sub-site.
- A sub-site covers a region when one of its region entries has that ISO 3166-2 code.
  Among the sub-sites covering the visitor's region the best match wins: an entry that
  lists the visitor's city, then an entry without a city list (the whole region), then an
  entry that lists other cities (the region is still that sub-site's, and GeoIP often
  knows the province but not the city). Ties go to the lowest sub-site id, so the answer
  never depends on query order. City names compare case-insensitively, in English as the
  GeoIP database spells them.
- Redirects happen only from the main domain. An explicit choice beats the IP: first
  ``?site=``, then the site cookie; ``main`` (or ``www``) means "stay on the main site",
  a sub-site code means "go there" (the choice is sticky, so the visitor is not sent back
  and forth). A choice naming no active sub-site is ignored and noted in the reason.
  Redirects keep the path, the query (without the consumed ``site`` parameter) and the
  port the visitor used.
- Store precedence (SPEC module 1): named store → the customer's chosen store → the
  preferred consultant's store → the store that last served the customer → the order's
  sub-site's store covering the visitor's city → that sub-site's default store → the
  head-office default store. Every referenced store must be in `stores`; one that is not,
  or is inactive, is skipped with the reason in the trail. Several stores covering the
  city: the sub-site's default store if it is one of them, else the lowest id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote, unquote_plus

MAIN_SITE = "main"  # the site choice (cookie or ?site=) meaning "the main site"
SITE_PARAM = "site"  # the query parameter carrying a site choice

SubsiteOrigin = Literal["store", "host", "ip"]
_ORIGIN: dict[SubsiteOrigin, str] = {
    "store": "the store named on the order",
    "host": "host",
    "ip": "IP location",
}


@dataclass(frozen=True, slots=True)
class RegionCover:
    """One entry of a sub-site's `regions`: an ISO 3166-2 code, optionally some cities."""

    code: str
    cities: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SiteInfo:
    id: int
    code: str
    domain: str
    regions: tuple[RegionCover, ...] = ()
    active: bool = True


@dataclass(frozen=True, slots=True)
class StoreInfo:
    id: int
    subsite_id: int
    region_code: str
    city: str
    is_default: bool = False
    active: bool = True


class Located(Protocol):
    """What routing needs from a location (`geo.Location` satisfies it)."""

    @property
    def kind(self) -> str: ...

    @property
    def region_code(self) -> str | None: ...

    @property
    def city(self) -> str | None: ...


def regions_from_json(raw: Iterable[Mapping[str, Any]]) -> tuple[RegionCover, ...]:
    """`SubSite.regions` JSON → `RegionCover`s; entries without a code are dropped."""
    covers: list[RegionCover] = []
    for entry in raw:
        code = entry.get("code")
        if not isinstance(code, str) or not code.strip():
            continue
        cities = entry.get("cities") or ()
        covers.append(
            RegionCover(
                code=code.strip(),
                cities=tuple(c.strip() for c in cities if isinstance(c, str) and c.strip()),
            )
        )
    return tuple(covers)


def _fold(text: str | None) -> str:
    return (text or "").strip().casefold()


def split_host(host: str) -> tuple[str, str | None]:
    """``"BJ.Example.com.:8443"`` → ``("bj.example.com", "8443")``; IPv6 literals keep brackets."""
    value = host.strip().lower()
    port: str | None = None
    if value.startswith("["):
        end = value.find("]")
        if end != -1:
            rest = value[end + 1 :]
            if rest.startswith(":") and rest[1:].isdigit():
                port = rest[1:]
            value = value[: end + 1]
    else:
        name, sep, maybe_port = value.rpartition(":")
        if sep and maybe_port.isdigit():
            value, port = name, maybe_port
    return value.rstrip("."), port


def is_main_host(host: str, root_domain: str) -> bool:
    """The bare root domain or ``www.<root>``: the main site."""
    name, _ = split_host(host)
    root, _ = split_host(root_domain)
    return name in (root, f"www.{root}")


def subsite_for_host(host: str, root_domain: str, subsites: Sequence[SiteInfo]) -> SiteInfo | None:
    """The active sub-site served on `host`; None for the main site or a host we don't serve."""
    if is_main_host(host, root_domain):
        return None
    name, _ = split_host(host)
    for site in subsites:
        if site.active and split_host(site.domain)[0] == name:
            return site
    return None


def _region_match(
    region_code: str | None, city: str | None, subsites: Sequence[SiteInfo]
) -> tuple[SiteInfo, str] | None:
    """The covering sub-site and how it covers (see the module doc for the tiers)."""
    region = _fold(region_code)
    if not region:
        return None
    town = _fold(city)
    best: tuple[int, int, SiteInfo, str] | None = None  # (tier, site id, site, how)
    for site in subsites:
        if not site.active:
            continue
        for cover in site.regions:
            if _fold(cover.code) != region:
                continue
            listed = {_fold(c) for c in cover.cities}
            if town and town in listed:
                candidate = (0, site.id, site, f"lists {city} in {region_code}")
            elif not listed:
                candidate = (1, site.id, site, f"covers all of {region_code}")
            else:
                candidate = (2, site.id, site, f"covers {region_code} (other cities listed)")
            if best is None or candidate[:2] < best[:2]:
                best = candidate
    return (best[2], best[3]) if best else None


def subsite_for_region(
    region_code: str | None, city: str | None, subsites: Sequence[SiteInfo]
) -> SiteInfo | None:
    """The active sub-site covering the region, preferring one that lists the city."""
    match = _region_match(region_code, city, subsites)
    return match[0] if match else None


@dataclass(frozen=True, slots=True)
class SiteMatch:
    site: SiteInfo
    origin: SubsiteOrigin  # how the order's sub-site was found, for the reason


def subsite_for_order(
    host: str | None,
    root_domain: str,
    location: Located | None,
    subsites: Sequence[SiteInfo],
    *,
    named_store_subsite_id: int | None = None,
) -> SiteMatch | None:
    """The order's sub-site: the named store's (so a named store that cannot take the order
    falls back to its own sub-site's default, not head office's), else the host it was
    placed on, else the visitor's located region."""
    named = next((s for s in subsites if s.id == named_store_subsite_id and s.active), None)
    if named is not None:
        return SiteMatch(named, "store")
    if host:
        site = subsite_for_host(host, root_domain, subsites)
        if site is not None:
            return SiteMatch(site, "host")
    if location is not None and location.kind == "ok":
        site = subsite_for_region(location.region_code, location.city, subsites)
        if site is not None:
            return SiteMatch(site, "ip")
    return None


# --- redirect from the main domain -------------------------------------------------------

# Everything that may appear literally in a URL path or query; the rest (controls, spaces,
# non-ASCII) is percent-encoded, so a Location header can never be split or smuggled.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True, slots=True)
class RedirectDecision:
    """Where to send a visitor (url None: stay) and why."""

    url: str | None
    site_code: str | None  # the sub-site redirected to
    reason: str
    remember: str | None = None  # a choice from ?site= the caller should keep in the cookie


def _without_site_param(query: str) -> str:
    parts = [p for p in query.split("&") if unquote_plus(p.split("=", 1)[0]) != SITE_PARAM]
    return "&".join(parts)


def _url(scheme: str, site: SiteInfo, port: str | None, path: str, query: str) -> str:
    domain, _ = split_host(site.domain)
    netloc = f"{domain}:{port}" if port else domain
    path = quote(path if path.startswith("/") else f"/{path}", safe=_PATH_SAFE)
    query = quote(_without_site_param(query), safe=_QUERY_SAFE)
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def redirect_decision(
    *,
    host: str,
    path: str,
    query: str,
    scheme: str,
    root_domain: str,
    location: Located | None,
    subsites: Sequence[SiteInfo],
    cookie_site: str | None = None,
    site_param: str | None = None,
) -> RedirectDecision:
    """Decide the 302 for a request (`path` without the query, `query` without the "?")."""
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be http or https, not {scheme!r}")
    if not is_main_host(host, root_domain):
        return RedirectDecision(None, None, "not on the main domain")
    _, port = split_host(host)
    by_code = {s.code.casefold(): s for s in subsites if s.active}
    notes: list[str] = []

    def decided(site: SiteInfo | None, why: str, remember: str | None = None) -> RedirectDecision:
        reason = "; ".join([*notes, why])
        if site is None:
            return RedirectDecision(None, None, reason, remember)
        if is_main_host(site.domain, root_domain):  # a sub-site on the main domain: no loop
            return RedirectDecision(None, None, f"{reason}; its domain is the main site", remember)
        return RedirectDecision(_url(scheme, site, port, path, query), site.code, reason, remember)

    for source, value in (("?site=", site_param), ("cookie", cookie_site)):
        choice = _fold(value)
        if not choice:
            continue
        remember_it = source == "?site="
        if choice in (MAIN_SITE, "www"):
            return decided(
                None, f"visitor chose the main site ({source})", MAIN_SITE if remember_it else None
            )
        site = by_code.get(choice)
        if site is not None:
            return decided(
                site,
                f"visitor chose sub-site {site.code} ({source})",
                site.code if remember_it else None,
            )
        notes.append(f"{source} names no active sub-site {value!r}, ignored")

    if location is None:
        return decided(None, "visitor not located")
    if location.kind != "ok":
        return decided(None, f"visitor location is {location.kind}")
    match = _region_match(location.region_code, location.city, subsites)
    where = " ".join(p for p in (location.region_code, location.city) if p) or "no region"
    if match is None:
        return decided(None, f"no sub-site covers {where}")
    site, how = match
    return decided(site, f"IP located in {where}: sub-site {site.code} {how}")


def redirect_target(
    *,
    host: str,
    path: str,
    query: str,
    scheme: str,
    root_domain: str,
    location: Located | None,
    subsites: Sequence[SiteInfo],
    cookie_site: str | None = None,
    site_param: str | None = None,
) -> str | None:
    """The URL to 302 to, or None to stay; `redirect_decision` also says why."""
    return redirect_decision(
        host=host,
        path=path,
        query=query,
        scheme=scheme,
        root_domain=root_domain,
        location=location,
        subsites=subsites,
        cookie_site=cookie_site,
        site_param=site_param,
    ).url


# --- order diversion: one store per order ------------------------------------------------

StoreStep = Literal[
    "named",
    "wished",
    "consultant",
    "last_served",
    "subsite_city",
    "subsite_default",
    "head_office",
    "none",
]


@dataclass(frozen=True, slots=True)
class TrailStep:
    """One precedence step considered: the store looked at (if any) and what came of it."""

    step: StoreStep
    store_id: int | None
    outcome: str  # "chosen", or why the step was skipped


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """The store an order is tied to (None only if no active store exists at all)."""

    store_id: int | None
    step: StoreStep
    reason: str
    trail: tuple[TrailStep, ...]

    def as_reason(self) -> dict[str, Any]:
        return asdict(self)


def choose_store(
    *,
    stores: Sequence[StoreInfo],
    named_store_id: int | None = None,
    wished_store_id: int | None = None,
    consultant_id: int | None = None,
    consultant_store_id: int | None = None,
    last_store_id: int | None = None,
    subsite: SiteInfo | None = None,
    subsite_origin: SubsiteOrigin | None = None,
    region_code: str | None = None,
    city: str | None = None,
    head_office_store_id: int | None = None,
) -> StoreChoice:
    """Tie an order to one store, walking the precedence in the module doc.

    `consultant_store_id` is the current store of the staff member the customer asked
    for (`consultant_id`, named in the reason); `subsite_origin` says whether `subsite`
    came from the order's host or from the visitor's IP.
    """
    by_id = {s.id: s for s in stores}
    trail: list[TrailStep] = []

    def choose(step: StoreStep, store_id: int, reason: str) -> StoreChoice:
        trail.append(TrailStep(step, store_id, "chosen"))
        return StoreChoice(store_id, step, reason, tuple(trail))

    def usable(step: StoreStep, store_id: int | None, absent: str) -> bool:
        if store_id is None:
            trail.append(TrailStep(step, None, absent))
            return False
        store = by_id.get(store_id)
        if store is None:
            trail.append(TrailStep(step, store_id, "unknown store"))
            return False
        if not store.active:
            trail.append(TrailStep(step, store_id, "store inactive"))
            return False
        return True

    direct: tuple[tuple[StoreStep, int | None, str, str], ...] = (
        ("named", named_store_id, "no store named on the order", "store named on the order"),
        ("wished", wished_store_id, "customer chose no store", "store the customer chose"),
        (
            "consultant",
            consultant_store_id,
            "no preferred consultant's store",
            f"store of the customer's preferred consultant #{consultant_id}"
            if consultant_id is not None
            else "store of the customer's preferred consultant",
        ),
        (
            "last_served",
            last_store_id,
            "no store served the customer before",
            "store that last served the customer",
        ),
    )
    for step, store_id, absent, reason in direct:
        if usable(step, store_id, absent) and store_id is not None:
            return choose(step, store_id, reason)

    if subsite is None or not subsite.active:
        why = (
            "no sub-site for the order" if subsite is None else f"sub-site {subsite.code} inactive"
        )
        trail.append(TrailStep("subsite_city", None, why))
        trail.append(TrailStep("subsite_default", None, why))
    else:
        label = f"sub-site {subsite.code}" + (
            f" (from {_ORIGIN[subsite_origin]})" if subsite_origin else ""
        )
        own = sorted((s for s in stores if s.subsite_id == subsite.id), key=lambda s: s.id)
        town, region = _fold(city), _fold(region_code)
        if not town:
            trail.append(TrailStep("subsite_city", None, "visitor's city unknown"))
        else:
            covering = [
                s
                for s in own
                if _fold(s.city) == town and (not region or _fold(s.region_code) == region)
            ]
            for s in covering:
                if not s.active:
                    trail.append(TrailStep("subsite_city", s.id, "store inactive"))
            active = sorted(
                (s for s in covering if s.active), key=lambda s: (not s.is_default, s.id)
            )
            if active:
                return choose(
                    "subsite_city", active[0].id, f"{label} store covering {active[0].city}"
                )
            if not covering:
                trail.append(TrailStep("subsite_city", None, f"no store of {label} in {city}"))

        defaults = [s for s in own if s.is_default]
        if not defaults:
            trail.append(TrailStep("subsite_default", None, f"{label} has no default store"))
        for s in defaults:
            if usable("subsite_default", s.id, ""):
                return choose("subsite_default", s.id, f"{label} default store")

    if usable("head_office", head_office_store_id, "no head-office default store") and (
        head_office_store_id is not None
    ):
        return choose("head_office", head_office_store_id, "head-office default store")

    trail.append(TrailStep("none", None, "no active store found"))
    return StoreChoice(None, "none", "no active store found", tuple(trail))

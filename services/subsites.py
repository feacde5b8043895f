"""Sub-sites: what routing, the geo look-up and the redirect need to know of each."""

from __future__ import annotations

from collections.abc import Iterable

from dispatch.routing import SiteInfo, regions_from_json
from models import SubSite


def site_infos(subsites: Iterable[SubSite]) -> list[SiteInfo]:
    """What routing needs to know of each sub-site (also the API's geo resolve and redirect)."""
    return [
        SiteInfo(
            id=s.id,
            code=s.code,
            domain=s.domain,
            regions=regions_from_json(s.regions),
            active=s.active,
        )
        for s in subsites
        if s.id is not None
    ]

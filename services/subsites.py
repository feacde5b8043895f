"""Sub-sites: what routing, the geo look-up and the redirect need to know of each, and the
rules their setup keeps: real ISO 3166-2 regions, no region covered by two sub-sites, every
store inside its sub-site's coverage."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pycountry
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatch.routing import RegionCover, SiteInfo, regions_from_json
from models import Store, SubSite
from services.errors import Conflict, Invalid


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


def real_subdivision(code: str) -> str:
    """`code` if it is a real ISO 3166-2 subdivision (pycountry's list), else ValueError."""
    if pycountry.subdivisions.get(code=code) is None:
        raise ValueError(f"{code!r} is not a real ISO 3166-2 subdivision code")
    return code


def _overlap(a: RegionCover, b: RegionCover) -> bool:
    """Two entries of one region overlap unless both list cities and none in common."""
    if a.code != b.code:
        return False
    if not a.cities or not b.cities:
        return True
    return bool({c.casefold() for c in a.cities} & {c.casefold() for c in b.cities})


async def check_coverage(
    *, db: AsyncSession, regions: list[dict[str, Any]], subsite_id: int | None
) -> None:
    """Refuse (409) regions another sub-site covers already, naming it; and (409) dropping a
    region one of this sub-site's stores lies in."""
    mine = regions_from_json(regions)
    others = (await db.exec(select(SubSite).where(col(SubSite.id) != (subsite_id or -1)))).all()
    for other in others:
        for theirs in regions_from_json(other.regions):
            clash = next((r for r in mine if _overlap(r, theirs)), None)
            if clash is not None:
                where = f" ({', '.join(theirs.cities)})" if theirs.cities else ""
                raise Conflict(
                    f"regions: {clash.code}{where} is covered by sub-site {other.code} "
                    f"(#{other.id}) already; two sub-sites may not cover the same region"
                )
    if subsite_id is None:
        return
    codes = {r.code for r in mine}
    stranded = (
        await db.exec(
            select(Store).where(
                Store.subsite_id == subsite_id, col(Store.region_code).not_in(codes or {""})
            )
        )
    ).first()
    if stranded is not None:
        raise Conflict(
            f"regions: store {stranded.code} (#{stranded.id}) lies in {stranded.region_code},"
            " which these regions leave out; move the store first"
        )


async def check_store_region(*, db: AsyncSession, subsite_id: int, region_code: str) -> None:
    """Refuse (422) a store region outside its sub-site's coverage."""
    site = await db.get(SubSite, subsite_id)
    if site is None:
        raise Invalid.field("body", "subsite_id", msg=f"no sub-site {subsite_id}")
    covered = sorted({r.code for r in regions_from_json(site.regions)})
    if region_code not in covered:
        raise Invalid.field(
            "body",
            "region_code",
            msg=f"{region_code} lies outside sub-site {site.code}, which covers "
            + (", ".join(covered) if covered else "no region yet"),
        )

"""Sub-site, redirect and store routing (pure), and the client address behind proxies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from dispatch.routing import (
    RegionCover,
    SiteInfo,
    StoreInfo,
    choose_store,
    is_main_host,
    redirect_decision,
    redirect_target,
    regions_from_json,
    split_host,
    subsite_for_host,
    subsite_for_order,
    subsite_for_region,
)
from geo.locate import Location, LocationKind, client_ip

ROOT = "o2o.test"

BJ = SiteInfo(1, "bj", "bj.o2o.test", (RegionCover("CN-BJ", ("Beijing",)),))
SH = SiteInfo(2, "sh", "sh.o2o.test", (RegionCover("CN-SH"), RegionCover("CN-JS", ("Suzhou",))))
GZ = SiteInfo(3, "gz", "gz.o2o.test", (RegionCover("CN-GD", ("Guangzhou",)),))
SZ = SiteInfo(4, "sz", "SZ.o2o.test", (RegionCover("cn-gd", ("shenzhen",)),))
HQ = SiteInfo(5, "hq", "hq.o2o.test")
OLD = SiteInfo(6, "old", "old.o2o.test", (RegionCover("CN-SC"),), active=False)
JS = SiteInfo(7, "js", "js.o2o.test", (RegionCover("CN-JS"),))
SITES = (BJ, SH, GZ, SZ, HQ, OLD, JS)


def loc(region: str | None, city: str | None = None, kind: LocationKind = "ok") -> Location:
    country = region.split("-")[0] if region else "CN"
    return Location(ip="1.2.3.4", kind=kind, country_code=country, region_code=region, city=city)


# --- hosts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("bj.o2o.test", ("bj.o2o.test", None)),
        ("BJ.O2O.Test:8443", ("bj.o2o.test", "8443")),
        ("bj.o2o.test.", ("bj.o2o.test", None)),
        ("bj.o2o.test.:80", ("bj.o2o.test", "80")),
        ("[::1]:8000", ("[::1]", "8000")),
        ("[::1]", ("[::1]", None)),
        ("127.0.0.1:8000", ("127.0.0.1", "8000")),
        ("host:notaport", ("host:notaport", None)),
    ],
)
def test_split_host(host: str, expected: tuple[str, str | None]) -> None:
    assert split_host(host) == expected


@pytest.mark.parametrize(
    ("host", "code"),
    [
        ("bj.o2o.test", "bj"),
        ("BJ.O2O.TEST", "bj"),
        ("bj.o2o.test:8000", "bj"),
        ("bj.o2o.test.", "bj"),
        ("sz.o2o.test", "sz"),  # the stored domain's case does not matter either
        ("o2o.test", None),  # the main site
        ("www.o2o.test", None),
        ("WWW.o2o.test:8000", None),
        ("old.o2o.test", None),  # inactive sub-site
        ("xx.o2o.test", None),  # no such sub-site
        ("bj.o2o.test.evil.example", None),
        ("evilbj.o2o.test", None),
        ("127.0.0.1:8000", None),
        ("", None),
    ],
)
def test_subsite_for_host(host: str, code: str | None) -> None:
    site = subsite_for_host(host, ROOT, SITES)
    assert (site.code if site else None) == code


def test_is_main_host() -> None:
    assert is_main_host("O2O.test:8000", ROOT)
    assert is_main_host("www.o2o.test", "O2O.TEST")
    assert not is_main_host("bj.o2o.test", ROOT)
    assert not is_main_host("www.bj.o2o.test", ROOT)
    assert not is_main_host("localhost:8000", ROOT)


# --- regions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "city", "code"),
    [
        ("CN-BJ", "Beijing", "bj"),
        ("cn-bj", "BEIJING", "bj"),
        ("CN-BJ", None, "bj"),  # province known, city not: the region is still bj's
        ("CN-SH", "Shanghai", "sh"),
        ("CN-SH", None, "sh"),
        # a listed city beats a whole-region entry, whatever the ids
        ("CN-JS", "Suzhou", "sh"),
        # a whole-region entry (js, id 7) beats an entry listing other cities (sh, id 2)
        ("CN-JS", "Nanjing", "js"),
        # listed city beats the lower id (gz, id 3, lists Guangzhou only)
        ("CN-GD", "Shenzhen", "sz"),
        ("CN-GD", "Guangzhou", "gz"),
        # neither lists Dongguan: both cover the province, the lower id wins
        ("CN-GD", "Dongguan", "gz"),
        ("CN-SC", "Chengdu", None),  # only an inactive sub-site covers it
        ("CN-ZJ", "Hangzhou", None),
        (None, "Beijing", None),  # a city alone is not enough (names repeat across provinces)
        ("", None, None),
    ],
)
def test_subsite_for_region(region: str | None, city: str | None, code: str | None) -> None:
    site = subsite_for_region(region, city, SITES)
    assert (site.code if site else None) == code


def test_region_tie_does_not_depend_on_order() -> None:
    assert subsite_for_region("CN-GD", "Dongguan", (SZ, GZ)) == GZ
    assert subsite_for_region("CN-GD", "Dongguan", (GZ, SZ)) == GZ


def test_regions_from_json() -> None:
    raw: list[dict[str, Any]] = [
        {"code": "CN-BJ", "cities": ["Beijing", " ", 3]},
        {"code": " CN-SH "},
        {"cities": ["Nowhere"]},
        {"code": ""},
        {"code": "CN-JS", "cities": None},
    ]
    assert regions_from_json(raw) == (
        RegionCover("CN-BJ", ("Beijing",)),
        RegionCover("CN-SH"),
        RegionCover("CN-JS"),
    )


def test_subsite_for_order_prefers_the_host() -> None:
    match = subsite_for_order("bj.o2o.test", ROOT, loc("CN-SH", "Shanghai"), SITES)
    assert match is not None and (match.site.code, match.origin) == ("bj", "host")
    match = subsite_for_order("o2o.test", ROOT, loc("CN-SH", "Shanghai"), SITES)
    assert match is not None and (match.site.code, match.origin) == ("sh", "ip")
    match = subsite_for_order(None, ROOT, loc("CN-SH", "Shanghai"), SITES)
    assert match is not None and match.origin == "ip"
    assert subsite_for_order("o2o.test", ROOT, loc("US-CA", kind="foreign"), SITES) is None
    assert subsite_for_order("o2o.test", ROOT, loc("CN-SH", kind="private"), SITES) is None
    assert subsite_for_order("o2o.test", ROOT, None, SITES) is None


# --- redirect from the main domain ----------------------------------------------------------


def redirect(
    location: Location | None,
    *,
    host: str = "o2o.test",
    path: str = "/tours/5",
    query: str = "utm=x&page=2",
    scheme: str = "https",
    cookie: str | None = None,
    param: str | None = None,
    sites: tuple[SiteInfo, ...] = SITES,
) -> tuple[str | None, str | None, str]:
    d = redirect_decision(
        host=host,
        path=path,
        query=query,
        scheme=scheme,
        root_domain=ROOT,
        location=location,
        subsites=sites,
        cookie_site=cookie,
        site_param=param,
    )
    return d.url, d.remember, d.reason


def test_redirect_by_ip_keeps_path_and_query() -> None:
    url, remember, reason = redirect(loc("CN-SH", "Shanghai"))
    assert url == "https://sh.o2o.test/tours/5?utm=x&page=2"
    assert remember is None
    assert "CN-SH Shanghai" in reason and "sh" in reason


def test_redirect_from_www_with_port_and_http() -> None:
    url, _, _ = redirect(loc("CN-BJ", "Beijing"), host="WWW.o2o.test:8000", scheme="http")
    assert url == "http://bj.o2o.test:8000/tours/5?utm=x&page=2"


def test_redirect_uses_the_stored_domain_lowercased() -> None:
    url, _, _ = redirect(loc("CN-GD", "Shenzhen"), query="")
    assert url == "https://sz.o2o.test/tours/5"


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("", "", "https://bj.o2o.test/"),
        ("/", "a=1", "https://bj.o2o.test/?a=1"),
        ("/a%20b/c", "q=%E5%8C%97&x", "https://bj.o2o.test/a%20b/c?q=%E5%8C%97&x"),
        ("/北京", "", "https://bj.o2o.test/%E5%8C%97%E4%BA%AC"),
        ("/x\r\nSet-Cookie: a=b", "", "https://bj.o2o.test/x%0D%0ASet-Cookie:%20a=b"),
        ("//evil.example/", "", "https://bj.o2o.test//evil.example/"),
        ("/p", "site=xx&a=1&site=yy&b=2", "https://bj.o2o.test/p?a=1&b=2"),
        ("/p", "site=xx", "https://bj.o2o.test/p"),
        ("/p", "website=1&a=1", "https://bj.o2o.test/p?website=1&a=1"),
    ],
)
def test_redirect_url_building(path: str, query: str, expected: str) -> None:
    assert redirect(loc("CN-BJ", "Beijing"), path=path, query=query)[0] == expected


@pytest.mark.parametrize("kind", ["private", "unknown", "malformed", "foreign"])
def test_unusable_locations_stay(kind: LocationKind) -> None:
    url, _, reason = redirect(loc("CN-BJ", "Beijing", kind=kind))
    assert url is None
    assert kind in reason


def test_unlocated_and_uncovered_stay() -> None:
    assert redirect(None)[0] is None
    url, _, reason = redirect(loc("CN-ZJ", "Hangzhou"))
    assert url is None and "CN-ZJ Hangzhou" in reason
    assert redirect(loc(None))[0] is None  # home country without a province
    assert redirect(loc("CN-SC", "Chengdu"))[0] is None  # covered only by an inactive site


@pytest.mark.parametrize(
    "host", ["bj.o2o.test", "sh.o2o.test:8000", "api.internal", "127.0.0.1:8000", "o2o.test.evil"]
)
def test_only_the_main_domain_redirects(host: str) -> None:
    url, _, reason = redirect(loc("CN-SH", "Shanghai"), host=host)
    assert url is None and reason == "not on the main domain"


def test_site_param_goes_there_and_is_remembered() -> None:
    url, remember, reason = redirect(loc("CN-SH", "Shanghai"), param="BJ", query="site=BJ&a=1")
    assert url == "https://bj.o2o.test/tours/5?a=1"
    assert remember == "bj"
    assert "chose sub-site bj" in reason


def test_site_param_main_stays_and_is_remembered() -> None:
    url, remember, _ = redirect(loc("CN-SH", "Shanghai"), param="main", cookie="bj")
    assert (url, remember) == (None, "main")
    assert redirect(loc("CN-SH", "Shanghai"), param="www")[:2] == (None, "main")


def test_cookie_choice_is_respected() -> None:
    assert redirect(loc("CN-SH", "Shanghai"), cookie="main")[:2] == (None, None)
    url, remember, _ = redirect(loc("CN-SH", "Shanghai"), cookie="gz")
    assert url == "https://gz.o2o.test/tours/5?utm=x&page=2"
    assert remember is None  # already in the cookie
    # an unlocated visitor with a choice still goes to it
    assert redirect(None, cookie="gz")[0] == "https://gz.o2o.test/tours/5?utm=x&page=2"


def test_site_param_beats_cookie() -> None:
    assert redirect(None, param="sh", cookie="gz")[0] == "https://sh.o2o.test/tours/5?utm=x&page=2"


def test_unknown_choices_are_ignored_with_a_note() -> None:
    url, remember, reason = redirect(loc("CN-SH", "Shanghai"), param="nope", cookie="old")
    assert url == "https://sh.o2o.test/tours/5?utm=x&page=2"  # fell through to the IP
    assert remember is None
    assert "'nope'" in reason and "'old'" in reason and "IP located" in reason
    # a bad param falls through to a good cookie
    assert (
        redirect(None, param="nope", cookie="bj")[0] == "https://bj.o2o.test/tours/5?utm=x&page=2"
    )
    # a blank choice is no choice
    assert redirect(None, param="  ", cookie="")[0] is None


def test_a_subsite_on_the_main_domain_never_loops() -> None:
    main = SiteInfo(9, "cn", "www.o2o.test", (RegionCover("CN-ZJ"),))
    url, _, reason = redirect(loc("CN-ZJ", "Hangzhou"), sites=(*SITES, main))
    assert url is None and "main site" in reason


def test_scheme_is_checked() -> None:
    with pytest.raises(ValueError, match="scheme"):
        redirect(None, scheme="javascript")


def test_redirect_target_is_the_url() -> None:
    def target(location: Location | None) -> str | None:
        return redirect_target(
            host="o2o.test",
            path="/a",
            query="b=1",
            scheme="https",
            root_domain=ROOT,
            location=location,
            subsites=SITES,
        )

    assert target(loc("CN-BJ", "Beijing")) == "https://bj.o2o.test/a?b=1"
    assert target(None) is None


def test_routing_accepts_anything_shaped_like_a_location() -> None:
    @dataclass(frozen=True)
    class Where:
        kind: str
        region_code: str | None
        city: str | None

    assert subsite_for_order("o2o.test", ROOT, Where("ok", "CN-BJ", None), SITES) is not None


# --- store choice ---------------------------------------------------------------------------

STORES = (
    StoreInfo(10, BJ.id, "CN-BJ", "Beijing", is_default=False),
    StoreInfo(11, BJ.id, "CN-BJ", "Beijing", is_default=True),
    StoreInfo(12, BJ.id, "CN-BJ", "Beijing", active=False),
    StoreInfo(20, SH.id, "CN-SH", "Shanghai", is_default=True),
    StoreInfo(21, SH.id, "CN-JS", "Suzhou"),
    StoreInfo(22, SH.id, "CN-JS", "Suzhou", active=False),
    StoreInfo(23, SH.id, "CN-JS", "Taizhou"),
    StoreInfo(24, SH.id, "CN-JS", "Wuxi", active=False),
    StoreInfo(30, GZ.id, "CN-GD", "Guangzhou", is_default=True, active=False),
    StoreInfo(31, GZ.id, "CN-GD", "Guangzhou", active=False),
    StoreInfo(40, SZ.id, "CN-GD", "Shenzhen"),  # sz has no default store
    StoreInfo(50, HQ.id, "CN-BJ", "Beijing", is_default=True),
    StoreInfo(51, HQ.id, "CN-BJ", "Beijing", active=False),
)


def choose(**kwargs: object) -> tuple[int | None, str, str, list[tuple[str, int | None, str]]]:
    kwargs.setdefault("stores", STORES)
    kwargs.setdefault("head_office_store_id", 50)
    c = choose_store(**kwargs)
    return c.store_id, c.step, c.reason, [(t.step, t.store_id, t.outcome) for t in c.trail]


def test_named_store_comes_first() -> None:
    assert choose(named_store_id=21, wished_store_id=20, last_store_id=10, subsite=BJ) == (
        21,
        "named",
        "store named on the order",
        [("named", 21, "chosen")],
    )


def test_inactive_named_store_falls_to_the_customers_choice() -> None:
    store, step, reason, trail = choose(named_store_id=22, wished_store_id=20, last_store_id=10)
    assert (store, step, reason) == (20, "wished", "store the customer chose")
    assert trail == [("named", 22, "store inactive"), ("wished", 20, "chosen")]


def test_unknown_store_is_skipped() -> None:
    store, step, _, trail = choose(named_store_id=999, wished_store_id=20)
    assert (store, step) == (20, "wished")
    assert trail[0] == ("named", 999, "unknown store")


def test_consultants_store_after_the_chosen_store() -> None:
    store, step, reason, trail = choose(
        wished_store_id=12, consultant_id=7, consultant_store_id=21, last_store_id=10
    )
    assert (store, step, reason) == (
        21,
        "consultant",
        "store of the customer's preferred consultant #7",
    )
    assert trail == [
        ("named", None, "no store named on the order"),
        ("wished", 12, "store inactive"),
        ("consultant", 21, "chosen"),
    ]


def test_store_that_served_before() -> None:
    store, step, reason, _ = choose(consultant_store_id=51, last_store_id=10, subsite=SH)
    assert (store, step, reason) == (10, "last_served", "store that last served the customer")


def test_subsite_store_covering_the_city() -> None:
    store, step, reason, trail = choose(
        last_store_id=24, subsite=SH, subsite_origin="host", region_code="CN-JS", city="Suzhou"
    )
    assert (store, step) == (21, "subsite_city")
    assert reason == "sub-site sh (from host) store covering Suzhou"
    assert trail[-3:] == [
        ("last_served", 24, "store inactive"),
        ("subsite_city", 22, "store inactive"),
        ("subsite_city", 21, "chosen"),
    ]


def test_city_match_is_case_insensitive_and_needs_the_region() -> None:
    store, _, reason, _ = choose(subsite=SH, region_code="cn-js", city="TAIZHOU")
    assert (store, reason) == (23, "sub-site sh store covering Taizhou")  # the store's spelling
    # Taizhou, Zhejiang is another city than Taizhou, Jiangsu
    store, step, _, trail = choose(subsite=SH, region_code="CN-ZJ", city="Taizhou")
    assert (store, step) == (20, "subsite_default")
    assert ("subsite_city", None, "no store of sub-site sh in Taizhou") in trail
    # no region known: the city alone decides
    assert choose(subsite=SH, city="Taizhou")[0] == 23


def test_several_stores_in_the_city_prefer_the_default() -> None:
    store, _, reason, _ = choose(
        subsite=BJ, subsite_origin="ip", region_code="CN-BJ", city="Beijing"
    )
    assert store == 11
    assert reason == "sub-site bj (from IP location) store covering Beijing"
    bj_without_default = tuple(s for s in STORES if s.id != 11)
    assert choose(stores=bj_without_default, subsite=BJ, city="Beijing")[0] == 10


def test_only_the_orders_subsite_stores_count() -> None:
    # hq has active stores in Beijing, but the order's sub-site is sh
    store, step, _, _ = choose(subsite=SH, region_code="CN-BJ", city="Beijing")
    assert (store, step) == (20, "subsite_default")


def test_subsite_default_when_the_city_is_unknown() -> None:
    store, step, reason, trail = choose(subsite=SH, subsite_origin="ip", region_code="CN-SH")
    assert (store, step, reason) == (
        20,
        "subsite_default",
        "sub-site sh (from IP location) default store",
    )
    assert ("subsite_city", None, "visitor's city unknown") in trail


def test_subsite_city_store_inactive_falls_to_default() -> None:
    store, step, _, trail = choose(subsite=SH, region_code="CN-JS", city="Wuxi")
    assert (store, step) == (20, "subsite_default")
    assert ("subsite_city", 24, "store inactive") in trail


def test_inactive_subsite_default_falls_to_head_office() -> None:
    store, step, reason, trail = choose(
        subsite=GZ, subsite_origin="host", region_code="CN-GD", city="Guangzhou"
    )
    assert (store, step, reason) == (50, "head_office", "head-office default store")
    assert trail[-4:] == [
        ("subsite_city", 30, "store inactive"),
        ("subsite_city", 31, "store inactive"),
        ("subsite_default", 30, "store inactive"),
        ("head_office", 50, "chosen"),
    ]


def test_subsite_without_default_falls_to_head_office() -> None:
    store, step, _, trail = choose(subsite=SZ, region_code="CN-GD", city="Dongguan")
    assert (store, step) == (50, "head_office")
    assert ("subsite_default", None, "sub-site sz has no default store") in trail


def test_no_subsite_falls_to_head_office_with_a_full_trail() -> None:
    store, step, _, trail = choose()
    assert (store, step) == (50, "head_office")
    assert [t[0] for t in trail] == [
        "named",
        "wished",
        "consultant",
        "last_served",
        "subsite_city",
        "subsite_default",
        "head_office",
    ]
    assert trail[4] == ("subsite_city", None, "no sub-site for the order")


def test_inactive_subsite_is_not_used() -> None:
    store, step, _, trail = choose(subsite=OLD, city="Chengdu")
    assert (store, step) == (50, "head_office")
    assert ("subsite_default", None, "sub-site old inactive") in trail


def test_nothing_left() -> None:
    store, step, reason, trail = choose(subsite=GZ, head_office_store_id=51)
    assert (store, step, reason) == (None, "none", "no active store found")
    assert trail[-2:] == [
        ("head_office", 51, "store inactive"),
        ("none", None, "no active store found"),
    ]
    assert choose(head_office_store_id=None, stores=())[0] is None


def test_store_choice_reason_is_json() -> None:
    c = choose_store(stores=STORES, wished_store_id=12, last_store_id=10)
    data = json.loads(json.dumps(c.as_reason()))
    assert data["store_id"] == 10
    assert data["trail"][1] == {"step": "wished", "store_id": 12, "outcome": "store inactive"}


# --- the client's address behind proxies --------------------------------------------------

TRUSTED = ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # untrusted peer: the header is the client's own claim and is ignored
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),
        ("8.8.8.8", None, "8.8.8.8"),
        # trusted peer without a header: the peer itself
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", " , ", "127.0.0.1"),
        # one proxy
        ("127.0.0.1", "1.2.3.4", "1.2.3.4"),
        # the client forged an entry on the left: the rightmost untrusted one wins
        ("127.0.0.1", "6.6.6.6, 1.2.3.4", "1.2.3.4"),
        # a chain of trusted proxies is skipped from the right
        ("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2, 10.1.1.1", "1.2.3.4"),
        # every hop trusted: the leftmost is as far as can be seen
        ("127.0.0.1", "10.0.0.5, 10.0.0.2", "10.0.0.5"),
        # garbage inside the trusted part of the chain: nobody can be believed
        ("127.0.0.1", "1.2.3.4, unknown", None),
        # garbage left of the client is the client's business
        ("127.0.0.1", "unknown, 1.2.3.4", "1.2.3.4"),
        # ports and brackets as some proxies write them
        ("127.0.0.1", "1.2.3.4:5678", "1.2.3.4"),
        ("127.0.0.1", "[2400:1000::1]:443", "2400:1000::1"),
        ("127.0.0.1", "[2400:1000::1]", "2400:1000::1"),
        ("127.0.0.1", "2400:1000::1", "2400:1000::1"),
        ("127.0.0.1", "[2400:1000::1]x", None),
        # IPv6 peer, and an IPv4 peer as a dual-stack socket reports it
        ("::1", "1.2.3.4", "1.2.3.4"),
        ("::ffff:127.0.0.1", "1.2.3.4", "1.2.3.4"),
        ("::ffff:8.8.8.8", "1.2.3.4", "8.8.8.8"),
        # a trusted network does not trust its neighbours
        ("11.0.0.1", "1.2.3.4", "11.0.0.1"),
        # no usable peer (Unix socket, garbage)
        (None, "1.2.3.4", None),
        ("", "1.2.3.4", None),
        ("not-an-ip", "1.2.3.4", None),
    ],
)
def test_client_ip(peer: str | None, xff: str | None, expected: str | None) -> None:
    assert client_ip(peer, xff, TRUSTED) == expected


def test_client_ip_trusts_nobody_without_networks() -> None:
    assert client_ip("127.0.0.1", "1.2.3.4", []) == "127.0.0.1"

"""IP location over HTTP: /api/v1/geo/resolve and the main-domain redirect, real GeoLite2.

httpx's ASGITransport reports the TCP peer as its `client` argument (default
("127.0.0.1", 123), a trusted proxy under the default TRUSTED_PROXIES); the tests set it
to stand for a proxy or a visitor connecting directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from api.app import create_app
from settings import settings
from tests.api_helpers import admin
from tests.routing_factories import IPS, Country, domain, make_country

ROOT = settings.ROOT_DOMAIN
TRUSTED_PEER = ("127.0.0.1", 40000)
Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def country(clean_db: str) -> Country:
    return await make_country(consultants=1)


@pytest.fixture
async def clients() -> AsyncIterator[Client]:
    """Clients of one app, each connecting from a given peer address."""
    app = create_app()
    opened: list[httpx.AsyncClient] = []

    def make(peer: tuple[str, int] = TRUSTED_PEER) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=peer, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url=f"http://{ROOT}")
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


async def visit(
    client: httpx.AsyncClient,
    path: str = "/",
    *,
    host: str = ROOT,
    forwarded_for: str | None = None,
    **headers: str,
) -> httpx.Response:
    sent = {"Host": host} | {k.replace("_", "-"): v for k, v in headers.items()}
    if forwarded_for is not None:
        sent["X-Forwarded-For"] = forwarded_for
    return await client.get(path, headers=sent)


# ------------------------------------------------------------------ resolve


@pytest.mark.parametrize(
    ("site", "region", "city"),
    [
        ("bj", "CN-BJ", "Beijing"),
        ("sh", "CN-SH", "Shanghai"),
        ("gz", "CN-GD", "Guangzhou"),
        ("cd", "CN-SC", "Chengdu"),
    ],
)
async def test_resolve_names_the_region_and_its_sub_site(
    country: Country, clients: Client, site: str, region: str, city: str
) -> None:
    response = await clients().get("/api/v1/geo/resolve", params={"ip": IPS[site]}, headers=admin())

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["kind"], body["country_code"], body["region_code"], body["city"]) == (
        "ok",
        "CN",
        region,
        city,
    )
    assert body["subsite"] == {"id": country.sites[site].id, "code": site, "domain": domain(site)}


@pytest.mark.parametrize(
    ("ip", "kind"),
    [("8.8.8.8", "foreign"), ("10.1.2.3", "private"), ("::1", "private")],
)
async def test_resolve_keeps_other_addresses_on_the_main_site(
    country: Country, clients: Client, ip: str, kind: str
) -> None:
    response = await clients().get("/api/v1/geo/resolve", params={"ip": ip}, headers=admin())

    assert response.status_code == 200, response.text
    assert (response.json()["kind"], response.json()["subsite"]) == (kind, None)
    assert response.json()["reason"] == f"location is {kind}: the main site"


async def test_resolve_without_an_ip_locates_the_caller(country: Country, clients: Client) -> None:
    response = await clients().get(
        "/api/v1/geo/resolve", headers=admin() | {"X-Forwarded-For": IPS["cd"]}
    )

    assert response.status_code == 200, response.text
    assert (response.json()["ip"], response.json()["subsite"]["code"]) == (IPS["cd"], "cd")


async def test_resolve_refuses_a_malformed_address_and_a_missing_token(
    country: Country, clients: Client
) -> None:
    bad = await clients().get("/api/v1/geo/resolve", params={"ip": "1.2.3"}, headers=admin())
    anonymous = await clients().get("/api/v1/geo/resolve", params={"ip": IPS["bj"]})

    assert bad.status_code == 422
    assert "'1.2.3' is not an IPv4 or IPv6 address" in bad.json()["detail"]
    assert anonymous.status_code == 401


# ------------------------------------------------------------------ redirect


@pytest.mark.parametrize("site", ["bj", "sh", "gz", "cd"])
async def test_a_proxied_visitor_is_sent_to_their_sub_site(
    country: Country, clients: Client, site: str
) -> None:
    response = await visit(clients(), forwarded_for=IPS[site])

    assert response.status_code == 302
    assert response.headers["location"] == f"http://{domain(site)}/"
    assert response.headers["cache-control"] == "private, no-store"


async def test_the_redirect_keeps_path_query_and_port(
    country: Country, clients: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, host = "/tours/yunnan?x=1&y=%E4%BA%91", f"{ROOT}:8000"
    chain = f"{IPS['cd']}, 10.0.0.7"  # an outer proxy of ours at 10.0.0.7, then the inner one

    untrusted_hop = await visit(clients(), path, host=host, forwarded_for=chain)
    monkeypatch.setattr(settings, "TRUSTED_PROXIES", ["127.0.0.1/32", "10.0.0.0/8"])
    response = await visit(
        clients(), path, host=host, forwarded_for=chain, x_forwarded_proto="https"
    )

    # 10.0.0.7 is the client until it is one of our proxies.
    assert (untrusted_hop.status_code, untrusted_hop.headers["x-o2o-site"]) == (200, "main")
    assert response.status_code == 302
    assert (
        response.headers["location"] == f"https://{domain('cd')}:8000/tours/yunnan?x=1&y=%E4%BA%91"
    )


async def test_www_is_the_main_site_too(country: Country, clients: Client) -> None:
    response = await visit(clients(), "/a", host=f"www.{ROOT}", forwarded_for=IPS["sh"])

    assert (response.status_code, response.headers["location"]) == (302, f"http://{domain('sh')}/a")


async def test_a_foreign_visitor_stays_on_the_main_site(country: Country, clients: Client) -> None:
    response = await visit(clients(), "/tours", forwarded_for=IPS["foreign"])

    assert response.status_code == 200
    assert response.headers["x-o2o-site"] == "main"
    assert "You are on the main site" in response.text
    assert "visitor location is foreign" in response.text


@pytest.mark.parametrize("forwarded", ["10.0.0.1", "not-an-ip", ""])
async def test_private_or_malformed_forwarded_addresses_stay(
    country: Country, clients: Client, forwarded: str
) -> None:
    response = await visit(clients(), forwarded_for=forwarded)

    assert (response.status_code, response.headers["x-o2o-site"]) == (200, "main")


async def test_an_untrusted_peer_cannot_choose_its_address(
    country: Country, clients: Client
) -> None:
    # A visitor in Beijing connecting directly, claiming to be in Chengdu.
    beijing = await visit(clients((IPS["bj"], 5555)), forwarded_for=IPS["cd"])
    # A visitor abroad claiming the same.
    abroad = await visit(clients(("8.8.4.4", 5555)), forwarded_for=IPS["cd"])

    assert (beijing.status_code, beijing.headers["location"]) == (302, f"http://{domain('bj')}/")
    assert (abroad.status_code, abroad.headers["x-o2o-site"]) == (200, "main")


async def test_a_forwarded_proto_from_an_untrusted_peer_is_ignored(
    country: Country, clients: Client
) -> None:
    response = await visit(clients((IPS["sh"], 5555)), x_forwarded_proto="https")

    assert response.headers["location"] == f"http://{domain('sh')}/"


async def test_a_chosen_site_beats_the_ip(country: Country, clients: Client) -> None:
    client = clients()

    chosen = await visit(client, "/p?site=gz&q=1", forwarded_for=IPS["cd"])
    stay = await visit(client, "/?site=main", forwarded_for=IPS["cd"])

    assert (chosen.status_code, chosen.headers["location"]) == (302, f"http://{domain('gz')}/p?q=1")
    assert "o2o_site=gz" in chosen.headers["set-cookie"]
    assert (stay.status_code, stay.headers["x-o2o-site"]) == (200, "main")
    assert "o2o_site=main" in stay.headers["set-cookie"]


async def test_the_site_cookie_is_honoured(country: Country, clients: Client) -> None:
    client = clients()

    main = await visit(client, forwarded_for=IPS["cd"], cookie="o2o_site=main")
    shanghai = await visit(client, "/x", forwarded_for=IPS["cd"], cookie="o2o_site=sh")
    unknown = await visit(client, forwarded_for=IPS["cd"], cookie="o2o_site=nowhere")

    assert (main.status_code, main.headers["x-o2o-site"]) == (200, "main")
    assert "set-cookie" not in main.headers
    assert shanghai.headers["location"] == f"http://{domain('sh')}/x"
    assert unknown.headers["location"] == f"http://{domain('cd')}/"


async def test_an_inactive_sub_site_is_not_a_destination(country: Country, clients: Client) -> None:
    patched = await clients().patch(
        f"/api/v1/subsites/{country.sites['cd'].id}", json={"active": False}, headers=admin()
    )
    assert patched.status_code == 200, patched.text

    response = await visit(clients(), forwarded_for=IPS["cd"])

    assert (response.status_code, response.headers["x-o2o-site"]) == (200, "main")


async def test_a_sub_site_host_is_not_redirected(country: Country, clients: Client) -> None:
    response = await visit(clients(), "/tours", host=domain("sh"), forwarded_for=IPS["cd"])

    assert response.status_code == 200
    assert response.headers["x-o2o-site"] == "sh"
    assert f"You are on sub-site sh (Sub-site sh, {domain('sh')})." in response.text


async def test_api_paths_and_docs_are_not_the_web_entry(country: Country, clients: Client) -> None:
    client = clients()

    missing = await visit(client, "/api/v1/nothing-here", forwarded_for=IPS["cd"])
    docs = await visit(client, "/openapi.json", forwarded_for=IPS["cd"])

    assert (missing.status_code, missing.json()) == (404, {"detail": "Not Found"})
    assert docs.status_code == 200
    assert "/api/v1/geo/resolve" in docs.json()["paths"]


# ------------------------------------------------------------------ a database of our own

FIXTURE: dict[str, dict[str, Any]] = {
    "1.2.3.0/24": {
        "country": {"iso_code": "CN"},
        "subdivisions": [{"iso_code": "SC"}],
        "city": {"names": {"en": "Chengdu"}},
    },
    "1.2.3.128/25": {
        "country": {"iso_code": "CN"},
        "subdivisions": [{"iso_code": "BJ"}],
        "city": {"names": {"en": "Beijing"}},
    },
    "5.5.5.0/24": {"country": {"iso_code": "CN"}, "subdivisions": [{"iso_code": "SH"}]},
    "6.6.6.0/24": {
        "country": {"iso_code": "CN"},
        "subdivisions": [{"iso_code": "GD"}],
        "city": {"names": {"en": "Foshan"}},
    },
    "2400:1000::/32": {
        "country": {"iso_code": "CN"},
        "subdivisions": [{"iso_code": "GD"}],
        "city": {"names": {"en": "Guangzhou"}},
    },
}


@pytest.fixture
def fixture_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A City database with exact ranges (mmdb-writer), made the configured one."""
    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City", languages=["en"]
    )
    for network, record in FIXTURE.items():  # in order: the nested /25 overrides its /24
        writer.insert_network(IPSet([network]), record)
    path = tmp_path / "city.mmdb"
    writer.to_db_file(str(path))
    monkeypatch.setattr(settings, "GEOIP_DATABASE", str(path))
    return path


@pytest.mark.parametrize(
    ("ip", "site"),
    [
        ("1.2.3.0", "cd"),
        ("1.2.3.127", "cd"),  # last address before the nested range
        ("1.2.3.128", "bj"),  # first address of the nested range
        ("1.2.3.255", "bj"),
        ("1.2.4.0", None),  # just past the range: unknown
        ("5.5.5.5", "sh"),  # no city: sh covers all of CN-SH
        ("6.6.6.6", "gz"),  # a city gz does not list: its region still is gz's
        ("2400:1000::1", "gz"),  # IPv6
        ("::ffff:1.2.3.200", "bj"),  # IPv4-mapped IPv6 is the IPv4 address
    ],
)
async def test_exact_ranges_of_a_fixture_database(
    country: Country, clients: Client, fixture_database: Path, ip: str, site: str | None
) -> None:
    resolved = await clients().get("/api/v1/geo/resolve", params={"ip": ip}, headers=admin())
    visited = await visit(clients(), "/x", forwarded_for=ip)

    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["subsite"] or {}).get("code") == site
    if site is None:
        assert (visited.status_code, visited.headers["x-o2o-site"]) == (200, "main")
    else:
        assert visited.headers["location"] == f"http://{domain(site)}/x"


async def test_a_missing_database_keeps_visitors_on_the_main_site(
    country: Country, clients: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "GEOIP_DATABASE", str(tmp_path / "missing.mmdb"))

    visited = await visit(clients(), forwarded_for=IPS["cd"])
    resolved = await clients().get("/api/v1/geo/resolve", params={"ip": IPS["cd"]}, headers=admin())

    assert (visited.status_code, visited.headers["x-o2o-site"]) == (200, "main")
    assert "visitor not located" in visited.text
    assert resolved.status_code == 503

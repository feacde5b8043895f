"""IP location against real MaxMind databases.

Two databases: the GeoLite2-City shipped by maxminddb-geolite2 (real 2018 data, as the
embedded default uses it) and small City databases written here with mmdb-writer, whose
exact ranges let the edge cases be pinned down. The fixtures are built at test time in
a temporary directory; no binary is kept in the repository.

mmdb-writer 0.2.7 needs: `database_type` containing "City" (geoip2's `Reader.city`
refuses other types), `ip_version=6` with `ipv4_compatible=True` to hold IPv4 and IPv6 in
one file (IPv4 goes under ::/96, where maxminddb looks IPv4 up), and records shaped like
MaxMind's: country.iso_code, subdivisions[].iso_code, city.names.en.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import geolite2
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from geo.locate import MODE_MEMORY, Location, Locator, client_ip, parse_ip

GEOLITE2 = Path(geolite2.__file__).parent / "_maxminddb_geolite2" / "GeoLite2-City.mmdb"


def _record(
    country: str | None, subdivisions: tuple[str, ...] = (), city: str | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {"continent": {"code": "AS", "names": {"en": "Asia"}}}
    if country:
        record["country"] = {"iso_code": country, "names": {"en": country}}
    if subdivisions:
        record["subdivisions"] = [{"iso_code": s, "names": {"en": s}} for s in subdivisions]
    if city:
        record["city"] = {"names": {"en": city, "zh-CN": "城市"}}
    return record


def _write(
    path: Path,
    networks: dict[str, dict[str, Any]],
    *,
    ip_version: int = 6,
    database_type: str = "GeoIP2-City",
) -> Path:
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description="o2o-dispatch test fixture",
    )
    for network, record in networks.items():  # in order: a later, smaller network wins
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


FIXTURE_NETWORKS: dict[str, dict[str, Any]] = {
    "1.2.3.0/24": _record("CN", ("BJ",), "Beijing"),
    "1.2.3.128/25": _record("CN", ("HE",), "Shijiazhuang"),  # nested inside the /24
    "5.5.5.0/24": _record("CN", ("SH",)),  # no city
    "6.6.6.0/24": _record("CN"),  # no subdivision
    "7.7.7.0/24": _record("US", ("CA",), "Mountain View"),
    "9.9.9.0/24": _record(None),  # only a continent: no country to judge by
    "11.0.0.0/24": _record("CN", ("GD", "SZX"), "Shenzhen"),  # two subdivision levels
    "10.0.0.0/8": _record("CN", ("BJ",), "Beijing"),  # private: must never be looked up
    "2400:1000::/32": _record("CN", ("GD",), "Guangzhou"),
}


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("geoip") / "city.mmdb", FIXTURE_NETWORKS)


@pytest.fixture(scope="module")
def fixture_locator(fixture_db: Path) -> Iterator[Locator]:
    with Locator(fixture_db, home_country="CN") as locator:
        yield locator


@pytest.fixture(scope="module")
def geolite() -> Iterator[Locator]:
    with Locator(GEOLITE2, home_country="CN") as locator:
        yield locator


# --- the real GeoLite2-City ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "region", "city"),
    [
        ("123.125.114.144", "CN-BJ", "Beijing"),
        ("202.96.209.133", "CN-SH", "Shanghai"),
        ("113.108.81.189", "CN-GD", "Guangzhou"),
        ("61.139.2.69", "CN-SC", "Chengdu"),
    ],
)
def test_geolite2_chinese_cities(geolite: Locator, ip: str, region: str, city: str) -> None:
    loc = geolite.resolve(ip)
    assert (loc.kind, loc.country_code, loc.region_code, loc.city) == ("ok", "CN", region, city)
    assert loc.ip == ip
    assert loc.network is not None


def test_geolite2_foreign(geolite: Locator) -> None:
    loc = geolite.resolve("8.8.8.8")
    assert (loc.kind, loc.country_code) == ("foreign", "US")


def test_geolite2_home_country_is_a_setting() -> None:
    with Locator(GEOLITE2, home_country="us") as us:
        assert us.resolve("8.8.8.8").kind == "ok"
        assert us.resolve("123.125.114.144").kind == "foreign"


def test_geolite2_ipv6_and_ipv4_mapped(geolite: Locator) -> None:
    v6 = geolite.resolve("2001:da8::1")  # CERNET: country only in the 2018 data
    assert (v6.kind, v6.country_code, v6.region_code) == ("ok", "CN", None)
    mapped = geolite.resolve("::ffff:123.125.114.144")
    assert (mapped.ip, mapped.region_code, mapped.city) == ("123.125.114.144", "CN-BJ", "Beijing")


def test_one_locator_serves_many_threads(geolite: Locator) -> None:
    ips = ["123.125.114.144", "202.96.209.133", "113.108.81.189", "61.139.2.69", "8.8.8.8"] * 200
    expected = [geolite.resolve(ip) for ip in ips]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(geolite.resolve, ips)) == expected


def test_geolite2_in_memory_mode() -> None:
    with Locator(GEOLITE2, mode=MODE_MEMORY) as locator:
        assert locator.resolve("202.96.209.133").region_code == "CN-SH"


# --- exact ranges in a written fixture ---------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "kind", "region", "city"),
    [
        ("1.2.2.255", "unknown", None, None),  # one before the /24
        ("1.2.3.0", "ok", "CN-BJ", "Beijing"),  # first address
        ("1.2.3.127", "ok", "CN-BJ", "Beijing"),  # last before the nested /25
        ("1.2.3.128", "ok", "CN-HE", "Shijiazhuang"),  # first of the nested /25
        ("1.2.3.255", "ok", "CN-HE", "Shijiazhuang"),  # last address
        ("1.2.4.0", "unknown", None, None),  # one past
        ("2400:1000::", "ok", "CN-GD", "Guangzhou"),
        ("2400:1000:ffff:ffff:ffff:ffff:ffff:ffff", "ok", "CN-GD", "Guangzhou"),
        ("2400:1001::", "unknown", None, None),
        ("23ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unknown", None, None),
    ],
)
def test_range_boundaries(
    fixture_locator: Locator, ip: str, kind: str, region: str | None, city: str | None
) -> None:
    loc = fixture_locator.resolve(ip)
    assert (loc.kind, loc.region_code, loc.city) == (kind, region, city)


def test_network_is_reported(fixture_locator: Locator) -> None:
    assert fixture_locator.resolve("1.2.3.200").network == "1.2.3.128/25"
    assert fixture_locator.resolve("2400:1000::1").network == "2400:1000::/32"


def test_ipv6_is_canonicalised(fixture_locator: Locator) -> None:
    loc = fixture_locator.resolve(" 2400:1000:0000::0001 ")
    assert (loc.ip, loc.kind) == ("2400:1000::1", "ok")


def test_record_without_city(fixture_locator: Locator) -> None:
    assert fixture_locator.resolve("5.5.5.5") == Location(
        ip="5.5.5.5",
        kind="ok",
        country_code="CN",
        region_code="CN-SH",
        city=None,
        network="5.5.5.0/24",
    )


def test_record_without_subdivision(fixture_locator: Locator) -> None:
    loc = fixture_locator.resolve("6.6.6.6")
    assert (loc.kind, loc.country_code, loc.region_code, loc.city) == ("ok", "CN", None, None)


def test_first_subdivision_is_the_province(fixture_locator: Locator) -> None:
    assert fixture_locator.resolve("11.0.0.1").region_code == "CN-GD"


def test_foreign_keeps_its_details(fixture_locator: Locator) -> None:
    loc = fixture_locator.resolve("7.7.7.7")
    assert (loc.kind, loc.country_code, loc.region_code, loc.city) == (
        "foreign",
        "US",
        "US-CA",
        "Mountain View",
    )


def test_record_without_country_is_unknown(fixture_locator: Locator) -> None:
    loc = fixture_locator.resolve("9.9.9.9")
    assert (loc.kind, loc.country_code) == ("unknown", None)


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",  # RFC 1918, present in the fixture as Beijing: proves no look-up
        "127.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.1.1",
        "224.0.0.1",  # multicast
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_addresses_are_not_looked_up(fixture_locator: Locator, ip: str) -> None:
    loc = fixture_locator.resolve(ip)
    assert loc.kind == "private"
    assert (loc.country_code, loc.region_code) == (None, None)


@pytest.mark.parametrize("ip", ["", "abc", "1.2.3", "1.2.3.256", "1.2.3.4:80", "2400:::1"])
def test_malformed(fixture_locator: Locator, ip: str) -> None:
    assert fixture_locator.resolve(ip) == Location(ip=ip, kind="malformed")


def test_no_address_is_unknown(fixture_locator: Locator) -> None:
    assert fixture_locator.resolve(None).kind == "unknown"


def test_ipv6_in_an_ipv4_only_database_is_unknown(tmp_path: Path) -> None:
    db = _write(tmp_path / "v4.mmdb", {"1.2.3.0/24": _record("CN", ("BJ",))}, ip_version=4)
    with Locator(db) as locator:
        assert locator.resolve("1.2.3.4").region_code == "CN-BJ"
        assert locator.resolve("2400:1000::1").kind == "unknown"


def test_refuses_a_database_that_is_not_city(tmp_path: Path) -> None:
    db = _write(
        tmp_path / "asn.mmdb",
        {"1.2.3.0/24": {"autonomous_system_number": 1}},
        database_type="GeoLite2-ASN",
    )
    with pytest.raises(ValueError, match="City database"):
        Locator(db)


def test_refuses_an_empty_path() -> None:
    with pytest.raises(ValueError, match="GEOIP_DATABASE"):
        Locator("")


def test_parse_ip_unwraps_mapped() -> None:
    assert str(parse_ip("::ffff:1.2.3.4")) == "1.2.3.4"
    assert parse_ip("nope") is None


def test_client_ip_then_locate(fixture_locator: Locator) -> None:
    """The two halves together, as the API uses them."""
    ip = client_ip("127.0.0.1", "6.6.6.6, 1.2.3.200", ["127.0.0.1/32"])
    assert fixture_locator.resolve(ip).region_code == "CN-HE"

"""/docs and /redoc work without the internet: every asset they load is served by us."""

from __future__ import annotations

import re

import httpx
import pytest

URL = re.compile(r"""(?:src|href)=["']([^"']+)["']|url\(["']?([^"')]+)""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_nothing_from_outside(
    offline_api: httpx.AsyncClient, page: str
) -> None:
    response = await offline_api.get(page)
    assert response.status_code == 200, response.text
    html = response.text
    assert "://" not in html.replace("http://www.w3.org", ""), "an absolute URL in the page"
    assets = [a or b for a, b in URL.findall(html)]
    assert assets, "the page names no script or style"
    for asset in assets:
        assert asset.startswith("/"), asset
        served = await offline_api.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 100, asset

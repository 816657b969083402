"""`--api-base EXCHANGE=URL` rewrites the scheme and host of every URL ccxt has for an exchange, keeping paths."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from adapters.exchanges.api_base import ApiBaseError, parse_api_bases, rewrite_url, urls_of
from adapters.exchanges.factory import EXCHANGES, create_exchange


@pytest.mark.parametrize("exchange_id", sorted(EXCHANGES))
@pytest.mark.parametrize("websocket", [True, False])
async def test_every_url_points_at_the_base_with_its_path_kept(exchange_id: str, websocket: bool) -> None:
    stock = create_exchange(exchange_id, websocket=websocket)
    moved = create_exchange(exchange_id, websocket=websocket, api_base="http://127.0.0.1:8123")
    try:
        before, after = urls_of(stock.urls["api"]), urls_of(moved.urls["api"])
        assert before and len(before) == len(after)
        for old, new in zip(before, after, strict=True):
            old_parts, new_parts = urlsplit(old), urlsplit(new)
            assert new_parts.netloc == "127.0.0.1:8123", (old, new)
            assert new_parts.scheme == ("ws" if old_parts.scheme.startswith("ws") else "http"), (old, new)
            assert (new_parts.path, new_parts.query) == (old_parts.path, old_parts.query), (old, new)
        assert not [u for u in after if "binance.com" in u or "bybit" in u.split("/")[2] or "kraken.com" in u]
    finally:
        await stock.close()
        await moved.close()


def test_https_base_keeps_websockets_secure() -> None:
    assert rewrite_url("wss://stream.{hostname}/v5/public/spot", "https://proxy.example:8443") == (
        "wss://proxy.example:8443/v5/public/spot"
    )
    assert (
        rewrite_url("https://api.binance.com/api/v3", "https://proxy.example")
        == "https://proxy.example/api/v3"
    )
    assert rewrite_url("not a url", "https://proxy.example") == "not a url"


def test_parse_api_bases_names_the_bad_value() -> None:
    assert parse_api_bases(["binance=http://127.0.0.1:1/", "kraken = http://h:2"]) == {
        "binance": "http://127.0.0.1:1",
        "kraken": "http://h:2",
    }
    for bad in ("binance", "=http://h", "binance=ftp://h", "binance=http://h/api"):
        with pytest.raises(ApiBaseError, match="--api-base"):
            parse_api_bases([bad])
    with pytest.raises(ApiBaseError, match="already points"):
        parse_api_bases(["binance=http://a", "binance=http://b"])

"""The local exchange answers ccxt's market metadata requests per venue, consistent with our instrument specs,
and plays its captures with the documented sequence rules and checksums."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from adapters.exchanges.factory import EXCHANGES, create_exchange
from adapters.exchanges.feeds.kraken import checksum
from tests.local_exchange import LocalExchange
from tests.local_exchange.kraken_orders import order_txid
from tests.local_exchange.orders import OrderDesk, install_orders


@pytest.fixture(scope="module")
def local_exchange() -> Any:
    with LocalExchange(message_limit=3000) as exchange:
        yield exchange


EXPECTED = {  # tick, lot, maker, taker as ccxt loads them; Binance's match adapters/instruments/specs.toml
    "binance": ("BTC/USDT", 0.01, 1e-05, 0.001, 0.001),
    "binanceusdm": ("BTC/USDT:USDT", 0.1, 0.001, 0.0002, 0.0005),
    "binancecoinm": (
        "BTC/USD:BTC",
        0.1,
        1.0,
        0.0001,
        0.0005,
    ),  # ccxt's maker default; Binance publishes 2 bps
    "bybit": ("BTC/USDT", 0.01, 1e-06, 0.001, 0.001),
    "kraken": ("BTC/USDT", 0.1, 1e-08, 0.0025, 0.004),
    "coinbase": ("BTC/USDT", 0.01, 1e-08, 0.006, 0.012),  # ccxt: Coinbase Advanced Trade lowest tier
}


@pytest.mark.parametrize("exchange_id", sorted(EXCHANGES))
async def test_load_markets_from_the_local_exchange(local_exchange: LocalExchange, exchange_id: str) -> None:
    client = create_exchange(exchange_id, websocket=False, rate_limit=False,
                             api_base=local_exchange.api_base(exchange_id))  # fmt: skip
    try:
        markets = await client.load_markets()
    finally:
        await client.close()
    symbol, tick, lot, maker, taker = EXPECTED[exchange_id]
    market = markets[symbol]
    assert (market["precision"]["price"], market["precision"]["amount"]) == (tick, lot)
    assert (market["maker"], market["taker"]) == (maker, taker)


def test_injected_http_faults(local_exchange: LocalExchange) -> None:
    async def go() -> list[int]:
        venue = local_exchange.venue("kraken")
        venue.faults.http_status("/0/public/AssetPairs", 429, retry_after_s=1)
        venue.faults.http_status("/0/public/AssetPairs", 503)
        async with aiohttp.ClientSession() as session:
            statuses = []
            for _ in range(3):
                async with session.get(venue.base_url + "/0/public/AssetPairs") as response:
                    statuses.append(response.status)
            async with session.get(venue.base_url + "/no/such/path") as response:
                statuses.append(response.status)
            return statuses

    assert asyncio.run(go()) == [429, 503, 200, 404]


def test_kraken_checksum_matches_the_documented_example() -> None:
    # docs.kraken.com "Spot Websockets v2 book checksum" worked example (BTC/USD, price 1 dp, qty 8 dp)
    asks = [(Decimal("45285.2"), Decimal("0.00100000")), (Decimal("45286.4"), Decimal("1.54571953")),
            (Decimal("45286.6"), Decimal("1.54571109")), (Decimal("45289.6"), Decimal("1.54560911")),
            (Decimal("45290.2"), Decimal("0.15890660")), (Decimal("45291.8"), Decimal("1.54553491")),
            (Decimal("45294.7"), Decimal("0.04454749")), (Decimal("45296.1"), Decimal("0.35380000")),
            (Decimal("45297.5"), Decimal("0.09945542")), (Decimal("45299.5"), Decimal("0.18772827"))]  # fmt: skip
    bids = [(Decimal("45283.5"), Decimal("0.10000000")), (Decimal("45283.4"), Decimal("1.54582015")),
            (Decimal("45282.1"), Decimal("0.10000000")), (Decimal("45281.0"), Decimal("0.10000000")),
            (Decimal("45280.3"), Decimal("1.54592586")), (Decimal("45279.0"), Decimal("0.07990000")),
            (Decimal("45277.6"), Decimal("0.03310103")), (Decimal("45277.5"), Decimal("0.30000000")),
            (Decimal("45277.3"), Decimal("1.54602737")), (Decimal("45276.6"), Decimal("0.15445238"))]  # fmt: skip
    assert checksum(bids, asks, 1, 8) == 3310070434


def test_bybit_book_deltas_continue_the_snapshot(local_exchange: LocalExchange) -> None:
    async def go() -> list[dict[str, Any]]:
        url = local_exchange.api_base("bybit").replace("http", "ws") + "/v5/public/spot"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(json.dumps({"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]}))
            assert json.loads((await ws.receive(timeout=10)).data)["success"] is True
            return [json.loads((await ws.receive(timeout=10)).data) for _ in range(20)]

    messages = asyncio.run(go())
    assert messages[0]["type"] == "snapshot" and len(messages[0]["data"]["b"]) == 50
    ids = [m["data"]["u"] for m in messages]
    assert ids == list(range(ids[0], ids[0] + 20))


async def test_kraken_serves_its_recorded_rest_responses_to_ccxt(local_exchange: LocalExchange) -> None:
    client = create_exchange(
        "kraken", websocket=False, rate_limit=False, api_base=local_exchange.api_base("kraken")
    )
    try:
        book = await client.fetch_order_book("BTC/USDT")
        trades = await client.fetch_trades("BTC/USDT")
        candles = await client.fetch_ohlcv("BTC/USDT", "1m")
    finally:
        await client.close()
    # Kraken's own responses (nautilus_trader test data, XBTUSDT, 2025-11-10/11), as ccxt parses them
    assert book["asks"][0][:2] == [105944.3, 0.136] and len(book["bids"]) == 5 == len(book["asks"])
    assert len(trades) == 1000 and trades[0]["price"] == 105433.6 and trades[0]["side"] == "buy"
    assert len(candles) == 721 and candles[0][0] == 1762777020 * 1000


async def test_kraken_order_endpoints_refuse_with_krakens_errors_and_ccxt_maps_them() -> None:
    desk = OrderDesk()
    desk.set_book("BTCUSDT", "50000", "50001")
    with LocalExchange(venues=["kraken"], installers=[install_orders(desk)], message_limit=200) as local:
        url = local.venue("kraken").base_url + "/0/private/AddOrder"
        form = {"nonce": "1", "pair": "XBTUSDT", "type": "buy", "ordertype": "limit", "volume": "0.01",
                "price": "49990"}  # fmt: skip
        async with aiohttp.ClientSession() as session:
            answers = []
            for headers, body in [
                ({"API-Key": "k"}, form),
                ({"API-Key": "k", "API-Sign": "s"}, {"pair": "XBTUSDT"}),
            ]:
                async with session.post(url, data=body, headers=headers) as response:
                    answers.append((response.status, await response.json()))
        # Kraken answers HTTP 200 with the error list: unsigned, then without a nonce
        assert answers == [(200, {"error": ["EAPI:Invalid key"], "result": {}}),
                           (200, {"error": ["EGeneral:Invalid arguments"], "result": {}})]  # fmt: skip
        client = create_exchange("kraken", websocket=False, rate_limit=False, api_base=local.api_base("kraken"),
                                 credentials={"apiKey": "k", "secret": "bG9jYWwtc2VjcmV0"})  # fmt: skip
        try:
            await client.load_markets()
            taker = await client.create_order("BTC/USDT", "limit", "buy", 0.01, 50001, {"postOnly": True})
            # Kraken accepts a post-only order that would take the ask, then cancels it
            (canceled,) = await client.fetch_closed_orders("BTC/USDT")
            assert (canceled["id"], canceled["status"], canceled["postOnly"]) == (
                taker["id"],
                "canceled",
                True,
            )
            assert canceled["info"]["reason"] == "Post only order" and desk.trades == []
            with pytest.raises(
                ccxt.InsufficientFunds, match="EOrder:Insufficient funds"
            ):  # 500,000 > 100,000
                await client.create_order("BTC/USDT", "limit", "buy", 10, 50000)
            with pytest.raises(ccxt.OrderNotFound):
                await client.cancel_order(None, "BTC/USDT", {"clientOrderId": "no-such-order"})
            client_id = "7b0c2bfa-3f7e-4a55-9d4a-3c6f1a2b9e10"
            placed = await client.create_order(
                "BTC/USDT", "limit", "sell", 0.01, 50010, {"clientOrderId": client_id}
            )
        finally:
            await client.close()
    _, order = desk.orders
    assert (order.client_id, order.side, order.symbol, order.quantity, order.price) == (
        client_id, "SELL", "BTCUSDT", Decimal("0.01"), Decimal("50010"))  # fmt: skip
    assert placed["id"] == order_txid(order) and placed["amount"] == 0.01

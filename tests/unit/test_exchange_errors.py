"""An exchange error described for an event or a log line never carries a signed request's query."""

import ccxt
import pytest

from adapters.exchanges.errors import describe

pytestmark = pytest.mark.unit


def test_a_signed_url_loses_its_query_but_keeps_host_path_and_status() -> None:
    exc = ccxt.ExchangeNotAvailable(
        "binance GET http://127.0.0.1:8123/api/v3/order?symbol=BTCUSDT&origClientOrderId=cse1"
        "&timestamp=1700000000000&recvWindow=10000&signature=9f86d081884c7d659a2feaa0c55ad015 503 Service Unavailable"
    )
    text = describe(exc)
    assert (
        text
        == "ExchangeNotAvailable: binance GET http://127.0.0.1:8123/api/v3/order?… 503 Service Unavailable"
    )
    assert "signature" not in text and "9f86d0" not in text


def test_a_message_without_urls_is_kept_whole() -> None:
    assert describe(
        ccxt.InsufficientFunds('binance {"code":-2010,"msg":"Account has insufficient balance"}')
    ) == ('InsufficientFunds: binance {"code":-2010,"msg":"Account has insufficient balance"}')

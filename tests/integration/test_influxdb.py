"""InfluxDB 1.x via projections.influx_http: create, write (ns, escaped tags), query, overwrite."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from projections.influx_http import InfluxError, InfluxHTTPClient, encode_line, quote_ident

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_encode_line_escaping() -> None:
    line = encode_line(
        "spread quotes,v1",
        {"venue": "binance us", "pair": "BTC,USD=x"},
        {"bid": 1.5, "qty": 3, "ok": True, "note": 'say "hi" \\o/', "px": Decimal("101.25")},
        1_700_000_000_123_456_789,
    )
    assert line == (
        r"spread\ quotes\,v1,pair=BTC\,USD\=x,venue=binance\ us "
        r'bid=1.5,qty=3i,ok=true,note="say \"hi\" \\o/",px=101.25 1700000000123456789'
    )
    with pytest.raises(ValueError):
        encode_line("m", {"t": ""}, {"f": 1})
    with pytest.raises(ValueError):
        encode_line("m", None, {"f": float("nan")})


async def test_write_query_and_overwrite(influx_url: str, influx_db: str, unique_name: str) -> None:
    db = f"cse_it_{unique_name}"
    async with InfluxHTTPClient(influx_url) as influx:
        assert (await influx.ping()).startswith("1.")
        await influx.create_database(influx_db)  # the services' own database: idempotent
        await influx.create_database(db, retention="1h")
        try:
            t0 = time.time_ns() - 1_000_000_000
            tags = {"venue": "binance us", "pair": "BTC,USD=x"}
            points = [
                encode_line(
                    "spread", tags, {"bid": 100.0 + i, "ask": 100.5 + i, "n": i, "note": f'q"{i}'}, t0 + i
                )
                for i in range(5)
            ]
            await influx.write(db, points)

            [series] = await influx.query(db, 'SELECT * FROM "spread" GROUP BY * ORDER BY time')
            assert series.name == "spread" and series.tags == tags
            rows = series.rows()
            assert [r["time"] for r in rows] == [t0 + i for i in range(5)]  # exact nanoseconds
            assert [(r["bid"], r["ask"], r["n"], r["note"]) for r in rows] == [
                (100.0 + i, 100.5 + i, i, f'q"{i}') for i in range(5)
            ]

            # Same measurement + tag set + timestamp = same point: a rewrite replaces it.
            await influx.write(
                db, [encode_line("spread", tags, {"bid": 1.0, "ask": 2.0, "n": 99, "note": "x"}, t0)]
            )
            await influx.write(
                db, [encode_line("spread", tags, {"bid": 1.0, "ask": 2.0, "n": 99, "note": "x"}, t0)]
            )
            [series] = await influx.query(db, 'SELECT * FROM "spread" GROUP BY * ORDER BY time')
            rows = series.rows()
            assert len(rows) == 5
            assert (rows[0]["time"], rows[0]["bid"], rows[0]["n"], rows[0]["note"]) == (t0, 1.0, 99, "x")
            [count] = await influx.query(db, f'SELECT count("n") FROM {quote_ident("spread")}')
            assert count.values[0][1] == 5

            with pytest.raises(InfluxError) as err:
                await influx.write(db, ["not line protocol"])
            assert err.value.status == 400
        finally:
            await influx.drop_database(db)

"""Small async client for the InfluxDB 1.x HTTP API (``/ping``, ``/write``, ``/query``).

Targets InfluxDB 1.6+ (Debian bookworm ships 1.6.7), which has no ``/api/v2``
endpoints, so the v2 ``influxdb-client`` cannot be used.  Also provides
:func:`encode_line`, a line-protocol encoder following the 1.x parser rules.

Example::

    async with InfluxHTTPClient("http://127.0.0.1:8086") as influx:
        await influx.create_database("cse", retention="30d")
        await influx.write("cse", [encode_line("trades", {"venue": "binance"}, {"px": 1.5}, ts_ns)])
        series = await influx.query("cse", 'SELECT * FROM "trades"')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, Self

import httpx

__all__ = ["FieldValue", "InfluxError", "InfluxHTTPClient", "Series", "encode_line", "quote_ident"]

FieldValue = bool | int | float | Decimal | str
Precision = Literal["ns", "u", "ms", "s", "m", "h"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InfluxError(Exception):
    """A failed InfluxDB call. ``status`` is the HTTP status (None if the server was unreachable)."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        detail = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{message}{detail}: {body}" if body else f"{message}{detail}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Series:
    """One series of a query result. With ``epoch='ns'`` the ``time`` column holds int nanoseconds."""

    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """Values as dicts keyed by column name (tags of GROUP BY queries included)."""
        return [{**self.tags, **dict(zip(self.columns, v, strict=True))} for v in self.values]


# --------------------------------------------------------------------------- line protocol
# InfluxDB 1.x rules (models/points.go): measurement escapes ',' and ' ';
# tag keys, tag values and field keys escape ',', '=' and ' '; string field
# values are double-quoted with '"' and '\' escaped.  Newlines cannot be
# represented anywhere except inside string field values; a trailing '\' in
# an identifier would escape the following separator.


def _check_ident(kind: str, s: str) -> None:
    if not s:
        raise ValueError(f"{kind} must not be empty")
    if "\n" in s or "\r" in s:
        raise ValueError(f"{kind} {s!r} contains a newline, which line protocol cannot represent")
    if s.endswith("\\"):
        raise ValueError(f"{kind} {s!r} ends with a backslash, which line protocol cannot represent")


def _escape_measurement(s: str) -> str:
    _check_ident("measurement", s)
    return s.replace(",", r"\,").replace(" ", r"\ ")


def _escape_key(kind: str, s: str) -> str:
    _check_ident(kind, s)
    return s.replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def encode_field(name: str, v: FieldValue) -> str:
    if isinstance(v, bool):  # before int: bool is an int subclass
        return "true" if v else "false"
    if isinstance(v, int):
        if not -(2**63) <= v < 2**63:
            raise ValueError(f"field {name!r}: integer {v} does not fit in int64")
        return f"{v}i"
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"field {name!r}: {v} is not representable in InfluxDB")
        return repr(v)
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise ValueError(f"field {name!r}: {v} is not representable in InfluxDB")
        return format(v, "f")  # stored as float64
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"field {name!r}: unsupported type {type(v).__name__}")


def to_ns(ts: int | datetime) -> int:
    """Nanoseconds since the Unix epoch; ints are taken as ns, datetimes must be timezone-aware."""
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware datetime")
        d = ts - _EPOCH
        return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1_000
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise TypeError(f"timestamp must be int nanoseconds or datetime, not {type(ts).__name__}")
    return ts


def encode_line(
    measurement: str,
    tags: Mapping[str, str] | None,
    fields: Mapping[str, FieldValue],
    timestamp: int | datetime | None = None,
) -> str:
    """Encode one point as an InfluxDB 1.x line (timestamp in ns; None = server time).

    Tags are sorted by key (what InfluxDB recommends); fields keep their order.
    """
    if not fields:
        raise ValueError("a point needs at least one field")
    parts = [_escape_measurement(measurement)]
    for k, v in sorted((tags or {}).items()):
        if not isinstance(v, str):
            raise TypeError(f"tag {k!r}: values must be str, not {type(v).__name__}")
        parts.append(f"{_escape_key('tag key', k)}={_escape_key('tag value', v)}")
    line = (
        ",".join(parts)
        + " "
        + ",".join(f"{_escape_key('field key', k)}={encode_field(k, v)}" for k, v in fields.items())
    )
    return line if timestamp is None else f"{line} {to_ns(timestamp)}"


def quote_ident(name: str) -> str:
    """Quote an identifier (database, measurement, ...) for InfluxQL."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- client
class InfluxHTTPClient:
    """Async InfluxDB 1.x client over httpx. Non-2xx answers raise :class:`InfluxError`."""

    def __init__(self, url: str, *, timeout: float = 10.0, client: httpx.AsyncClient | None = None) -> None:
        self._own_client = client is None
        self._http = client or httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self._http.aclose()

    async def _request(self, what: str, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = await self._http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise InfluxError(f"{what}: InfluxDB at {self._http.base_url} unreachable ({e!r})") from e
        if not resp.is_success:
            raise InfluxError(what, status=resp.status_code, body=resp.text.strip())
        return resp

    async def ping(self) -> str:
        """Check the server is up (``/ping`` answers 204); returns its version."""
        resp = await self._request("ping", "GET", "/ping")
        if resp.status_code != 204:
            raise InfluxError("ping: unexpected answer", status=resp.status_code, body=resp.text)
        return str(resp.headers.get("X-Influxdb-Version", ""))

    async def create_database(self, name: str, *, retention: str | None = None) -> None:
        """``CREATE DATABASE`` (idempotent); ``retention`` e.g. ``"30d"`` sets the default policy's duration."""
        q = f"CREATE DATABASE {quote_ident(name)}"
        if retention is not None:
            q += f" WITH DURATION {retention}"
        await self.execute(q)

    async def drop_database(self, name: str) -> None:
        await self.execute(f"DROP DATABASE {quote_ident(name)}")

    async def write(
        self,
        db: str,
        lines: Iterable[str],
        *,
        precision: Precision = "ns",
        retention_policy: str | None = None,
    ) -> None:
        """Write a batch of line-protocol lines (see :func:`encode_line`)."""
        body = "\n".join(lines)
        if not body:
            return
        params = {"db": db, "precision": precision}
        if retention_policy is not None:
            params["rp"] = retention_policy
        await self._request("write", "POST", "/write", params=params, content=body.encode())

    async def execute(self, q: str, db: str | None = None) -> list[Series]:
        """Run InfluxQL statement(s) via POST; statement errors raise :class:`InfluxError`."""
        params = {"epoch": "ns"} | ({"db": db} if db is not None else {})
        resp = await self._request("query", "POST", "/query", params=params, data={"q": q})
        out: list[Series] = []
        for result in resp.json().get("results", []):
            if "error" in result:
                raise InfluxError(f"query {q!r} failed", status=resp.status_code, body=str(result["error"]))
            out.extend(
                Series(
                    name=s.get("name", ""),
                    columns=list(s.get("columns", [])),
                    values=[list(v) for v in s.get("values", [])],
                    tags=dict(s.get("tags") or {}),
                )
                for s in result.get("series", [])
            )
        return out

    async def query(self, db: str, q: str) -> list[Series]:
        """Run a query against ``db``; times come back as int nanoseconds."""
        return await self.execute(q, db)

"""`--api-base EXCHANGE=URL`: point every URL ccxt has for an exchange at another host, keeping the paths.

ccxt keeps an exchange's endpoints in `exchange.urls["api"]`, a nest of dicts of URL strings (REST and
websocket, some with a `{hostname}` template in the host). Rewriting the scheme and host of each string, and
keeping its path, sends every REST call and websocket connection to the new host: a local exchange in tests,
a testnet, or a proxy. http(s) URLs take the base's scheme; ws(s) URLs take ws for an http base, wss for https.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

_SCHEME_HOST = re.compile(r"^(https?|wss?)://[^/]+")


class ApiBaseError(ValueError):
    """A malformed `--api-base` value; the message names it."""


def parse_api_bases(values: Iterable[str]) -> dict[str, str]:
    """`["binance=http://127.0.0.1:8080", ...]` -> {"binance": "http://127.0.0.1:8080"}; one entry per exchange."""
    bases: dict[str, str] = {}
    for value in values:
        exchange, sep, url = value.partition("=")
        exchange, url = exchange.strip(), url.strip().rstrip("/")
        if not sep or not exchange or not url:
            raise ApiBaseError(
                f"--api-base {value!r}: expected EXCHANGE=URL, e.g. binance=http://127.0.0.1:8080"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise ApiBaseError(f"--api-base {value!r}: the URL must be http(s)://host[:port] with no path")
        if exchange in bases and bases[exchange] != url:
            raise ApiBaseError(f"--api-base {value!r}: {exchange} already points at {bases[exchange]}")
        bases[exchange] = url
    return bases


def rewrite_url(url: str, base: str) -> str:
    """`url` with the scheme and host of `base` (http(s)://host:port), its path kept; other strings unchanged."""
    match = _SCHEME_HOST.match(url)
    if match is None:
        return url
    secure = base.startswith("https://")
    host = base.split("://", 1)[1]
    scheme = (
        ("wss" if secure else "ws") if match.group(1).startswith("ws") else ("https" if secure else "http")
    )
    return f"{scheme}://{host}{url[match.end() :]}"


def rewrite_urls(node: Any, base: str) -> Any:
    """Every URL string in a nest of dicts and lists (ccxt's `urls["api"]`) rewritten onto `base`."""
    if isinstance(node, Mapping):
        return {key: rewrite_urls(value, base) for key, value in node.items()}
    if isinstance(node, list):
        return [rewrite_urls(value, base) for value in node]
    if isinstance(node, str):
        return rewrite_url(node, base)
    return node


def urls_of(node: Any) -> list[str]:
    """Every URL string in a nest of dicts and lists, depth first."""
    if isinstance(node, Mapping):
        return [url for value in node.values() for url in urls_of(value)]
    if isinstance(node, list):
        return [url for value in node for url in urls_of(value)]
    return [node] if isinstance(node, str) and _SCHEME_HOST.match(node) else []

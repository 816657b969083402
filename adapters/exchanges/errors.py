"""What an exchange error may say in an event, a log line or a metric.

ccxt puts the request URL in its error messages; a signed request's query string carries the timestamp,
the API key on some venues and the signature. None of that may reach the log, so every description of an
exchange failure goes through `describe`, which keeps scheme, host and path and drops the query."""

from __future__ import annotations

import re

_QUERY = re.compile(r"((?:https?|wss?)://[^\s?#]+)\?[^\s#]*")
_WITHOUT_QUERY = r"\1?…"


def describe(exc: BaseException) -> str:
    """`ErrorType: message` with every URL's query string replaced by `?…`."""
    message = _QUERY.sub(_WITHOUT_QUERY, str(exc))
    return f"{type(exc).__name__}: {message}"

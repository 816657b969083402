"""Fault injection for one venue of the local exchange, set from the test's thread, applied by the server.

HTTP faults match a path prefix and fire `times` times: a status (429 with Retry-After, 500, 502, 503...)
or a delay longer than the client's timeout. Websocket faults: drop every open connection after N more
messages, and skip or swap depth updates (an exchange-side sequence gap the client must detect).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class HttpFault:
    path_prefix: str
    times: int
    status: int | None = None
    delay_s: float = 0.0
    retry_after_s: int | None = None


@dataclass
class Faults:
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _http: list[HttpFault] = field(default_factory=list)
    drop_ws_after: int | None = None
    """Close every websocket of the venue once this many more messages were sent (then clears)."""
    skip_depth_after: int | None = None
    """Leave out one depth update once this many more depth updates were sent (then clears): a gap."""
    swap_depth_after: int | None = None
    """Send the next two depth updates in swapped order once this many more were sent (then clears)."""
    drops: int = 0
    """Websocket connections closed by `drop_ws_after` so far."""

    def http_status(
        self, path_prefix: str, status: int, *, times: int = 1, retry_after_s: int | None = None
    ) -> None:
        with self._lock:
            self._http.append(HttpFault(path_prefix, times, status=status, retry_after_s=retry_after_s))

    def http_delay(self, path_prefix: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next `times` requests under `path_prefix` only after `seconds` (a client timeout)."""
        with self._lock:
            self._http.append(HttpFault(path_prefix, times, delay_s=seconds))

    def take_http(self, path: str) -> HttpFault | None:
        """The fault to apply to a request for `path`, counted as used."""
        with self._lock:
            for fault in self._http:
                if path.startswith(fault.path_prefix) and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._http.remove(fault)
                    return fault
        return None

    def drop_ws(self, after: int = 0) -> None:
        self.drop_ws_after = after

    def skip_depth(self, after: int = 0) -> None:
        self.skip_depth_after = after

    def swap_depth(self, after: int = 0) -> None:
        self.swap_depth_after = after

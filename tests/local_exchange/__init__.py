"""A local exchange for tests: the REST and websocket endpoints ccxt calls, per venue, on 127.0.0.1.

`LocalExchange(venues=[...], installers=[...])` serves each venue on its own free port (venue names are ccxt
exchange ids: `binance`, `binanceusdm`, `bybit`, `kraken`); point ccxt at it with
`--api-base VENUE=exchange.api_base(VENUE)`. Market data is played back from recorded messages (see
`playback`), faults are injected per venue (`exchange.venue(name).faults`, see `faults`), and other modules add
routes with installers (see `server.Installer`).
"""

from tests.local_exchange.faults import Faults
from tests.local_exchange.server import Installer, LocalExchange, VenueServer

__all__ = ["Faults", "Installer", "LocalExchange", "VenueServer"]

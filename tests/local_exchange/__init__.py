"""A local exchange for tests: the REST and websocket endpoints ccxt calls, per venue, on 127.0.0.1.

`LocalExchange(venues=[...], installers=[...], captures={...}, message_limit=N)` serves each venue on its own
free port; venue names are ccxt exchange ids: `binance`, `binanceusdm`, `binancecoinm` (the hftbacktest
captures, byte for byte), `bybit`, `kraken`, `coinbase` (the captured market in their documented formats).
Point ccxt at a venue with `--api-base VENUE=exchange.api_base(VENUE)` (`adapters.exchanges.api_base`).

- Market data is played from recorded messages (`playback`), and the market moves only while a websocket
  is connected; `venue(name).feed` is the venue's `Playback` (its `feed` holds the true book).
- Faults per venue: `venue(name).faults` (`faults.Faults`): HTTP status (429 with Retry-After, 5xx), delays
  beyond the client's timeout, dropped websockets, skipped or swapped depth updates.
- More routes per venue (orders, accounts...): pass installers, each called once per venue with its
  `VenueServer` before the server starts:

      def install_orders(venue: VenueServer) -> None:
          if venue.name == "binance":
              venue.app.router.add_post("/api/v3/order", handler)   # state in venue.state

      LocalExchange(venues=["binance"], installers=[install_orders])

  They may read the venue's market (`venue.feed`) and must add their routes before the catch-all 404,
  which `LocalExchange` adds after them; the fault middleware applies to their routes too.
"""

from tests.local_exchange.faults import Faults
from tests.local_exchange.server import Installer, LocalExchange, VenueServer

__all__ = ["Faults", "Installer", "LocalExchange", "VenueServer"]

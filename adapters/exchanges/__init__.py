"""Exchanges through ccxt: the client factory (`factory`) and the recorder of live market data (`recorder`)."""

"""Exchanges through ccxt: the client factory (`factory`), credentials, the recorder of live market data
(`recorder`) and the live venue adapter (`live_venue`, its trading loop `trading`)."""

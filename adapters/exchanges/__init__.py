"""Exchanges through ccxt: credentials, the market-data recorder and the live venue adapter."""

"""Importers: turn recorded market data files into event-log records."""

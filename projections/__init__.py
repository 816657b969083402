"""Projections: read models in PostgreSQL/SQLite and time series in InfluxDB, built from the event log."""

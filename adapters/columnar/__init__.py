"""Columnar market data: content-addressed Arrow IPC files (see `schema`)."""

"""Adapters: implementations of the application ports (storage, venues, importers) and the entry points."""

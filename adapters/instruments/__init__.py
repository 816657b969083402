"""Instrument specifications: the shipped file `specs.toml` and a user's own, turned into InstrumentDefined."""

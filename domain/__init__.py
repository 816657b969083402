"""The domain: pure deciders and the event catalogue. Imports nothing of ours but itself; no I/O, no clock."""

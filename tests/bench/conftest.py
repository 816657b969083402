"""Benchmarks are run by `make bench` (tests/bench/run.py), never collected as tests."""

collect_ignore_glob = ["*.py"]

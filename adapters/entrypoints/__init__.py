"""Entry points: the `cse` command line."""

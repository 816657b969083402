"""Use cases, ports and the engine that runs the domain deciders (backtest, replay, and later live)."""

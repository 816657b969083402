"""One module per exchange protocol: which websocket to open, what to subscribe, how each raw message becomes
market-data events, and how that venue resyncs a book (docs/recording.md lists the sequence rules)."""

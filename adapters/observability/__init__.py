"""Operations: Prometheus metrics, the `/metrics` + `/health` server, OpenTelemetry traces across Kafka hops
and structured JSON logs. Wired by the composition root (`adapters/entrypoints/`); the domain and the
application know nothing of it (trading metrics are read off the derived-event stream, `derived.py`)."""

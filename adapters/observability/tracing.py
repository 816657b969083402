"""OpenTelemetry traces across the Kafka hops (record -> worker -> projector).

Every message carries a W3C `traceparent` header (`streams/serialization.py`): by default derived from the
event (trace id = the correlation id of its causal chain), so one chain is one trace even with tracing off.
With tracing on, each hop continues the trace of the message it consumes (`Tracing.consume`) and the
messages it publishes carry its own span as parent (`Tracing.traceparent`), so a tick's spans across
processes form one tree under one trace id.

Off by default: no exporter, nothing sampled, and `consume` returns one shared null context without parsing
the header (`tests/bench`: no measurable cost). On: an OTLP/HTTP exporter to `otlp_endpoint` (or any
exporter a test passes, e.g. the SDK's in-memory one) and `sample_ratio` of the traces kept, decided on the
trace id alone (`TraceIdHashSampler`), so every process keeps or drops the same traces.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, Span, SpanKind, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
_OFF: AbstractContextManager[None] = contextlib.nullcontext()


class TraceIdHashSampler(Sampler):
    """Keeps a trace iff a hash of its trace id falls below `ratio`: every process decides the same for a
    trace, whatever the incoming sampled flag. Not the SDK's TraceIdRatioBased, which reads the trace id's low
    64 bits: our trace ids are event UUIDs, whose variant bits fix the top of that half, so it would keep
    none (ratio < 0.5) or all of them."""

    def __init__(self, ratio: float) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"trace sample ratio must be within [0, 1], not {ratio}")
        self.ratio = ratio
        self._bound = round(ratio * (1 << 64))

    def keeps(self, trace_id: int) -> bool:
        digest = hashlib.blake2b(trace_id.to_bytes(16, "big"), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self._bound

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: SpanKind | None = None,
                      attributes: Attributes = None, links: Sequence[Link] | None = None,
                      trace_state: Any = None) -> SamplingResult:  # fmt: skip
        keep = self.keeps(trace_id)
        state = get_current_span(parent_context).get_span_context().trace_state if parent_context else None
        return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP, attributes if keep else None,
                              state)  # fmt: skip

    def get_description(self) -> str:
        return f"TraceIdHashSampler{{{self.ratio}}}"


class Tracing:
    """One per process, built by the composition root from the settings and passed to each service."""

    def __init__(self, provider: TracerProvider | None = None, service: str = "cse",
                 sampler: TraceIdHashSampler | None = None) -> None:  # fmt: skip
        self.provider = provider
        self.sampler = sampler
        self.enabled = provider is not None
        self.tracer = provider.get_tracer("cryptospreadedge") if provider else trace.NoOpTracer()
        self.service = service

    @classmethod
    def off(cls) -> Tracing:
        return cls()

    @classmethod
    def configure(cls, service: str, otlp_endpoint: str | None = None, sample_ratio: float = 1.0,
                  exporter: SpanExporter | None = None) -> Tracing:  # fmt: skip
        """Off unless an OTLP endpoint (or a test's exporter) is given."""
        if not otlp_endpoint and exporter is None:
            return cls.off()
        sampler = TraceIdHashSampler(sample_ratio)
        provider = TracerProvider(resource=Resource.create({"service.name": service}), sampler=sampler)
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        if otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            url = otlp_endpoint.rstrip("/")
            url = url if url.endswith("/v1/traces") else f"{url}/v1/traces"
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        return cls(provider, service, sampler)

    def consume(self, name: str, headers: Mapping[str, bytes], attributes: Mapping[str, Any] | None = None
                ) -> AbstractContextManager[Span | None]:  # fmt: skip
        """A CONSUMER span continuing the trace of a message's `traceparent` (a no-op when off)."""
        if not self.enabled:
            return _OFF
        header = headers.get(TRACEPARENT)
        if header is not None and self.sampler is not None and not self._kept(header):
            return _OFF  # dropped here as in every hop (same trace id, same decision): no span to build
        carrier = {TRACEPARENT: header.decode("ascii", "replace")} if header is not None else {}
        parent = _PROPAGATOR.extract(carrier)
        return self.tracer.start_as_current_span(name, context=parent, kind=SpanKind.CONSUMER,
                                                 attributes=dict(attributes or {}))  # fmt: skip

    def _kept(self, header: bytes) -> bool:
        try:
            trace_id = int(header[3:35], 16)
        except ValueError:
            return True  # not a W3C header: let the propagator decide (it starts a new trace)
        assert self.sampler is not None
        return self.sampler.keeps(trace_id)

    @contextlib.contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span | None]:
        """An internal span under the current one (a no-op when off)."""
        if not self.enabled:
            yield None
            return
        with self.tracer.start_as_current_span(name, attributes=dict(attributes or {})) as span:
            yield span

    def traceparent(self) -> str | None:
        """`traceparent` of the current span for the messages it publishes; None when off or unsampled
        (the serializer then writes the deterministic one)."""
        if not self.enabled:
            return None
        context = trace.get_current_span().get_span_context()
        if not context.is_valid or not context.trace_flags.sampled:
            return None
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()

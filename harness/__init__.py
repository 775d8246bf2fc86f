"""Real components for the tests and the benchmarks, one module each: a CNCF registry, a Kafka-protocol broker,
PostgreSQL servers, ocicat processes, real Helm, OCI pushes, registry notifications, faults on purpose, Chromium.

Nothing here is mocked: each module starts or drives the real thing on loopback.
"""

"""Catalog events out: from the outbox (ocicat.catalog.outbox) to the world outside.

- render: a catalog event as a CloudEvent (the one shape every output starts from), with links to the UI and API;
- topic: the Kafka catalog topic, every event keyed by its repository;
- dispatch: the one dispatcher (of all workers) that reads the outbox in order and hands each event to the outputs.
"""

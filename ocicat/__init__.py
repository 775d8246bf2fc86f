"""ocicat: an event-driven catalog for OCI registries.

This package holds what the indexer and the API share (configuration, the
database connection, migrations) and the ``ocicat`` command line.
"""

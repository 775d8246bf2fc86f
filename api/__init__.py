"""The read side of ocicat: a Flask app serving the catalog that the indexer writes."""

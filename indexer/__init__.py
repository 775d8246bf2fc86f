"""The indexing side of ocicat: receiver -> bus -> worker -> registry client -> classify -> parse -> store."""

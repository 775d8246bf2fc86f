"""The OCI vocabulary: names and reference patterns, media types, artifact kinds and how a manifest is classified.

Pure definitions and functions of the registry's data, with no I/O; nothing
here imports the rest of ocicat, so every layer above can use it.
"""

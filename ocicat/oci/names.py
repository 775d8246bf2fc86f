"""Repository names, tags and digests as the OCI distribution spec allows them (``spec.md``, "Pulling manifests")."""

from __future__ import annotations

import re

REPOSITORY_RE = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\Z")
# A namespace is a repository path prefix, written with or without a trailing slash.
NAMESPACE_RE = re.compile(REPOSITORY_RE.pattern.replace(r"\Z", r"/?\Z"))
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
# Only digests ocicat can verify are accepted.
DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})\Z")
MAX_REPOSITORY_LENGTH = 255

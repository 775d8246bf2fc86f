"""Deletes asked of the API: checked against the catalog and the caller's role, then asked of the registry.

The catalog itself is not touched: it changes when the registry's delete
event arrives, as for a delete made any other way.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ocicat.catalog import reads
from ocicat.db import Database
from ocicat.errors import NotFound, PermanentError, Refused, TransientError
from ocicat.oci.names import DIGEST_RE, REPOSITORY_RE, TAG_RE

from .auth import Principal

log = logging.getLogger(__name__)


class Registry(Protocol):
    """What the API needs of the registry client (indexer.registry.RegistryClient, wired in by the command line):
    deletes, and the chart archives a Helm repository serves (api.helm_repository)."""

    def delete_manifest(self, repository: str, reference: str, bearer: str | None = None) -> None:
        ...

    def open_blob(self, repository: str, digest: str, max_bytes: int, min_rate: int):
        ...


class DeleteRefused(Exception):
    """Why a delete was not asked of the registry, or what the registry answered: an HTTP status and words."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


# What can be deleted: the pattern of its reference, and how the catalog knows it.
_TARGETS = {
    "manifest": (DIGEST_RE, reads.has_manifest),
    "tag": (TAG_RE, reads.has_tag),
}


def request_delete(db: Database, registry: Registry, principal: Principal, name: str, reference: str,
                   what: str) -> None:
    """Ask the registry to delete a manifest or tag once the caller's role allows it: with the caller's own
    registry token if they signed in with one (the registry then checks too), else with ocicat's credentials.

    What the caller may not see, or the catalog does not know, is a 404 first,
    exactly like what does not exist. Raises DeleteRefused.
    """
    pattern, exists = _TARGETS[what]
    with db.transaction() as cur:
        repository_id = reads.repository_id(cur, principal.view, name) if REPOSITORY_RE.match(name) else None
        known = repository_id is not None and pattern.match(reference) and exists(cur, repository_id, reference)
    if not known:
        raise DeleteRefused(404, f"repository {name!r} has no {what} {reference!r}")
    if not principal.may_delete(name):
        if not principal.authenticated:
            raise DeleteRefused(401, "sign in to delete")
        raise DeleteRefused(403, f"deleting in {name!r} needs the developer role or above")
    try:
        registry.delete_manifest(name, reference, bearer=principal.registry_token)
    except NotFound:
        raise DeleteRefused(404, f"the registry has no {name}:{reference} (deleted already?)") from None
    except Refused as exc:
        raise DeleteRefused(403, str(exc)) from None
    except PermanentError as exc:
        raise DeleteRefused(409, f"the registry refused to delete {name}:{reference}: {exc}") from None
    except TransientError as exc:
        log.warning("delete of %s:%s failed: %s", name, reference, exc)
        raise DeleteRefused(502, "the registry could not be reached, or refused ocicat's credentials; "
                                 "retry later") from None
    log.info("%s deleted %s:%s in the registry", principal.user, name, reference)

"""The catalog as classic Helm chart repositories: ``/helm/<namespace>/index.yaml`` and the archives it lists, for
``helm repo add``, ``helm pull --repo``, Argo CD, Flux's ``HelmRepository``, Renovate and everything else that reads
an index (Helm cannot list or search an OCI registry).

- **The index** lists every chart version under the namespace that the caller may see (``?recursive=false``: the
  namespace's own repositories only; ``/helm/index.yaml``: the whole catalog). It is written from PostgreSQL, never
  from the registry, and only when it changed: its ETag is a digest of the change numbers of the repositories the
  caller sees there (ocicat.catalog.helm_repository.fingerprint), so a revalidation costs one index-range read and
  callers who see different charts never share an ETag or a cached index. Written indexes are kept gzipped
  (api.helm_index.IndexCache) and served gzipped to every client that accepts it (Go's HTTP client always does).
- **Archives** (``charts/<name>-<version>.tgz``, and ``.tgz.prov`` where the chart was pushed with provenance) are
  streamed from the registry's blob with ocicat's own registry credentials, never held whole, and verified against
  their digest: the last piece is held back until the digest matched, so a client never receives a complete wrong
  file (a mismatch cuts the download short).
- **Who may read**: Helm sends HTTP Basic, so an API token is taken as the password (any user name), and Bearer
  tokens work too. A chart the caller may not see is absent from the index and a 404 as an archive, like one that
  does not exist; an anonymous caller is asked to sign in (401, Basic challenge) instead of being told it is absent.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack

from flask import Blueprint, Response, current_app, g, request
from werkzeug.http import is_resource_modified, quote_etag

from ocicat.catalog import helm_repository
from ocicat.errors import NotFound, PermanentError, TransientError
from ocicat.oci.names import NAMESPACE_RE

from . import caller
from .helm_index import Index, IndexCache, gunzipped, gzipped, write
from .openapi import documented
from .problems import problem
from .schemas import HelmIndexArgs

log = logging.getLogger(__name__)

bp = Blueprint("helm", __name__, url_prefix="/helm")
bp.before_request(lambda: caller.authenticate(caller.BASIC_CHALLENGE))

# Bumped when the index's form changes, so that clients holding an old ETag get the new form. (A change to the
# entries themselves, migrations/functions/helm_index_entry.sql, needs a migration that writes them all anew, and
# this bumped.)
INDEX_FORM = "1"
STREAM_CHUNK = 1024 * 1024
# A download goes at its client's pace: the registry's body is given time for a slow client (a 100 MiB chart at
# 8 KiB/s: 3.6 hours), not for the worker's pace.
CLIENT_MIN_RATE = 8 * 1024
INDEX_HEADERS = {"Cache-Control": "private, no-cache", "Vary": "Authorization, Accept-Encoding"}
# file name suffix -> (which file of the chart version, its media type)
_FILES = {".tgz.prov": ("prov", "application/pgp-signature"), ".tgz": ("archive", "application/gzip")}


def _services():
    return current_app.extensions["ocicat"]


def _cache() -> IndexCache:
    extensions = current_app.extensions
    if "helm_index_cache" not in extensions:
        extensions["helm_index_cache"] = IndexCache(_services().config.helm_index_cache_mb * 1024 * 1024)
    return extensions["helm_index_cache"]


def _absent(what: str):
    """What the caller may not see, or what does not exist: 404, or for an anonymous caller 401 with a Basic
    challenge, so that Helm and people are asked for credentials, whichever it is."""
    if not g.principal.authenticated:
        return problem(401, f"{what} is not among the public charts; sign in (HTTP Basic, an ocicat API token as the "
                            "password) to see more", headers=caller.BASIC_CHALLENGE)
    return problem(404, f"{what} not found")


def _namespace(raw: str) -> str | None:
    """The namespace of a path ('' for the whole catalog), or None if no registry could hold it."""
    if raw == "":
        return ""
    return raw.strip("/") if NAMESPACE_RE.match(raw) else None


def _etag(row: dict, namespace: str, recursive: bool) -> str:
    return f"{row['fingerprint']}-{INDEX_FORM}{'r' if recursive else 'f'}-{len(namespace)}-{namespace}"


def _write_index(namespace: str, recursive: bool) -> Index | None:
    """Write the index from one snapshot, so that its contents and its ETag agree."""
    with caller.reading(snapshot=True) as cur:
        row = helm_repository.fingerprint(cur, g.principal.view, namespace, recursive)
        if row is None:
            return None
        entries = helm_repository.entries(cur, g.principal.view, namespace, recursive)
        data, size = gzipped(write(entries, row["changed_at"]))
    return Index(gzipped=data, size=size, etag=_etag(row, namespace, recursive), last_modified=row["changed_at"])


@bp.get("/index.yaml", defaults={"namespace": ""})
@bp.get("/<path:namespace>/index.yaml")
@documented("A classic Helm chart repository's index of the chart versions under a namespace (the whole catalog "
            "at /helm/index.yaml; ?recursive=false: the namespace's own level only), for helm repo add, Argo CD "
            "and Flux", args=HelmIndexArgs, response_type="application/yaml", errors=(400, 401, 404))
def index(namespace: str):
    what = f"a chart repository at {namespace or 'the top level'!r}"
    namespace = _namespace(namespace)
    if namespace is None:
        return _absent(what)
    recursive = HelmIndexArgs().load(request.args)["recursive"]
    with caller.reading() as cur:
        row = helm_repository.fingerprint(cur, g.principal.view, namespace, recursive)
    if row is None:
        return _absent(what)
    etag = _etag(row, namespace, recursive)
    headers = {**INDEX_HEADERS, "ETag": quote_etag(etag, weak=True)}
    # Revalidated by the ETag alone: Last-Modified (the latest event among the repositories) is for people, but a
    # date in whole seconds cannot tell two pushes in one second apart, nor a grant that shows older charts.
    if request.if_none_match and not is_resource_modified(request.environ, etag=etag):
        return Response(status=304, headers=headers)
    built = _cache().get_or_write(etag, lambda: _write_index(namespace, recursive))
    if built is None:  # its last chart went away in between
        return _absent(what)
    headers["ETag"] = quote_etag(built.etag, weak=True)
    response = Response(mimetype="application/yaml", headers=headers)
    response.last_modified = built.last_modified
    if request.accept_encodings["gzip"] > 0:  # a quality of 0 refuses it
        response.data = built.gzipped
        response.headers["Content-Encoding"] = "gzip"
    else:
        response.response = gunzipped(built.gzipped)
        response.headers["Content-Length"] = str(built.size)
    return response


@bp.get("/charts/<filename>", defaults={"namespace": ""})
@bp.get("/<path:namespace>/charts/<filename>")
@documented("A chart archive (<name>-<version>.tgz) or its provenance file (.tgz.prov) that a Helm repository "
            "index lists, streamed from the registry", response_type="application/gzip", errors=(401, 404, 502))
def chart_file(namespace: str, filename: str):
    if filename == "index.yaml":  # the index of a namespace whose last part is "charts" (/helm/charts/index.yaml)
        return index(f"{namespace}/charts" if namespace else "charts")
    suffix = next((s for s in _FILES if filename.endswith(s)), None)
    namespace = _namespace(namespace)
    if suffix is None or namespace is None:
        return _absent(f"chart file {filename!r}")
    part, mimetype = _FILES[suffix]
    with caller.reading() as cur:
        row = helm_repository.archive(cur, g.principal.view, namespace, filename.removesuffix(suffix))
    if row is None or row[f"{part}_digest"] is None:
        return _absent(f"chart file {filename!r}")
    digest, size = row[f"{part}_digest"], row[f"{part}_size"]
    # The same name can be pushed again with other contents: revalidate, by the digest.
    headers = {"ETag": quote_etag(digest), "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    if not is_resource_modified(request.environ, etag=digest):
        return Response(status=304, headers=headers)
    headers["Content-Length"] = str(size)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if request.method == "HEAD":  # what a GET would answer, without asking the registry
        return Response(mimetype=mimetype, headers=headers)
    stack = ExitStack()
    try:
        body = stack.enter_context(_services().registry.open_blob(row["repository"], digest, size, CLIENT_MIN_RATE))
    except NotFound:
        stack.close()
        return problem(404, f"the registry no longer has {row['repository']}@{digest} ({filename}); "
                            "it was deleted after it was indexed")
    except (TransientError, PermanentError) as exc:
        stack.close()
        log.warning("chart file %s of %s: %s", filename, row["repository"], exc)
        return problem(502, "the registry could not give the chart file; retry later")
    response = Response(_verified(body, stack, f"{row['repository']}@{digest}"), mimetype=mimetype, headers=headers)
    response.call_on_close(stack.close)  # also when the body is never read (the client went away first)
    return response


def _pieces(body):
    """The blob in pieces of STREAM_CHUNK bytes (the last one shorter): a read gives what has arrived, often a few
    kilobytes, and each piece sent costs a system call and a pass through the server."""
    pending, size = [], 0
    while chunk := body.read(STREAM_CHUNK):
        pending.append(chunk)
        size += len(chunk)
        if size >= STREAM_CHUNK:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def _verified(body, stack: ExitStack, what: str):
    """The blob's bytes as they arrive, the last piece only once the digest matched (ocicat.registry's Body)."""
    with stack:
        held = b""
        for piece in _pieces(body):
            if held:
                yield held
            held = piece
        try:
            body.verify()
        except (PermanentError, TransientError) as exc:
            log.error("chart file %s: %s; the download was cut short", what, exc)
            raise
        yield held

"""Atom feeds of catalog events (``feedgen``), for people and tools that poll: per namespace, per repository, and
per chart (its new versions), permission-filtered like every read.

Feed readers rarely send a bearer token, so a token is also taken as the password of HTTP Basic (any user name),
and an anonymous reader of what it may not see is asked for one (401 with a Basic challenge) rather than given an
empty feed it would take for the truth. Entries are the newest catalog events kept (OCICAT_EVENTS_RETENTION_DAYS).
"""

from __future__ import annotations

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, current_app, g, request

from ocicat.catalog import outbox, reads
from ocicat.oci.names import NAMESPACE_RE, REPOSITORY_RE

from . import caller
from .problems import problem

bp = Blueprint("feeds", __name__, url_prefix="/feeds")
bp.before_request(caller.authenticate)

ENTRIES = 50


def _feed(title: str, events: list[dict]) -> Response:
    public_url = current_app.extensions["ocicat"].config.public_url
    feed = FeedGenerator()
    feed.id(f"{public_url}{request.path}")
    feed.title(title)
    feed.link(href=f"{public_url}{request.full_path.rstrip('?')}", rel="self")
    feed.link(href=f"{public_url}/ui/", rel="alternate")
    feed.generator("ocicat")
    feed.updated(events[0]["occurred_at"] if events else "1970-01-01T00:00:00Z")
    for event in reversed(events):  # feedgen puts the last added first: newest first
        data = event["data"]
        chart = data.get("chart")
        what = f"{chart['name']} {chart['version']}" if chart else (
            f"{event['repository']}:{event['tag']}" if event["tag"] else f"{event['repository']}@{event['digest']}")
        entry = feed.add_entry()
        entry.id(f"{public_url}/#event-{event['id']}")
        entry.title(f"{event['type']}: {what}")
        entry.updated(event["occurred_at"])
        entry.link(href=outbox.links(public_url, event["type"], data)["ui"])
        entry.summary(f"{event['type']} in {event['repository']}"
                      + (f", tag {event['tag']}" if event["tag"] else "")
                      + (f", digest {event['digest']}" if event["digest"] else "")
                      + (" (found by a resync)" if event["crawl"] else ""))
    return Response(feed.atom_str(pretty=False), mimetype="application/atom+xml",
                    headers={"Cache-Control": "private, no-cache"})


def _events(**where) -> list[dict]:
    with caller.reading() as cur:
        return outbox.latest(cur, g.principal.view, limit=ENTRIES, **where)


def _hidden(name: str, repository: bool):
    """404 for what the caller may not see or that does not exist; 401 first for an anonymous caller."""
    if not g.principal.authenticated:
        return problem(401, "sign in (HTTP Basic, your API token as the password) to read this feed",
                       headers=caller.BASIC_CHALLENGE)
    return problem(404, f"{'repository' if repository else 'namespace'} {name!r} not found")


@bp.get("/namespaces/<path:namespace>")
def namespace_feed(namespace: str):
    """Every catalog event at or below a namespace."""
    if not NAMESPACE_RE.match(namespace):
        return _hidden(namespace, repository=False)
    events = _events(namespace=namespace.strip("/"))
    if not events and not g.principal.authenticated:
        return _hidden(namespace, repository=False)
    return _feed(f"ocicat: {namespace}", events)


@bp.get("/repositories/<path:name>")
def repository_feed(name: str):
    """Every catalog event of a repository: pushes, tag moves, deletes, attachments."""
    return _repository(name, f"ocicat: {name}", None)


@bp.get("/charts/<path:name>")
def chart_feed(name: str):
    """The new versions of a chart (its repository's chart.version.published events)."""
    return _repository(name, f"ocicat: new versions of {name}", ("chart.version.published",))


def _repository(name: str, title: str, types: tuple[str, ...] | None):
    with caller.reading() as cur:
        visible = REPOSITORY_RE.match(name) and reads.repository_id(cur, g.principal.view, name) is not None
    if not visible:
        return _hidden(name, repository=True)
    return _feed(title, _events(repository=name, types=types))

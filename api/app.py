"""The Flask application factory: catalog API, web UI, registry webhook receiver, health checks.

The app is given what it cannot build itself without depending on the
indexer: the bus the receiver publishes to, and the registry client deletes
go through. The command line (ocicat.cli.build_app) wires both in.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, g, jsonify, redirect, render_template, request, url_for
from flask_cors import CORS
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from ocicat import metrics
from ocicat.config import Config
from ocicat.db import Database, Reads
from ocicat.events import Publisher
from ocicat.sign_in import IdentityProvider

from . import caller, receiver, sign_in
from .auth import Principal, RegistryTokens, anonymous
from .deletes import Registry
from .feeds import bp as feeds_bp
from .helm_repository import bp as helm_bp
from .monocular import bp as monocular_bp
from .openapi import build_spec, documented
from .problems import problem
from .routes import bp as catalog_bp
from .security import DOCS_POLICY, secure
from .subscriptions import bp as subscriptions_bp
from .tokens import bp as tokens_bp
from .ui import bp as ui_bp

log = logging.getLogger(__name__)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class Services:
    """What the catalog views need, built once per process and kept in ``app.extensions['ocicat']``."""

    config: Config
    db: Database
    reads: Reads  # where catalog reads go: streaming replicas when configured, else db (api.caller.reading)
    registry: Registry  # deletes through the API and Helm repository archives, with ocicat's own credentials
    registry_tokens: RegistryTokens | None  # verifier of the registry's bearer JWTs, when configured
    anonymous: Principal  # callers without a token
    identity_provider: IdentityProvider | None  # sign-in with OpenID Connect, when configured
    session_cookie: str  # the browser session's cookie (api.caller)
    secure_cookies: bool  # the catalog is served over HTTPS: cookies are Secure


def _version() -> str:
    try:
        return version("ocicat")
    except PackageNotFoundError:
        return "0"


class _Scraped:
    """What /metrics shows: every gunicorn process's samples when ``PROMETHEUS_MULTIPROC_DIR`` is set
    (``ocicat api`` sets it), else this process's; plus the figures counted in the database."""

    def __init__(self, db: Database):
        from prometheus_client import REGISTRY, multiprocess

        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        self.processes = multiprocess.MultiProcessCollector(None, directory) if directory else REGISTRY
        self.database = metrics.DatabaseCollector(db)

    def collect(self):
        yield from self.processes.collect()
        yield from self.database.collect()


def create_app(config: Config, *, db: Database, bus: Publisher, registry: Registry) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = receiver.MAX_BODY_BYTES + 1  # see receiver._receive
    app.json.sort_keys = False
    https = config.public_url.startswith("https://")
    reads = Reads(db, config.database_replica_urls, maxconn=config.api_threads + 2,
                  counted=lambda where: metrics.API_READS.labels(where).inc())
    app.extensions["ocicat"] = Services(config=config, db=db, reads=reads, registry=registry,
                                        registry_tokens=RegistryTokens.from_config(config),
                                        anonymous=anonymous(config.default_public),
                                        identity_provider=IdentityProvider(config.oidc, config.secret_key)
                                        if config.oidc else None,
                                        session_cookie=caller.host_cookie("ocicat_session", https), secure_cookies=https)

    if not config.webhook_secrets:
        log.warning("OCICAT_WEBHOOK_SECRETS is not set: every registry notification will be refused with 401")
    app.register_blueprint(receiver.blueprint(bus, config.webhook_secrets))
    app.register_blueprint(catalog_bp)
    app.register_blueprint(subscriptions_bp)
    app.register_blueprint(tokens_bp)
    if config.oidc:
        sign_in.init(app)
    app.register_blueprint(feeds_bp)
    app.register_blueprint(helm_bp)
    app.register_blueprint(monocular_bp)
    app.register_blueprint(ui_bp)
    app.after_request(secure)
    if reads.replicated:
        app.after_request(caller.note_write)
    # Frontends on other origins read the catalog; they need Link to page and ETag to revalidate.
    CORS(app, resources={r"/api/v1/*": {"origins": "*"}}, expose_headers=["Link", "ETag"], send_wildcard=True)

    @app.after_request
    def relative_redirects(response):
        """Redirects to ocicat's own pages point at a path, never at a host: werkzeug's trailing-slash redirects
        name the request's Host header, which whoever sends the request chooses."""
        location = response.headers.get("Location")
        if response.status_code in (301, 302, 303, 307, 308) and location:
            parts = urlsplit(location)
            if parts.netloc == request.host:
                response.headers["Location"] = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
        return response

    @app.after_request
    def revalidate(response):
        """Every catalog answer carries an ETag; a client that has it gets 304 and no body.

        Answers change whenever the registry does, so caches must revalidate
        (no-cache), which costs a round trip but never serves stale tags.
        """
        if response.status_code >= 400 and request.path.startswith("/api/v1/"):
            response.headers.setdefault("Cache-Control", "no-store")  # an error is about this moment only
            response.vary.add("Authorization")
            return response
        if request.method == "GET" and response.status_code == 200 and response.mimetype == "application/json":
            response.vary.add("Authorization")  # what a caller sees depends on who they are
            response.add_etag()
            response.headers.setdefault("Cache-Control", "no-cache")
            return response.make_conditional(request)
        return response

    scraped = _Scraped(db)

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def observe_latency(response):
        """Latency by route pattern and method: a bounded set of series, whatever paths and methods are asked for
        (one per view, not per name; an unknown method counts as "other")."""
        if "started" in g:
            route = request.url_rule.rule if request.url_rule else "unmatched"
            method = request.method if request.method in HTTP_METHODS else "other"
            metrics.API_SECONDS.labels(route, method).observe(time.perf_counter() - g.started)
        return response

    @app.get("/metrics")
    def metrics_endpoint():
        """Prometheus metrics of every API process (multiprocess mode), with the queue figures from the database."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(scraped), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/openapi.json")
    def openapi_document():
        """The OpenAPI 3 document, generated once per process from the views' own declarations."""
        if "openapi" not in app.extensions:
            app.extensions["openapi"] = build_spec(app, _version())
        return jsonify(app.extensions["openapi"])

    @app.get("/api/v1/docs")
    def api_docs():
        """The same document, readable in a browser: server-rendered, no scripts."""
        if "openapi" not in app.extensions:
            app.extensions["openapi"] = build_spec(app, _version())
        response = app.make_response(render_template("api_docs.html", spec=app.extensions["openapi"]))
        response.headers["Content-Security-Policy"] = DOCS_POLICY
        return response

    @app.get("/")
    def root():
        """People who open ocicat's address want the catalog, not an API."""
        return redirect(url_for("ui.browse"))

    @app.get("/healthz")
    @documented("Liveness: the process answers")
    def healthz():
        """Liveness: the process answers. It never checks dependencies, so a database outage does not restart it."""
        return jsonify(status="ok")

    @app.get("/readyz")
    @documented("Readiness: the database and the bus answer", errors=(503,))
    def readyz():
        """Readiness: the database answers, and the bus (the queue table, or a Kafka broker) can take events."""
        for what, check in (("database", db.ping), ("bus", bus.ready)):
            try:
                check()
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                log.warning("not ready: %s unavailable: %s", what, exc)
                return problem(503, f"{what} unavailable")
        return jsonify(status="ready")

    @app.errorhandler(ValidationError)
    def bad_parameters(exc: ValidationError):
        return problem(400, "invalid request parameters", errors=exc.normalized_messages())

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return problem(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return problem(500, "internal error; see the server log")

    return app

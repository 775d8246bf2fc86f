"""The ``ocicat`` command: thin entry points over the indexer and the API.

This is the one module that imports both ``api`` and ``indexer`` (the import
contract in setup.cfg names it): it wires the bus and the registry client
into the web app (:func:`build_app`), and starts either side as a process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
from contextlib import contextmanager
from datetime import timedelta

import click

from . import accounts, logs, subscriptions
from .catalog import visibility as visibility_rules
from .catalog.outbox import EVENT_TYPES
from .config import Config, ConfigError
from .db import Database, database_url
from .migrate import migrate as apply_migrations
from .oci.classify import ALL_KINDS
from .outbound import Refused

log = logging.getLogger("ocicat")


def _config() -> Config:
    try:
        return Config.from_env()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _ready_database(config: Config) -> str:
    """Resolve the database (starting the embedded one if none is configured) and migrate it."""
    url = database_url(config)
    apply_migrations(url)
    return url


@click.group()
def main() -> None:
    """ocicat: an event-driven catalog for OCI registries."""
    fmt = (os.environ.get("OCICAT_LOG_FORMAT") or "text").lower()
    if fmt not in logs.FORMATS:
        raise click.UsageError(f"OCICAT_LOG_FORMAT must be text or json, got {fmt!r}")
    logs.configure(os.environ.get("OCICAT_LOG_LEVEL") or "INFO", fmt)


@main.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    applied = apply_migrations(database_url(_config()))
    click.echo(f"applied {len(applied)} migration(s)" if applied else "database is up to date")


@main.command()
def worker() -> None:
    """Index events from the bus until stopped."""
    from indexer import worker as indexer_worker

    config = _config()
    _ready_database(config)
    # One process: its metrics are its own (OCICAT_WORKER_METRICS_LISTEN), never written into the API's directory.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    indexer_worker.run(config)


@main.command()
def deliver() -> None:
    """Send webhook deliveries only (beside workers run with OCICAT_WORKER_DELIVERY=false)."""
    from indexer import worker as indexer_worker

    config = _config()
    _ready_database(config)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    indexer_worker.deliver(config)


@main.command()
def api() -> None:
    """Serve the API, web UI and webhook receiver with gunicorn on OCICAT_LISTEN."""
    from gunicorn import glogging
    from gunicorn.app.base import BaseApplication

    config = _config()
    _ready_database(config)
    # gunicorn's processes share their metrics through files (ocicat/metrics.py); set before any of them imports
    # prometheus_client. A directory of our own is emptied at start, as prometheus_client requires.
    own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ocicat-metrics-")

    def child_exit(_server, worker):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    class Logger(glogging.Logger):
        """gunicorn's own lines through ocicat's handler, so OCICAT_LOG_FORMAT=json holds for them too."""

        def setup(self, cfg):
            super().setup(cfg)
            for logger in (self.error_log, self.access_log):
                logger.handlers[:] = []
                logger.propagate = True

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", config.listen)
            self.cfg.set("workers", config.api_workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", config.api_threads)
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("control_socket_disable", True)  # one per user by default: several servers would collide
            self.cfg.set("accesslog", "-" if config.log_level == "DEBUG" else None)
            self.cfg.set("child_exit", child_exit)
            self.cfg.set("logger_class", Logger)

        def load(self):
            return build_app(config)

    try:
        Server().run()
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def build_app(config: Config):
    """The web app of one API process, with its bus and registry client (the API cannot import the indexer)."""
    from api.app import create_app
    from indexer.bus import open_bus
    from indexer.registry import RegistryClient

    db = Database(database_url(config), maxconn=config.api_threads + 2)
    registry = RegistryClient(config.registry_url, config.registry_username, config.registry_password, pool_size=2)
    return create_app(config, db=db, bus=open_bus(config, db), registry=registry)


@main.command()
def serve() -> None:
    """Run API, receiver, worker and deliverer together: everything a single machine needs.

    The database is resolved here once (the embedded one stays up as long as
    this process lives) and handed to the children, which are stopped together
    on SIGTERM/SIGINT. If one dies, the others are stopped too and the exit
    status is non-zero, so a supervisor restarts the whole set.
    """
    config = _config()
    # Webhook deliveries in a process of their own, at a lower CPU priority than indexing (indexer.worker.deliver).
    env = {**os.environ, "OCICAT_DATABASE_URL": _ready_database(config), "OCICAT_WORKER_DELIVERY": "false"}
    children = [subprocess.Popen([sys.executable, "-m", "ocicat", role], env=env)
                for role in ("api", "worker", "deliver")]
    host, port = config.listen_address
    # With JSON logs the addresses are log lines too, so that every line of the output is one object.
    say = log.info if config.log_format == "json" else click.echo
    say(f"ocicat web UI:  http://{host}:{port}/ui/")
    say(f"ocicat API:     http://{host}:{port}/api/v1/repositories")
    say(f"ocicat webhook: http://{host}:{port}/api/v1/events")

    stopping = False

    def _stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    failed = not stopping
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--namespace", default="", metavar="PREFIX", help="Only repositories at or below this path.")
@click.option("--restart", is_flag=True, help="Start from the first repository, not after the last checkpoint.")
@click.option("--reindex", is_flag=True, help="Fetch and extract every manifest again (after an extraction upgrade).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Repositories reconciled, and manifests fetched, at once (default: OCICAT_RESYNC_CONCURRENCY).")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: on a terminal).")
def resync(namespace: str, restart: bool, reindex: bool, concurrency: int | None, progress: bool | None) -> None:
    """Crawl the registry and bring the catalog to its state: index what is missing, remove what is gone.

    Safe while events flow; resumes an interrupted crawl of the same namespace. Exits 1 if some
    repository could not be reconciled (run it again; an interrupted crawl resumes where it stopped).
    """
    from indexer.registry import RegistryClient
    from indexer.resync import Resync, ResyncBusy

    config = _config()
    workers = concurrency or config.resync_concurrency
    # An observation lost to a crash before its WAL flush is simply observed again by the next crawl.
    db = Database(_ready_database(config), maxconn=workers + 2, synchronous_commit=False)
    # Each repository thread lists tags while as many fetch threads get manifests (indexer.resync).
    registry = RegistryClient(config.registry_url, config.registry_username, config.registry_password,
                              pool_size=2 * workers)
    crawl = Resync(db, registry, workers, reindex=reindex)
    show = sys.stderr.isatty() if progress is None else progress
    bar = None

    def plan(count: int) -> None:
        nonlocal bar
        if show:
            bar = click.progressbar(length=count, label="resync", file=sys.stderr, show_pos=True,
                                    item_show_func=lambda o: o.repository if o else None)
            bar.__enter__()

    def done(outcome) -> None:
        if bar is not None:
            bar.update(1, outcome)

    try:
        summary = crawl.run(namespace.strip("/"), restart=restart, on_repository=done, on_plan=plan)
    except ResyncBusy as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        db.close()
    click.echo(f"{summary.repositories} repositories ({summary.skipped} done by the interrupted crawl before): "
               f"{summary.observed} tags and manifests observed, {summary.removed} removed, "
               f"{len(summary.failed)} failed")
    for outcome in summary.failed:
        click.echo(f"{_shown(outcome.repository)}: {_shown(outcome.error)}", err=True)
    if summary.failed:
        sys.exit(1)


@main.group()
def dlq() -> None:
    """Inspect and replay dead-lettered events."""


@dlq.command("list")
@click.option("--all", "include_replayed", is_flag=True, help="Include letters already replayed.")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, payload included.")
def dlq_list(include_replayed: bool, limit: int, as_json: bool) -> None:
    """List dead letters, oldest first."""
    from indexer.bus.dead_letters import list_letters

    db = Database(database_url(_config()), maxconn=1)
    for row in list_letters(db, include_replayed=include_replayed, limit=limit):
        if as_json:
            click.echo(json.dumps(row, default=str))
        else:
            replayed = f" replayed {row['replayed_at']:%Y-%m-%d %H:%M:%S}" if row["replayed_at"] else ""
            _line(row["id"], f"{row['created_at']:%Y-%m-%d %H:%M:%S}", row["stage"], row["event_id"] or "-",
                  row["repository"] or "-", row["reason"] + replayed)


@dlq.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Replay every open dead letter.")
def dlq_replay(ids: tuple[int, ...], replay_all: bool) -> None:
    """Put dead letters back on the queue (by id, or --all)."""
    from indexer.bus.dead_letters import replay

    if bool(ids) == replay_all:
        raise click.UsageError("give dead letter ids or --all (not both)")
    db = Database(database_url(_config()), maxconn=1)
    replayed, refused = replay(db, None if replay_all else list(ids))
    click.echo(f"replayed {len(replayed)} event(s)")
    for letter_id, reason in refused.items():
        click.echo(f"{letter_id}: still invalid, left parked: {_shown(reason)}", err=True)
    if refused:
        sys.exit(1)


# -- accounts: users, tokens, roles (ocicat.accounts), visibility (ocicat.catalog.visibility) ---------


@contextmanager
def _session():
    """A transaction on the catalog database; a bad name, path, role or subscription is a usage error."""
    db = Database(_ready_database(_config()), maxconn=1)
    try:
        with db.transaction() as cur:
            yield cur
    except (accounts.AccountError, subscriptions.SubscriptionError, Refused) as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        db.close()


# What a terminal would act on rather than show: control characters (escape sequences can retitle the window,
# rewrite the screen or, in some terminals, run commands), format characters (bidi overrides reorder what is
# shown), line and paragraph separators.
_UNPRINTABLE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def _shown(value) -> str:
    """Stored data as a terminal may print it: what it would act on is written as an escape (\\x1b, \\u202e)."""
    return "".join(c if unicodedata.category(c) not in _UNPRINTABLE_CATEGORIES
                   else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in str(value))


def _line(*fields) -> None:
    """One row of a listing: its fields escaped (_shown) and separated by tabs."""
    click.echo("\t".join(_shown(field) for field in fields))


def _when(value) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


@main.group()
def user() -> None:
    """Create, list and delete users."""


@user.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May see and delete everything.")
def user_create(name: str, admin: bool) -> None:
    with _session() as cur:
        accounts.create_user(cur, name, admin)
    click.echo(f"created {'administrator' if admin else 'user'} {name}")


@user.command("list")
def user_list() -> None:
    with _session() as cur:
        rows = accounts.list_users(cur)
    for row in rows:
        _line(row["name"], "admin" if row["admin"] else "-", f"{row['grants']} role(s)",
              f"{row['active_tokens']} active token(s)", f"created {_when(row['created_at'])}",
              f"signs in with {row['signed_in_with']}" if row["signed_in_with"] else "local")


@user.command("delete")
@click.argument("name")
def user_delete(name: str) -> None:
    """Delete a user, their tokens and their roles."""
    with _session() as cur:
        accounts.delete_user(cur, name)
    click.echo(f"deleted user {name}")


@main.group()
def token() -> None:
    """Create, list and revoke API tokens."""


@token.command("create")
@click.argument("user_name", metavar="USER")
@click.option("--description", default="", help="What the token is for.")
@click.option("--expires-in-days", type=click.IntRange(min=1), default=None, help="Expiry (default: never).")
def token_create(user_name: str, description: str, expires_in_days: int | None) -> None:
    """Create a token for USER and print it: it is shown this once and never stored."""
    with _session() as cur:
        _, secret = accounts.create_token(cur, user_name, description,
                                          None if expires_in_days is None else timedelta(days=expires_in_days))
    click.echo(secret)


@token.command("list")
@click.option("--user", "user_name", default=None, help="Only this user's tokens.")
def token_list(user_name: str | None) -> None:
    with _session() as cur:
        rows = accounts.list_tokens(cur, user_name)
    for row in rows:
        state = "revoked" if row["revoked_at"] else "expired" if row["expired"] else "active"
        _line(row["id"], row["user"], state, f"expires {_when(row['expires_at'])}",
              f"last used {_when(row['last_used_at'])}", row["description"])


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    with _session() as cur:
        accounts.revoke_token(cur, token_id)
    click.echo(f"revoked token {token_id}")


@main.command()
@click.argument("user_name", metavar="USER")
@click.argument("path")
@click.argument("role", type=click.Choice(accounts.ROLES))
def grant(user_name: str, path: str, role: str) -> None:
    """Give USER ROLE on PATH and everything below it ('/' for the whole registry)."""
    with _session() as cur:
        accounts.grant(cur, user_name, path, role)
        issuer = accounts.signed_in_with(cur, user_name)
    click.echo(f"{user_name} is {role} on {accounts.shown_path(accounts.normalize_path(path))}")
    if issuer:  # the name is whatever the person chose at the provider: make sure it is the one meant
        click.echo(f"note: {user_name} was made by signing in with {issuer}, under the name they go by there",
                   err=True)


@main.command()
@click.argument("user_name", metavar="USER")
@click.argument("path")
def revoke(user_name: str, path: str) -> None:
    """Take away USER's role on PATH."""
    with _session() as cur:
        accounts.revoke(cur, user_name, path)
    click.echo(f"{user_name} holds no role on {accounts.shown_path(accounts.normalize_path(path))} any more")


@main.command()
@click.option("--user", "user_name", default=None, help="Only this user's roles.")
def roles(user_name: str | None) -> None:
    """List the roles granted: by an administrator (local), or by the identity provider at the user's last sign-in or
    check (sign-in; replaced at the next, never changed here)."""
    with _session() as cur:
        rows = accounts.list_grants(cur, user_name)
    for row in rows:
        _line(row["user"], accounts.shown_path(row["path"]), row["role"], row["source"])


@main.group()
def visibility() -> None:
    """Make paths public or private (the longest rule covering a repository decides)."""


@visibility.command("set")
@click.argument("path")
@click.argument("value", type=click.Choice(["public", "private"]))
def visibility_set(path: str, value: str) -> None:
    with _session() as cur:
        changed = visibility_rules.set_rule(cur, path, value == "public")
    click.echo(f"{accounts.shown_path(accounts.normalize_path(path))} is {value} ({changed} repositories)")


@visibility.command("unset")
@click.argument("path")
def visibility_unset(path: str) -> None:
    """Drop PATH's rule: a shorter rule, or OCICAT_DEFAULT_VISIBILITY, decides again."""
    with _session() as cur:
        changed = visibility_rules.set_rule(cur, path, None)
    click.echo(f"dropped the rule on {accounts.shown_path(accounts.normalize_path(path))} ({changed} repositories)")


@visibility.command("list")
def visibility_list() -> None:
    config = _config()
    with _session() as cur:
        rows = visibility_rules.list_rules(cur)
    _line("(default)", config.default_visibility)
    for row in rows:
        _line(accounts.shown_path(row["path"]), "public" if row["public"] else "private")


@main.command("who-can-see")
@click.argument("path")
def who_can_see(path: str) -> None:
    """Who may view PATH: anyone (public), administrators, and the roles that cover it."""
    config = _config()
    with _session() as cur:
        answer = visibility_rules.who_can_see(cur, path, config.default_public)
    rule = f"rule on {accounts.shown_path(answer['rule'])}" if answer["rule"] is not None else "default"
    click.echo(f"{accounts.shown_path(answer['path'])}: {'public' if answer['public'] else 'private'} ({rule})")
    for name in answer["admins"]:
        _line(name, "admin")
    for row in answer["grants"]:
        _line(row["user"], f"{row['role']} on {accounts.shown_path(row['path'])}")


@main.group()
def subscription() -> None:
    """Webhook subscriptions to catalog events (the API's /api/v1/subscriptions, for an operator)."""


def _subscription(cur, subscription_id: int) -> dict:
    row = subscriptions.get(cur, subscription_id)
    if row is None:
        raise click.UsageError(f"no subscription {subscription_id}")
    return row


@subscription.command("create")
@click.argument("user_name", metavar="USER")
@click.argument("name")
@click.argument("url")
@click.option("--format", "format_", type=click.Choice(subscriptions.FORMATS), default="cloudevents",
              show_default=True)
@click.option("--namespace", default=None, help="Only events at or below this path.")
@click.option("--repository", default=None, help="Only events of this repository.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(sorted(ALL_KINDS)), help="Only these kinds (repeat).")
@click.option("--event-type", "event_types", multiple=True, type=click.Choice(EVENT_TYPES),
              help="Only these event types (repeat).")
@click.option("--chart", default=None, help="Only events of charts of this name.")
def subscription_create(user_name, name, url, format_, namespace, repository, kinds, event_types, chart) -> None:
    """Subscribe URL to the catalog events USER may see; prints the signing secret, once."""
    filters = {key: value for key, value in (("namespace", namespace and accounts.normalize_path(namespace)),
                                             ("repository", repository), ("kinds", list(kinds)),
                                             ("event_types", list(event_types)), ("chart", chart)) if value}
    with _session() as cur:
        _config().delivery_allow.check_url(url)
        row, secret = subscriptions.create(cur, accounts.user_id(cur, user_name), name, url, format_, filters)
    click.echo(f"created subscription {row['id']} for {user_name}; its signing secret (shown once): {secret}")


@subscription.command("list")
@click.option("--user", "user_name", default=None, help="Only this user's subscriptions.")
def subscription_list(user_name: str | None) -> None:
    with _session() as cur:
        owner = accounts.user_id(cur, user_name) if user_name else None
        rows = subscriptions.list_(cur, owner, 0, 10_000)
    for row in rows:
        state = "paused" if row["paused"] else ("failing" if row["failing_since"] else "active")
        _line(row["id"], row["owner"], row["name"], row["format"], row["url"], json.dumps(row["filters"]), state,
              row["failure_reason"] or "-")


@subscription.command("delete")
@click.argument("subscription_id", type=int)
def subscription_delete(subscription_id: int) -> None:
    with _session() as cur:
        _subscription(cur, subscription_id)
        subscriptions.delete(cur, subscription_id)
    click.echo(f"deleted subscription {subscription_id}")


@subscription.command("pause")
@click.argument("subscription_id", type=int)
def subscription_pause(subscription_id: int) -> None:
    with _session() as cur:
        _subscription(cur, subscription_id)
        subscriptions.update(cur, subscription_id, {"paused": True})
    click.echo(f"paused subscription {subscription_id}")


@subscription.command("resume")
@click.argument("subscription_id", type=int)
def subscription_resume(subscription_id: int) -> None:
    """Resume a paused or failing subscription (its pending deliveries go out again)."""
    with _session() as cur:
        _subscription(cur, subscription_id)
        subscriptions.update(cur, subscription_id, {"paused": False})
    click.echo(f"resumed subscription {subscription_id}")


@subscription.command("rotate-secret")
@click.argument("subscription_id", type=int)
def subscription_rotate_secret(subscription_id: int) -> None:
    """A new signing secret (printed once); the previous one keeps signing beside it for a day."""
    with _session() as cur:
        _subscription(cur, subscription_id)
        secret = subscriptions.rotate_secret(cur, subscription_id)
    click.echo(f"new signing secret of subscription {subscription_id} (shown once): {secret}")


@subscription.command("ping")
@click.argument("subscription_id", type=int)
def subscription_ping(subscription_id: int) -> None:
    """Send a test event; `ocicat subscription deliveries ID` shows how it went."""
    with _session() as cur:
        _subscription(cur, subscription_id)
        delivery_id = subscriptions.ping(cur, subscription_id)
    click.echo(f"queued ping delivery {delivery_id}")


@subscription.command("deliveries")
@click.argument("subscription_id", type=int)
@click.option("--limit", default=50, show_default=True)
def subscription_deliveries(subscription_id: int, limit: int) -> None:
    """Recent deliveries, newest first."""
    with _session() as cur:
        _subscription(cur, subscription_id)
        rows = subscriptions.deliveries(cur, subscription_id, None, limit)
    for row in rows:
        _line(row["id"], row["event_type"] or "ping", row["repository"] or "-", row["state"],
              f"{row['attempts']} attempt(s)", row["last_status"] or "-", row["last_error"] or "-",
              f"{row['latency_ms']:.0f} ms" if row["latency_ms"] is not None else "-", _when(row["created_at"]))

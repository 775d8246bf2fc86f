"""The ``ocicat`` command: thin entry points over the indexer and the API."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import click

from .config import Config, ConfigError
from .db import Database, database_url
from .migrate import migrate as apply_migrations

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
    logging.basicConfig(
        level=os.environ.get("OCICAT_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s",
    )


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
    indexer_worker.run(config)


@main.command()
def api() -> None:
    """Serve the API, web UI and webhook receiver with gunicorn on OCICAT_LISTEN."""
    from gunicorn.app.base import BaseApplication

    config = _config()
    _ready_database(config)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", config.listen)
            self.cfg.set("workers", config.api_workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", config.api_threads)
            self.cfg.set("graceful_timeout", 20)
            self.cfg.set("control_socket_disable", True)  # one per user by default: several servers would collide
            self.cfg.set("accesslog", "-" if config.log_level == "DEBUG" else None)

        def load(self):
            from api.app import create_app

            return create_app(config)

    Server().run()


@main.command()
def serve() -> None:
    """Run API, receiver and worker together: everything a single machine needs.

    The database is resolved here once (the embedded one stays up as long as
    this process lives) and handed to the children, which are stopped together
    on SIGTERM/SIGINT. If one dies, the others are stopped too and the exit
    status is non-zero, so a supervisor restarts the whole set.
    """
    config = _config()
    env = {**os.environ, "OCICAT_DATABASE_URL": _ready_database(config)}
    children = [subprocess.Popen([sys.executable, "-m", "ocicat", role], env=env) for role in ("api", "worker")]
    host, port = config.listen_address
    click.echo(f"ocicat web UI:  http://{host}:{port}/ui/")
    click.echo(f"ocicat API:     http://{host}:{port}/api/v1/repositories")
    click.echo(f"ocicat webhook: http://{host}:{port}/api/v1/events")

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


@main.group()
def dlq() -> None:
    """Inspect and replay dead-lettered events."""


@dlq.command("list")
@click.option("--all", "include_replayed", is_flag=True, help="Include letters already replayed.")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, payload included.")
def dlq_list(include_replayed: bool, limit: int, as_json: bool) -> None:
    """List dead letters, oldest first."""
    from indexer.deadletters import list_letters

    db = Database(database_url(_config()), maxconn=1)
    for row in list_letters(db, include_replayed=include_replayed, limit=limit):
        if as_json:
            click.echo(json.dumps(row, default=str))
        else:
            replayed = f" replayed {row['replayed_at']:%Y-%m-%d %H:%M:%S}" if row["replayed_at"] else ""
            click.echo(
                f"{row['id']}\t{row['created_at']:%Y-%m-%d %H:%M:%S}\t{row['stage']}\t{row['event_id'] or '-'}\t"
                f"{row['repository'] or '-'}\t{row['reason']}{replayed}"
            )


@dlq.command("replay")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "replay_all", is_flag=True, help="Replay every open dead letter.")
def dlq_replay(ids: tuple[int, ...], replay_all: bool) -> None:
    """Put dead letters back on the queue (by id, or --all)."""
    from indexer.deadletters import replay

    if bool(ids) == replay_all:
        raise click.UsageError("give dead letter ids or --all (not both)")
    db = Database(database_url(_config()), maxconn=1)
    replayed, refused = replay(db, None if replay_all else list(ids))
    click.echo(f"replayed {len(replayed)} event(s)")
    for letter_id, reason in refused.items():
        click.echo(f"{letter_id}: still invalid, left parked: {reason}", err=True)
    if refused:
        sys.exit(1)

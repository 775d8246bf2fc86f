"""The API's catalog reads on a real streaming replica (Debian's PostgreSQL: a primary of the test's own and a hot
standby made from it with pg_basebackup), with read-your-writes for a caller who changed something, and the API
serving on when the replica stops.

The replica's WAL replay is paused to make what it serves visibly older than the primary: what a reader sees then
tells which of the two answered."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import requests

from harness.oci import push_chart
from harness.postgres import PostgresServer, admin
from harness.processes import wait_until

from .stack import start_stack, stop_stack

RUN = uuid.uuid4().hex[:6]
SPACE = f"repl{RUN}"
FIRST, SECOND = f"{SPACE}/first", f"{SPACE}/second"
STICKY = 3  # OCICAT_REPLICA_STICKY_SECONDS: a caller's reads stay on the primary this long after a change


@pytest.fixture(scope="module")
def replicated(make_database, tmp_path_factory):
    primary = PostgresServer(fsync=False).start()
    replica = stack = None
    try:
        url = primary.create_database("ocicat")
        replica = primary.start_replica()
        stack = start_stack(make_database, tmp_path_factory.mktemp("replicas"), OCICAT_DATABASE_URL=url,
                            OCICAT_DATABASE_REPLICA_URLS=replica.url("ocicat"), OCICAT_DEFAULT_VISIBILITY="public",
                            OCICAT_REPLICA_STICKY_SECONDS=str(STICKY))
        yield stack, replica
    finally:
        if stack is not None:
            stop_stack(stack)
        for server in (replica, primary):
            if server is not None:
                server.close()


def _reads(stack) -> dict[str, float]:
    """ocicat_api_reads_total by database, from the API's /metrics."""
    text = requests.get(f"{stack.api}/metrics", timeout=10).text
    return {m[1]: float(m[2]) for m in re.finditer(r'^ocicat_api_reads_total\{database="(\w+)"\} (\S+)$', text, re.M)}


def _on_primary(stack, repository: str) -> bool:
    with stack.db.transaction() as cur:
        cur.execute("SELECT 1 FROM repositories WHERE name = %s", (repository,))
        return cur.fetchone() is not None


def test_reads_go_to_the_replica_and_a_callers_own_change_is_read_back_from_the_primary(replicated):
    stack, replica = replicated
    digest = push_chart(stack.registry.url, FIRST, "1.0.0", "1.0.0")
    wait_until(lambda: "1.0.0" in stack.tags(FIRST), what="the first chart, through the replica")
    _, token = stack.user({SPACE: "developer"})
    developer = {"Authorization": f"Bearer {token}"}
    _, reader_token = stack.user({SPACE: "reporter"})
    reader = {"Authorization": f"Bearer {reader_token}"}

    admin(replica.url(), "SELECT pg_wal_replay_pause()")  # the replica stays where it is from here
    try:
        push_chart(stack.registry.url, SECOND, "1.0.0", "1.0.0")
        wait_until(lambda: _on_primary(stack, SECOND), what="the second chart in the primary")
        before = _reads(stack)
        for headers in (None, reader):  # anonymous, and a reader who changed nothing: the replica answers
            assert stack.get(f"/api/v1/repositories/{SECOND}", headers).status_code == 404
            assert stack.get("/api/v1/search", headers, q="second").json()["items"] == []
        assert _reads(stack)["replica"] >= before.get("replica", 0) + 4

        # The developer deletes the first chart: the catalog follows when the registry's event is indexed, in the
        # primary; the developer's reads go there (for STICKY seconds, then while the replica is behind their change)
        deleted = requests.delete(f"{stack.api}/api/v1/repositories/{FIRST}/-/manifests/{digest}", headers=developer,
                                  timeout=10)
        assert deleted.status_code == 202, deleted.text
        wait_until(lambda: stack.tags(FIRST, developer) == {}, what="the delete, read back by its maker")
        assert stack.get(f"/api/v1/repositories/{SECOND}", developer).status_code == 200
        assert "1.0.0" in stack.tags(FIRST, reader)  # everyone else: the replica, paused before the delete
        time.sleep(STICKY + 0.5)
        assert stack.tags(FIRST, developer) == {}  # past the sticky time: the replica has not replayed their change
    finally:
        admin(replica.url(), "SELECT pg_wal_replay_resume()")
    wait_until(lambda: stack.tags(FIRST, reader) == {} and
               stack.get(f"/api/v1/repositories/{SECOND}", reader).status_code == 200, what="the replica caught up")


def test_the_api_keeps_serving_from_the_primary_while_the_replica_is_down(replicated):
    stack, replica = replicated
    wait_until(lambda: stack.get(f"/api/v1/repositories/{SECOND}").status_code == 200, what="the second chart")
    replica.stop()
    try:
        before = _reads(stack)
        for _ in range(20):  # the pooled connections to the replica are dead: each is found out, none is an error
            assert stack.get(f"/api/v1/repositories/{SECOND}").status_code == 200
            assert [r["name"] for r in stack.get("/api/v1/search", q="second").json()["items"]] == [SECOND]
        assert _reads(stack)["primary"] >= before.get("primary", 0) + 40
        assert "replica 127.0.0.1" in stack.server.output() and "reads go elsewhere" in stack.server.output()
    finally:
        replica.recover()
    replicated_reads = _reads(stack)["replica"]
    wait_until(lambda: stack.get(f"/api/v1/repositories/{SECOND}").status_code == 200 and
               _reads(stack)["replica"] > replicated_reads, what="reads on the replica again, once it is back")

-- depends: 0016.sign_in
-- Read-your-writes with streaming replicas (ocicat.db.Reads): when each caller last changed something through the
-- API, and the primary's WAL position then. Read on the primary with the caller's credentials at every request, so
-- that their reads stay on the primary for a while (the effects of a delete come later, with the registry's event)
-- and then go only to a replica that has replayed that far. UNLOGGED: only the primary reads it, so it need not be
-- replicated or survive a crash (which costs at most one read of a replica that is behind, right after).
CREATE UNLOGGED TABLE caller_writes (
    caller      text PRIMARY KEY,  -- Principal.user: a user's name, or registry:<subject>
    lsn         pg_lsn NOT NULL,
    written_at  timestamptz NOT NULL DEFAULT now()
);

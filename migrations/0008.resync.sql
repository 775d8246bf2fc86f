-- depends: 0007.namespaces
-- Resync: what a crawl of the registry observed, and how far the last crawl got.

-- When a crawl last saw the registry have this manifest / this tag at this digest. An event older than that
-- observation is stale (a delete, or a tag move, the crawl has seen superseded) and changes nothing. Kept apart
-- from pushed_at / event_at, which stay the push times users see.
ALTER TABLE manifests ADD COLUMN seen_at timestamptz;
ALTER TABLE tags ADD COLUMN seen_at timestamptz;

-- One row per crawl scope (the --namespace prefix, '' for the whole registry): the last repository done, in the
-- registry's lexical order, so an interrupted crawl resumes after it.
CREATE TABLE resync_checkpoints (
    scope            text PRIMARY KEY,
    last_repository  text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);

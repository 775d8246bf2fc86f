-- depends: 0011.hidden
-- The transactional outbox (ocicat.catalog.outbox): one row per catalog change the world outside may want to hear
-- about, written in the transaction that makes the change, so there is no event without its change and no change
-- without its event, whatever crashes. Rows of one repository are written under the repository's lock, so their ids
-- are in commit order; across repositories ids may commit out of order, which is why rows are marked dispatched one
-- by one rather than by a high-water mark.
CREATE TABLE catalog_events (
    id            bigserial PRIMARY KEY,
    type          text NOT NULL,           -- chart.version.published, image.published, tag.moved, ...
    repository    text NOT NULL,
    tag           text,
    digest        text,
    crawl         boolean NOT NULL,        -- recorded by a resync repairing the catalog, not by a registry event
    data          jsonb NOT NULL,          -- what a receiver needs without calling back
    occurred_at   timestamptz NOT NULL,    -- the registry event's time, or the crawl's observation time
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    dispatched_at timestamptz              -- handed to every output (the Kafka topic, subscriptions)
);
CREATE INDEX catalog_events_undispatched_idx ON catalog_events (id) WHERE dispatched_at IS NULL;
CREATE INDEX catalog_events_repository_idx ON catalog_events (repository, id);
CREATE INDEX catalog_events_recorded_idx ON catalog_events (recorded_at);

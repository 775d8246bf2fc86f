-- depends: 0001.catalog
-- The embedded bus and the bookkeeping that makes delivery exactly-once in effect.

CREATE TABLE event_queue (
    id            bigserial PRIMARY KEY,
    -- the registry's event id: a redelivered envelope adds nothing
    event_id      text NOT NULL UNIQUE,
    repository    text NOT NULL,
    payload       jsonb NOT NULL,
    attempts      int NOT NULL DEFAULT 0,
    available_at  timestamptz NOT NULL DEFAULT now(),
    last_error    text,
    enqueued_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_queue_ready_idx ON event_queue (available_at, id);

CREATE TABLE processed_events (
    event_id      text PRIMARY KEY,
    processed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_at_idx ON processed_events (processed_at);

CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    event_id     text,
    repository   text,
    payload      jsonb NOT NULL,
    reason       text NOT NULL,
    -- where it was parked: 'receiver' (malformed event) or 'worker' (failed processing)
    stage        text NOT NULL,
    attempts     int NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz
);
CREATE INDEX dead_letters_open_idx ON dead_letters (id) WHERE replayed_at IS NULL;
-- A registry redelivering an envelope (it times out after 1-2 s) must not park its bad events twice.
CREATE UNIQUE INDEX dead_letters_once_idx ON dead_letters (stage, coalesce(event_id, ''), md5(payload::text))
    WHERE replayed_at IS NULL;

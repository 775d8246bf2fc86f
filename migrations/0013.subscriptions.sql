-- depends: 0012.catalog_events
-- Subscriptions to catalog events (ocicat.subscriptions) and their deliveries (indexer.delivery.send).
CREATE TABLE subscriptions (
    id              bigserial PRIMARY KEY,
    owner_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,  -- deliveries see what the owner may
    name            text NOT NULL,
    url             text NOT NULL,
    format          text NOT NULL CHECK (format IN ('cloudevents', 'cloudevents-binary', 'slack')),
    -- Standard Webhooks secrets (whsec_...), the current one first; the one before it signs too for a day after a
    -- rotation, so receivers can switch without missing a delivery.
    secrets         text[] NOT NULL,
    rotated_at      timestamptz,
    filters         jsonb NOT NULL DEFAULT '{}',  -- namespace, repository, kinds, event_types, chart
    paused          boolean NOT NULL DEFAULT false,
    -- a deliverer is sending a run of its deliveries (one deliverer per subscription at a time, in order)
    leased_until    timestamptz,
    failing_since   timestamptz,  -- a delivery ran out of retries, or the target answered 410 Gone
    failure_reason  text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, name)
);

-- One row per event per matching subscription (event_id NULL: a ping). A subscription's pending deliveries go out
-- one at a time in id order, by the deliverer holding the subscription's lease.
CREATE TABLE deliveries (
    id               bigserial PRIMARY KEY,
    subscription_id  bigint NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    event_id         bigint,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed', 'skipped')),
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      int,
    last_error       text,
    latency_ms       real,
    response_excerpt text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX deliveries_pending_idx ON deliveries (subscription_id, id) WHERE state = 'pending';
CREATE INDEX deliveries_recent_idx ON deliveries (subscription_id, id DESC);
CREATE INDEX deliveries_event_idx ON deliveries (event_id) WHERE state = 'pending';

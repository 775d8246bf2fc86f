-- depends: 0017.replicas
-- transactional: false
-- A worker claims the oldest due event with a few more of its repository's (indexer.bus.queue_table.claim): found by
-- repository, in queue order. Built without locking out the receiver's inserts, as a backlog can be large.
CREATE INDEX CONCURRENTLY IF NOT EXISTS event_queue_repository_idx ON event_queue (repository, id);

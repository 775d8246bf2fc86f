-- depends: 0017.replicas
-- A worker claims the oldest due event with a few more of its repository's (indexer.bus.queue_table.claim): found by
-- repository, in queue order. Built in the migration's transaction, not concurrently: the queue holds what is not
-- indexed yet (a backlog of 100,000 events builds in a fraction of a second), and a concurrent build would wait for
-- the other processes starting at the same moment, which hold a snapshot while they wait for the migration lock.
CREATE INDEX event_queue_repository_idx ON event_queue (repository, id);

-- The catalog: what the registry holds, as the worker last saw it.

CREATE TABLE repositories (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    -- parent path of the repository ('' at the top level): the unit that
    -- browsing, search filters and permissions work on
    namespace   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX repositories_namespace_name_idx ON repositories (namespace, name);

CREATE TABLE manifests (
    id                 bigserial PRIMARY KEY,
    repository_id      bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest             text NOT NULL,
    media_type         text NOT NULL,
    artifact_type      text,
    config_media_type  text,
    config_digest      text,
    kind               text NOT NULL,
    manifest_size      bigint NOT NULL,
    -- manifest + config + layers (children's sizes are not known to an index)
    size_bytes         bigint NOT NULL,
    annotations        jsonb NOT NULL DEFAULT '{}',
    subject_digest     text,
    -- the manifest as fetched, so a new classifier can re-run without the registry
    content            jsonb NOT NULL,
    -- a recorded problem with this manifest's contents (bad chart, bad config)
    error              text,
    -- time of the latest push event applied for this digest (a delete older than it is stale)
    pushed_at          timestamptz NOT NULL,
    indexed_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (repository_id, digest)
);
CREATE INDEX manifests_kind_idx ON manifests (kind);

CREATE TABLE layers (
    manifest_id  bigint NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    position     int NOT NULL,
    media_type   text NOT NULL,
    digest       text NOT NULL,
    size_bytes   bigint NOT NULL,
    annotations  jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (manifest_id, position)
);

CREATE TABLE index_children (
    manifest_id  bigint NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    position     int NOT NULL,
    media_type   text NOT NULL,
    digest       text NOT NULL,
    size_bytes   bigint NOT NULL,
    platform     jsonb,
    annotations  jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (manifest_id, position)
);

-- A tag row outlives its deletion (digest NULL) as a tombstone: events arrive
-- out of order, and a late push must not bring back a tag removed after it.
CREATE TABLE tags (
    repository_id  bigint NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name           text NOT NULL,
    digest         text,
    -- timestamp of the registry event that last set or removed this tag
    event_at       timestamptz NOT NULL,
    PRIMARY KEY (repository_id, name)
);
CREATE INDEX tags_digest_idx ON tags (repository_id, digest);

-- Chart.yaml as Helm pushed it in the config blob, one column per field.
CREATE TABLE helm_charts (
    manifest_id   bigint PRIMARY KEY REFERENCES manifests (id) ON DELETE CASCADE,
    api_version   text,
    name          text NOT NULL,
    version       text NOT NULL,
    kube_version  text,
    description   text,
    type          text,
    keywords      jsonb NOT NULL DEFAULT '[]',
    home          text,
    sources       jsonb NOT NULL DEFAULT '[]',
    dependencies  jsonb NOT NULL DEFAULT '[]',
    maintainers   jsonb NOT NULL DEFAULT '[]',
    icon          text,
    app_version   text,
    deprecated    boolean NOT NULL DEFAULT false,
    annotations   jsonb NOT NULL DEFAULT '{}',
    condition     text,
    tags          text
);
CREATE INDEX helm_charts_version_idx ON helm_charts (version);

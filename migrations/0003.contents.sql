-- depends: 0002.events
-- What is inside an artifact, extracted once at ingest: chart contents, image config, surfaced annotations.

ALTER TABLE helm_charts
    ADD COLUMN readme         text,
    ADD COLUMN values_yaml    text,
    ADD COLUMN values_schema  jsonb,
    ADD COLUMN templates      jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN crds           jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN chart_lock     jsonb,
    ADD COLUMN has_provenance boolean NOT NULL DEFAULT false,
    -- the artifacthub.io/* annotations, parsed (changes, images, links, ... as structures)
    ADD COLUMN artifacthub    jsonb NOT NULL DEFAULT '{}';

CREATE TABLE image_configs (
    manifest_id   bigint PRIMARY KEY REFERENCES manifests (id) ON DELETE CASCADE,
    os            text,
    architecture  text,
    variant       text,
    os_version    text,
    -- as the config says it (RFC 3339 in practice, but not trusted to be)
    created       text,
    author        text,
    labels        jsonb NOT NULL DEFAULT '{}',
    history       int NOT NULL DEFAULT 0
);

-- OCI annotations users look for (title, description, source, ...), from the manifest,
-- then the image config labels, then label-schema labels.
ALTER TABLE manifests ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}';
CREATE INDEX manifests_subject_idx ON manifests (repository_id, subject_digest) WHERE subject_digest IS NOT NULL;

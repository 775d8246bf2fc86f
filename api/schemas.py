"""Marshmallow schemas: query parameters in, catalog resources out."""

from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, fields, validate

from indexer.events import REPOSITORY_RE

from .pagination import DEFAULT_LIMIT, MAX_LIMIT

# A namespace is a repository path prefix; "" or "/" would mean every repository.
NAMESPACE_RE = re.compile(REPOSITORY_RE.pattern.replace("$", "/?$"))


class ListArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Int(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.Str(load_default=None, validate=validate.Length(max=2048))


class RepositoryListArgs(ListArgs):
    namespace = fields.Str(
        load_default=None,
        validate=[validate.Length(max=255), validate.Regexp(NAMESPACE_RE, error="not a repository path")],
    )


class Repository(Schema):
    name = fields.Str()
    namespace = fields.Str()
    tag_count = fields.Int()
    kinds = fields.List(fields.Str())
    last_pushed_at = fields.DateTime()


class ChartSummary(Schema):
    name = fields.Str()
    version = fields.Str()
    app_version = fields.Str(allow_none=True)
    description = fields.Str(allow_none=True)


class Tag(Schema):
    name = fields.Str()
    digest = fields.Str()
    kind = fields.Str()
    media_type = fields.Str()
    artifact_type = fields.Str(allow_none=True)
    config_media_type = fields.Str(allow_none=True)
    size_bytes = fields.Int()
    pushed_at = fields.DateTime()
    error = fields.Str(allow_none=True)
    chart = fields.Nested(ChartSummary, allow_none=True)


class ChartVersion(Schema):
    repository = fields.Str()
    digest = fields.Str()
    pushed_at = fields.DateTime()
    reference = fields.Str()
    api_version = fields.Str(allow_none=True)
    name = fields.Str()
    version = fields.Str()
    kube_version = fields.Str(allow_none=True)
    description = fields.Str(allow_none=True)
    type = fields.Str(allow_none=True)
    keywords = fields.List(fields.Str())
    home = fields.Str(allow_none=True)
    sources = fields.List(fields.Str())
    dependencies = fields.List(fields.Dict())
    maintainers = fields.List(fields.Dict())
    icon = fields.Str(allow_none=True)
    app_version = fields.Str(allow_none=True)
    deprecated = fields.Bool()
    annotations = fields.Dict(keys=fields.Str(), values=fields.Str())
    condition = fields.Str(allow_none=True)
    tags = fields.Str(allow_none=True)

"""Marshmallow schemas: query parameters in, catalog resources out."""

from __future__ import annotations

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from ocicat.catalog.outbox import EVENT_TYPES
from ocicat.oci.classify import ALL_KINDS
from ocicat.oci.names import NAMESPACE_RE, REPOSITORY_RE
from ocicat.subscriptions import FORMATS, SECRET_RE

from .pagination import DEFAULT_LIMIT, MAX_LIMIT


class ListArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Int(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.Str(load_default=None, validate=validate.Length(max=2048))


def _text(max_length: int, min_length: int = 1, **kwargs):
    """A free-text parameter: bounded, and without the NUL PostgreSQL cannot take."""
    return fields.Str(
        validate=[validate.Length(min=min_length, max=max_length),
                  validate.Regexp(r"^[^\x00]*$", error="must not contain NUL")],
        **kwargs,
    )


# A namespace is a repository path prefix; "" or "/" would mean every repository.
_NAMESPACE = fields.Str(
    load_default=None,
    validate=[validate.Length(max=255), validate.Regexp(NAMESPACE_RE, error="not a repository path")],
)
_KIND = fields.Str(load_default=None, validate=validate.OneOf(sorted(ALL_KINDS)))


class NamespaceListArgs(ListArgs):
    namespace = _NAMESPACE


class RepositoryListArgs(ListArgs):
    namespace = _NAMESPACE
    kind = _KIND
    q = _text(200, load_default=None)
    sort = fields.Str(load_default="name", validate=validate.OneOf(["name", "-updated"]))


class TagListArgs(ListArgs):
    name = _text(128, load_default=None)
    kind = _KIND
    sort = fields.Str(load_default="name", validate=validate.OneOf(["name", "-pushed"]))


class ChartListArgs(ListArgs):
    namespace = _NAMESPACE
    q = _text(200, load_default=None)


class SearchArgs(ListArgs):
    q = _text(200, required=True)
    namespace = _NAMESPACE
    kind = _KIND


class HelmIndexArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    recursive = fields.Bool(load_default=True, metadata={
        "description": "false: the namespace's own repositories only, not those of the namespaces below it"})


class MonocularSearchArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    q = _text(200, min_length=0, load_default="",
              metadata={"description": "keywords, as helm search hub joins them; empty: every chart, by name"})


class Namespace(Schema):
    """A path that holds repositories below it, and the namespace it is in ("" at the top level)."""

    name = fields.Str()
    namespace = fields.Str()


class Repository(Schema):
    name = fields.Str()
    namespace = fields.Str()
    tag_count = fields.Int()
    kinds = fields.List(fields.Str())
    size_bytes = fields.Int()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    last_pushed_at = fields.DateTime()


class VersionRef(Schema):
    version = fields.Str()
    digest = fields.Str()


class UpgradeSummary(Schema):
    """What changed since the version a user most likely upgrades from (ocicat.catalog.upgrades)."""

    from_ = fields.Nested(VersionRef, data_key="from", attribute="from",
                          metadata={"description": "the highest release below this version (for a prerelease too), "
                                                   "else the highest prerelease below"})
    breaking = fields.Int(metadata={"description": "breaking candidates among the changes"})
    changes = fields.Int()


class UpgradeItem(Schema):
    category = fields.Str(metadata={"description": "value-removed, value-renamed, schema-required, schema-type, "
                                                   "schema-enum, schema-invalid, default-changed, crd-changed, "
                                                   "kube-version, dependency-major, dependency-changed, image-changed"
                                                   " (the report's order)"})
    breaking = fields.Bool()
    path = fields.Str(metadata={"description": "a values path as helm --set writes it, a file, a dependency or an "
                                               "image repository"})
    from_ = fields.Str(data_key="from", attribute="from", allow_none=True)
    to = fields.Str(allow_none=True)
    fields_ = fields.List(fields.Str(), data_key="fields", attribute="fields",
                          metadata={"description": "a CRD's changed fields"})


class UpgradeReport(UpgradeSummary):
    items = fields.List(fields.Nested(UpgradeItem))
    more = fields.Int(metadata={"description": "items past the report's first 100"})
    notes = fields.List(fields.Str(), metadata={"description": "what could not be compared, or was cut"})


class ChartListItem(Schema):
    repository = fields.Str()
    namespace = fields.Str()
    name = fields.Str()
    version = fields.Str()
    app_version = fields.Str(allow_none=True)
    description = fields.Str(allow_none=True)
    icon = fields.Str(allow_none=True)
    keywords = fields.List(fields.Str())
    deprecated = fields.Bool()
    type = fields.Str(allow_none=True)
    digest = fields.Str()
    pushed_at = fields.DateTime()
    upgrade = fields.Nested(UpgradeSummary, allow_none=True)


class SearchHit(Schema):
    name = fields.Str()
    namespace = fields.Str()
    kinds = fields.List(fields.Str())
    updated_at = fields.DateTime()
    title = fields.Str(allow_none=True)
    description = fields.Str(allow_none=True)
    chart_version = fields.Str(allow_none=True)
    app_version = fields.Str(allow_none=True)
    upgrade = fields.Nested(UpgradeSummary, allow_none=True)


class FacetCount(Schema):
    value = fields.Str()
    count = fields.Int()


class ChartSummary(Schema):
    name = fields.Str()
    version = fields.Str()
    app_version = fields.Str(allow_none=True)
    description = fields.Str(allow_none=True)


class ManifestSummary(Schema):
    """What a tag list shows of the manifest behind each tag."""

    digest = fields.Str()
    kind = fields.Str()
    media_type = fields.Str()
    artifact_type = fields.Str(allow_none=True)
    config_media_type = fields.Str(allow_none=True)
    size_bytes = fields.Int()
    pushed_at = fields.DateTime()
    error = fields.Str(allow_none=True)
    chart = fields.Nested(ChartSummary, allow_none=True)
    platforms = fields.List(fields.Str())
    signed = fields.Bool()
    has_sbom = fields.Bool()
    attestations = fields.Int()


class Tag(ManifestSummary):
    name = fields.Str()


class Descriptor(Schema):
    media_type = fields.Str()
    digest = fields.Str()
    size_bytes = fields.Int()
    platform = fields.Dict(allow_none=True)
    annotations = fields.Dict(keys=fields.Str(), values=fields.Str())


class ImageConfig(Schema):
    os = fields.Str(allow_none=True)
    architecture = fields.Str(allow_none=True)
    variant = fields.Str(allow_none=True)
    os_version = fields.Str(allow_none=True)
    created = fields.Str(allow_none=True)
    author = fields.Str(allow_none=True)
    labels = fields.Dict(keys=fields.Str(), values=fields.Str())
    history = fields.Int()


class Attachment(Schema):
    digest = fields.Str()
    kind = fields.Str()
    media_type = fields.Str()
    artifact_type = fields.Str(allow_none=True)
    annotations = fields.Dict(keys=fields.Str(), values=fields.Str())
    pushed_at = fields.DateTime()


class Manifest(ManifestSummary):
    repository = fields.Str()
    config_digest = fields.Str(allow_none=True)
    manifest_size = fields.Int()
    tags = fields.List(fields.Str())
    annotations = fields.Dict(keys=fields.Str(), values=fields.Str())
    metadata = fields.Dict(keys=fields.Str(), values=fields.Str())
    subject_digest = fields.Str(allow_none=True)
    layers = fields.List(fields.Nested(Descriptor))
    children = fields.List(fields.Nested(Descriptor))
    attachments = fields.List(fields.Nested(Attachment))
    image_config = fields.Nested(ImageConfig, allow_none=True)


class HelmRepository(Schema):
    name = fields.Str(metadata={"description": "a name to helm repo add it by: the namespace's last part"})
    url = fields.Str(metadata={"description": "the classic Helm repository serving the chart (/helm/<namespace>)"})


class ChartVersion(ChartListItem):
    """A chart version: the list item's fields, every other Chart.yaml field, and the chart's contents."""

    reference = fields.Str()
    helm_repository = fields.Nested(HelmRepository)
    api_version = fields.Str(allow_none=True)
    kube_version = fields.Str(allow_none=True)
    home = fields.Str(allow_none=True)
    sources = fields.List(fields.Str())
    dependencies = fields.List(fields.Dict())
    maintainers = fields.List(fields.Dict())
    annotations = fields.Dict(keys=fields.Str(), values=fields.Str())
    condition = fields.Str(allow_none=True)
    tags = fields.Str(allow_none=True)
    readme = fields.Str(allow_none=True)
    readme_html = fields.Str(allow_none=True, metadata={
        "description": "the README rendered from Markdown and sanitized when the chart was indexed (indexer.readme): "
                       "safe to insert as HTML; null when there is no README, or it is too large or too deeply nested "
                       "to render (show the text)"})
    values = fields.Str(allow_none=True, attribute="values_yaml")
    values_schema = fields.Raw(allow_none=True)
    templates = fields.List(fields.Str())
    crds = fields.List(fields.Str())
    chart_lock = fields.Raw(allow_none=True)
    has_provenance = fields.Bool()
    artifacthub = fields.Dict(keys=fields.Str())
    warnings = fields.List(fields.Str())
    error = fields.Str(allow_none=True)
    upgrade_report = fields.Nested(UpgradeReport, allow_none=True)


class ChartFile(Schema):
    path = fields.Str()
    size = fields.Int(metadata={"description": "bytes, in the chart archive"})
    truncated = fields.Bool(metadata={"description": "content is cut at 1 MiB a file, 16 MiB a chart"})
    content = fields.Str()


class ChartFiles(Schema):
    items = fields.List(fields.Nested(ChartFile))


class CompareArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    from_ = _text(128, data_key="from", required=True)
    to = _text(128, required=True)


class FileChange(Schema):
    path = fields.Str()
    status = fields.Str(metadata={"description": "added, removed or changed"})
    diff = fields.Str(allow_none=True, metadata={"description": "unified diff; null when not diffed (see notes)"})
    fields_ = fields.List(fields.Str(), data_key="fields", attribute="fields",
                          metadata={"description": "a CRD's changed fields"})
    truncated = fields.Bool()


class Comparison(Schema):
    """Two versions of a chart compared (ocicat.compare)."""

    from_ = fields.Nested(VersionRef, data_key="from", attribute="from")
    to = fields.Nested(VersionRef)
    fields_ = fields.List(fields.Dict(), data_key="fields", attribute="fields",
                          metadata={"description": "Chart.yaml fields that differ: field, from, to"})
    values = fields.Dict(metadata={"description": "added, removed, renamed, changed: keys with paths, defaults and "
                                                  "the comments that explain them"})
    schema = fields.Dict(metadata={"description": "added, removed, required, type_changed, enum_changed, invalid"})
    templates = fields.List(fields.Nested(FileChange))
    crds = fields.List(fields.Nested(FileChange))
    dependencies = fields.List(fields.Dict(), metadata={"description": "name, status, from, to, major"})
    images = fields.List(fields.Dict(), metadata={"description": "repository, name, status, from, to"})
    changelog = fields.List(fields.Dict(), metadata={"description": "artifacthub.io/changes of each version between, "
                                                                    "newest first"})
    notes = fields.List(fields.Str())
    report = fields.Nested(UpgradeReport)
    seconds = fields.Float()


class Me(Schema):
    authenticated = fields.Bool()
    user = fields.Str(allow_none=True)
    admin = fields.Bool()
    session = fields.Bool(metadata={"description": "true when the caller is a browser session (signed in with the "
                                                   "identity provider) rather than a token"})
    csrf_token = fields.Str(allow_none=True, metadata={
        "description": "a session's CSRF token: send it as X-CSRF-Token with every POST, PATCH and DELETE"})


class SignOut(Schema):
    provider_logout = fields.Str(allow_none=True, metadata={
        "description": "the provider's logout URL, to end the session there too; null when it has none"})


class TokenCreate(Schema):
    class Meta:
        unknown = RAISE

    name = fields.Str(required=True, validate=[validate.Length(min=1, max=100),
                                               validate.Regexp(r"^[^\x00-\x1f\x7f]+\Z", error="no control characters")])
    expires_in_days = fields.Int(load_default=30, validate=validate.Range(min=1, max=365))


class Token(Schema):
    id = fields.Int()
    name = fields.Str(attribute="description")
    created_at = fields.DateTime()
    expires_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    token = fields.Str(metadata={"description": "the token itself: shown only when it is created"})


class Deletion(Schema):
    repository = fields.Str()
    reference = fields.Str()
    status = fields.Str()


# -- subscriptions to catalog events ----------------------------------------------------------------------------


class SubscriptionFilters(Schema):
    """Which events a subscription receives: each filter given must match (none: every event its owner may see)."""

    class Meta:
        unknown = RAISE

    namespace = fields.Str(validate=[validate.Length(max=255),
                                     validate.Regexp(NAMESPACE_RE, error="not a repository path")],
                           metadata={"description": "this path and everything below it"})
    repository = fields.Str(validate=[validate.Length(max=255),
                                      validate.Regexp(REPOSITORY_RE, error="not a repository name")])
    kinds = fields.List(fields.Str(validate=validate.OneOf(sorted(ALL_KINDS))), validate=validate.Length(min=1))
    event_types = fields.List(fields.Str(validate=validate.OneOf(EVENT_TYPES)), validate=validate.Length(min=1))
    chart = fields.Str(validate=validate.Length(min=1, max=255), metadata={"description": "a chart's name"})


_SUBSCRIPTION_NAME = fields.Str(validate=[validate.Length(min=1, max=100),
                                          validate.Regexp(r"^[^\x00-\x1f\x7f]+$", error="no control characters")])
_URL = fields.Str(validate=validate.Length(min=1, max=2048))
_FORMAT = fields.Str(validate=validate.OneOf(FORMATS))


class SubscriptionCreate(Schema):
    class Meta:
        unknown = RAISE

    name = fields.Str(required=True, validate=_SUBSCRIPTION_NAME.validate)
    url = fields.Str(required=True, validate=_URL.validate)
    format = fields.Str(load_default="cloudevents", validate=_FORMAT.validate)
    filters = fields.Nested(SubscriptionFilters, load_default=dict)
    secret = fields.Str(load_default=None, validate=validate.Regexp(SECRET_RE, error="must be whsec_ and the base64 "
                                                                                       "of 24 to 64 random bytes"),
                        metadata={"description": "your own signing secret; one is made for you without it"})


class SubscriptionUpdate(Schema):
    class Meta:
        unknown = RAISE

    name = _SUBSCRIPTION_NAME
    url = _URL
    format = _FORMAT
    filters = fields.Nested(SubscriptionFilters)
    paused = fields.Bool(metadata={"description": "false resumes a paused or failing subscription"})


class Subscription(Schema):
    id = fields.Int()
    name = fields.Str()
    owner = fields.Str()
    url = fields.Str()
    format = fields.Str()
    filters = fields.Dict()
    paused = fields.Bool()
    failing_since = fields.DateTime(allow_none=True)
    failure_reason = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    secret = fields.Str(metadata={"description": "the signing secret: shown only when created or rotated"})


class Delivery(Schema):
    id = fields.Int()
    event_id = fields.Int(allow_none=True, metadata={"description": "null for a ping"})
    event_type = fields.Str(allow_none=True)
    repository = fields.Str(allow_none=True)
    tag = fields.Str(allow_none=True)
    state = fields.Str(metadata={"description": "pending, delivered, failed or skipped"})
    attempts = fields.Int()
    next_attempt_at = fields.DateTime()
    last_status = fields.Int(allow_none=True)
    last_error = fields.Str(allow_none=True)
    latency_ms = fields.Float(allow_none=True)
    response_excerpt = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class Ping(Schema):
    delivery_id = fields.Int()

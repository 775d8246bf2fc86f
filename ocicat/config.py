"""Configuration, read once from ``OCICAT_*`` environment variables.

Every setting has a default that makes one machine work out of the box; the
README lists them all. Parsing is strict: a malformed value stops the process
at start-up with the variable's name, instead of surfacing later as a
confusing runtime error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import logs, role_rules
from .outbound import Guard


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(base, "ocicat")


def _int(env: dict, name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: dict, name: str, default: bool = False) -> bool:
    raw = (env.get(name) or str(default)).lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _seconds(env: dict, name: str, default: float) -> float:
    raw = env.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not 0 < value < 86400:
        raise ConfigError(f"{name} must be a number of seconds above 0, got {raw!r}")
    return value


def _delivery_allow(raw: str | None) -> Guard:
    try:
        return Guard.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"OCICAT_DELIVERY_ALLOW must list host names, addresses or CIDRs: {exc}") from None


def _listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"OCICAT_LISTEN must be host:port, got {raw!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _registry_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"OCICAT_REGISTRY_URL must be an http(s) URL, got {raw!r}")
    # A password in the URL would travel wherever the URL is shown (pull references, logs): refused, by name only.
    if parts.username is not None or parts.password is not None:
        raise ConfigError("OCICAT_REGISTRY_URL must not hold credentials: set OCICAT_REGISTRY_USERNAME and "
                          "OCICAT_REGISTRY_PASSWORD instead")
    return raw.rstrip("/")


def _public_host(raw: str | None) -> str | None:
    """host[:port] users pull from: it is shown in every ``oci://`` reference, so nothing else may hide in it."""
    if not raw:
        return None
    if not _HOST_PORT_RE.match(raw) and not _HOST_RE.match(raw):
        raise ConfigError("OCICAT_REGISTRY_PUBLIC_HOST must be host or host:port, as users pull from it (the value "
                          "is not shown: it may hold a credential)")
    return raw


def _public_url(raw: str) -> str:
    """The catalog's own URL, shown to every receiver of its events: an http(s) origin and path, nothing else."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"OCICAT_PUBLIC_URL must be an http(s) URL without query or fragment, got {raw!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("OCICAT_PUBLIC_URL must not hold credentials: it is sent with every catalog event")
    return raw.rstrip("/")


def _loopback_if_any(listen: str) -> str:
    """OCICAT_LISTEN as a URL's host:port; an any-address (0.0.0.0, ::) is nobody's address: loopback instead."""
    host, port = _listen(listen)
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# The mechanisms a username and password are enough for (GSSAPI and OAUTHBEARER need more than an environment variable).
KAFKA_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# Kafka's own rule for topic names.
KAFKA_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_HOST_PORT_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$")
_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$")


@dataclass(frozen=True)
class KafkaConfig:
    """Where the Kafka bus is and how to reach it; present only when ``OCICAT_KAFKA_BOOTSTRAP`` is set."""

    bootstrap: tuple[str, ...]
    topic: str = "ocicat-events"
    catalog_topic: str = "ocicat.catalog"  # every catalog event out, as a CloudEvent (indexer.delivery.topic)
    # Used when ocicat creates the topic: the most worker threads, across all workers, that can index at once.
    partitions: int = 12
    replication_factor: int = 1
    group: str = "ocicat-indexer"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)  # never in a log line
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None


_KAFKA_SETTINGS = {
    "OCICAT_KAFKA_BOOTSTRAP", "OCICAT_KAFKA_TOPIC", "OCICAT_KAFKA_CATALOG_TOPIC", "OCICAT_KAFKA_PARTITIONS", "OCICAT_KAFKA_REPLICATION_FACTOR",
    "OCICAT_KAFKA_GROUP", "OCICAT_KAFKA_SECURITY_PROTOCOL", "OCICAT_KAFKA_SASL_MECHANISM", "OCICAT_KAFKA_SASL_USERNAME",
    "OCICAT_KAFKA_SASL_PASSWORD", "OCICAT_KAFKA_SSL_CAFILE", "OCICAT_KAFKA_SSL_CERTFILE", "OCICAT_KAFKA_SSL_KEYFILE",
}


def _kafka(env: dict) -> KafkaConfig | None:
    """The Kafka settings, checked together: a combination the broker would refuse fails here, by name."""
    given = {name: value for name, value in env.items() if name.startswith("OCICAT_KAFKA_") and value}
    unknown = sorted(set(given) - _KAFKA_SETTINGS)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]}; the Kafka settings are {', '.join(sorted(_KAFKA_SETTINGS))}")
    if "OCICAT_KAFKA_BOOTSTRAP" not in given:
        if given:
            raise ConfigError(f"{min(given)} is set but OCICAT_KAFKA_BOOTSTRAP is not: set it to use Kafka, "
                              "or unset the Kafka settings to use the PostgreSQL queue")
        return None
    bootstrap = tuple(s.strip() for s in given["OCICAT_KAFKA_BOOTSTRAP"].split(",") if s.strip())
    for server in bootstrap:
        match = _HOST_PORT_RE.match(server)
        if not match or not 0 < int(match.group(2)) < 65536:
            raise ConfigError(f"OCICAT_KAFKA_BOOTSTRAP must be host:port[,host:port...], got {server!r}")
    if not bootstrap:
        raise ConfigError("OCICAT_KAFKA_BOOTSTRAP must be host:port[,host:port...]")
    topic = given.get("OCICAT_KAFKA_TOPIC", KafkaConfig.topic)
    catalog_topic = given.get("OCICAT_KAFKA_CATALOG_TOPIC", KafkaConfig.catalog_topic)
    for name, value in (("OCICAT_KAFKA_TOPIC", topic), ("OCICAT_KAFKA_CATALOG_TOPIC", catalog_topic)):
        if not KAFKA_TOPIC_RE.match(value) or value in (".", ".."):
            raise ConfigError(f"{name} must be 1 to 249 of A-Z a-z 0-9 . _ -, got {value!r}")
    if catalog_topic == topic:
        raise ConfigError(f"OCICAT_KAFKA_CATALOG_TOPIC must differ from OCICAT_KAFKA_TOPIC ({topic!r}): the registry's "
                          "events go in one, the catalog's out of the other")
    protocol = given.get("OCICAT_KAFKA_SECURITY_PROTOCOL", KafkaConfig.security_protocol).upper()
    if protocol not in KAFKA_SECURITY_PROTOCOLS:
        raise ConfigError(f"OCICAT_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(KAFKA_SECURITY_PROTOCOLS)}, "
                          f"got {protocol!r}")
    mechanism = given.get("OCICAT_KAFKA_SASL_MECHANISM")
    mechanism = mechanism.upper() if mechanism else None
    username, password = given.get("OCICAT_KAFKA_SASL_USERNAME"), given.get("OCICAT_KAFKA_SASL_PASSWORD")
    if protocol.startswith("SASL_"):
        if mechanism not in KAFKA_SASL_MECHANISMS:
            raise ConfigError(f"OCICAT_KAFKA_SECURITY_PROTOCOL={protocol} needs OCICAT_KAFKA_SASL_MECHANISM, one of "
                              f"{', '.join(KAFKA_SASL_MECHANISMS)}, got {mechanism!r}")
        if not (username and password):
            raise ConfigError(f"OCICAT_KAFKA_SASL_MECHANISM={mechanism} needs OCICAT_KAFKA_SASL_USERNAME and "
                              "OCICAT_KAFKA_SASL_PASSWORD")
    else:
        sasl = [n for n in ("OCICAT_KAFKA_SASL_MECHANISM", "OCICAT_KAFKA_SASL_USERNAME", "OCICAT_KAFKA_SASL_PASSWORD")
                if n in given]
        if sasl:
            raise ConfigError(f"{sasl[0]} is set, but OCICAT_KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL "
                              "(SASL_PLAINTEXT or SASL_SSL do)")
    files = {}
    for name in ("OCICAT_KAFKA_SSL_CAFILE", "OCICAT_KAFKA_SSL_CERTFILE", "OCICAT_KAFKA_SSL_KEYFILE"):
        path = given.get(name)
        if path is None:
            continue
        if not protocol.endswith("SSL"):
            raise ConfigError(f"{name} is set, but OCICAT_KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS "
                              "(SSL or SASL_SSL do)")
        if not (os.path.isfile(path) and os.access(path, os.R_OK)):
            raise ConfigError(f"{name} must name a readable file, got {path!r}")
        files[name] = path
    if "OCICAT_KAFKA_SSL_KEYFILE" in files and "OCICAT_KAFKA_SSL_CERTFILE" not in files:
        raise ConfigError("OCICAT_KAFKA_SSL_KEYFILE needs OCICAT_KAFKA_SSL_CERTFILE (the client certificate it belongs to)")
    return KafkaConfig(
        bootstrap=bootstrap,
        topic=topic,
        catalog_topic=catalog_topic,
        partitions=_int(env, "OCICAT_KAFKA_PARTITIONS", KafkaConfig.partitions, 1),
        replication_factor=_int(env, "OCICAT_KAFKA_REPLICATION_FACTOR", KafkaConfig.replication_factor, 1),
        group=given.get("OCICAT_KAFKA_GROUP", KafkaConfig.group),
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=username,
        sasl_password=password,
        ssl_cafile=files.get("OCICAT_KAFKA_SSL_CAFILE"),
        ssl_certfile=files.get("OCICAT_KAFKA_SSL_CERTFILE"),
        ssl_keyfile=files.get("OCICAT_KAFKA_SSL_KEYFILE"),
    )


@dataclass(frozen=True)
class OidcConfig:
    """Sign-in with an OpenID Connect provider (api.sign_in, ocicat.sign_in); present when OCICAT_OIDC_ISSUER is set."""

    issuer: str
    client_id: str
    client_secret: str
    name: str  # on the sign-in button: "Sign in with <name>"
    scopes: str = "openid profile email"
    role_rules: tuple = ()  # ocicat.role_rules.RoleRule
    gitlab: bool = False  # GitLab's role claims and API give the registry's roles (ocicat.sign_in.gitlab_roles)
    gitlab_api_url: str = ""
    gitlab_reporters: str = "api"  # "api": asked of GitLab's API; "groups": every group of the groups claim
    refresh_seconds: int = 300  # a signed-in user's roles are asked of the provider again after this long
    stale_seconds: int = 3600  # ... and count this long after its last answer (the provider down, the user away)


def _oidc(env: dict) -> OidcConfig | None:
    given = {name: value for name, value in env.items() if name.startswith("OCICAT_OIDC_") and value}
    if "OCICAT_OIDC_ISSUER" not in given:
        if given:
            raise ConfigError(f"{min(given)} is set but OCICAT_OIDC_ISSUER is not: set it to sign in with a provider")
        return None
    issuer = given["OCICAT_OIDC_ISSUER"].rstrip("/")
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"OCICAT_OIDC_ISSUER must be the provider's http(s) URL, got {issuer!r}")
    for name in ("OCICAT_OIDC_CLIENT_ID", "OCICAT_OIDC_CLIENT_SECRET"):
        if name not in given:
            raise ConfigError(f"OCICAT_OIDC_ISSUER needs {name} (from the application registered at the provider)")
    if not env.get("OCICAT_SECRET_KEY"):
        raise ConfigError("OCICAT_OIDC_ISSUER needs OCICAT_SECRET_KEY (a long random string, the same for every API "
                          "process): it signs the sign-in's state and encrypts the provider's tokens")
    try:
        rules = role_rules.parse(given.get("OCICAT_OIDC_ROLE_RULES"))
    except ValueError as exc:
        raise ConfigError(f"OCICAT_OIDC_ROLE_RULES {exc}") from None
    gitlab = _bool(env, "OCICAT_OIDC_GITLAB")
    reporters = given.get("OCICAT_OIDC_GITLAB_REPORTERS", OidcConfig.gitlab_reporters)
    if reporters not in ("api", "groups"):
        raise ConfigError(f"OCICAT_OIDC_GITLAB_REPORTERS must be api or groups, got {reporters!r}")
    scopes = given.get("OCICAT_OIDC_SCOPES", OidcConfig.scopes + (" read_api" if gitlab and reporters == "api" else ""))
    if "openid" not in scopes.split():
        raise ConfigError(f"OCICAT_OIDC_SCOPES must include openid, got {scopes!r}")
    refresh = _int(env, "OCICAT_OIDC_REFRESH_SECONDS", OidcConfig.refresh_seconds, 1)
    # Roles lapse this long after the provider's last answer: before the next check is due, they would come and go.
    stale = _int(env, "OCICAT_OIDC_STALE_SECONDS", OidcConfig.stale_seconds, refresh)
    return OidcConfig(
        issuer=issuer,
        client_id=given["OCICAT_OIDC_CLIENT_ID"],
        client_secret=given["OCICAT_OIDC_CLIENT_SECRET"],
        name=given.get("OCICAT_OIDC_NAME", "GitLab" if gitlab else parts.hostname),
        scopes=scopes,
        role_rules=rules,
        gitlab=gitlab,
        gitlab_api_url=given.get("OCICAT_OIDC_GITLAB_API_URL", issuer).rstrip("/"),
        gitlab_reporters=reporters,
        refresh_seconds=refresh,
        stale_seconds=stale,
    )


def _replica_urls(env: dict) -> tuple[str, ...]:
    urls = tuple(u.strip() for u in env.get("OCICAT_DATABASE_REPLICA_URLS", "").split(",") if u.strip())
    if urls and not env.get("OCICAT_DATABASE_URL"):
        raise ConfigError("OCICAT_DATABASE_REPLICA_URLS needs OCICAT_DATABASE_URL: replicas are of an external primary")
    for url in urls:
        if urlsplit(url).scheme not in ("postgresql", "postgres"):
            raise ConfigError("OCICAT_DATABASE_REPLICA_URLS: each is a postgresql:// URL, separated by commas")
    return urls


@dataclass(frozen=True)
class Config:
    database_url: str | None = None
    # Streaming replicas of it, for the API's catalog reads (ocicat.db.Reads), and how long a caller's reads stay on
    # the primary after they changed something (long enough for a delete's event from the registry to be indexed).
    database_replica_urls: tuple[str, ...] = ()
    replica_sticky_seconds: int = 30
    data_dir: str = field(default_factory=_default_data_dir)
    listen: str = "127.0.0.1:8080"
    registry_url: str = "http://127.0.0.1:5000"
    registry_public_host: str | None = None
    registry_username: str | None = None
    registry_password: str | None = None
    webhook_secrets: tuple[str, ...] = ()
    default_visibility: str = "private"
    worker_concurrency: int = 4
    api_workers: int = 2
    api_threads: int = 8
    max_attempts: int = 10
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line
    worker_metrics_listen: str | None = None  # host:port of the worker's own /metrics; None: not served
    resync_interval: int = 0  # seconds between the worker's reconciling crawls; 0: never
    resync_concurrency: int = 8  # repositories a crawl reconciles, and manifests it fetches, at once
    # Bearer JWTs of the registry's token service, accepted when an issuer is set (api.auth).
    registry_token_issuer: str | None = None
    registry_token_audience: str | None = None
    registry_token_keys: str | None = None
    registry_token_nested: bool = False
    kafka: KafkaConfig | None = None  # None: the PostgreSQL queue
    # The catalog's URL as its users reach it: the CloudEvents ``source`` and the links in every catalog event.
    public_url: str = "http://127.0.0.1:8080"
    events_retention_days: int = 7  # catalog events (and finished deliveries) are kept this long
    # Webhook deliveries (indexer.delivery.send): where targets may resolve to beyond public addresses, how many
    # requests a deliverer has in flight, how often a delivery is tried and how the waits between tries grow.
    delivery_allow: Guard = field(default_factory=Guard)
    delivery_concurrency: int = 16
    delivery_attempts: int = 12
    delivery_backoff_seconds: float = 5.0
    worker_delivery: bool = True  # False: deliveries are left to `ocicat deliver` processes
    helm_index_cache_mb: int = 64  # gzipped Helm repository indexes an API process keeps (api.helm_index)
    oidc: OidcConfig | None = None  # None: no sign-in with a provider, API tokens only
    secret_key: str | None = field(default=None, repr=False)  # signs the sign-in's state, encrypts provider tokens
    session_hours: int = 12  # a browser session signed in with the provider lasts this long at most

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Config":
        env = dict(os.environ if env is None else env)
        visibility = env.get("OCICAT_DEFAULT_VISIBILITY", "private") or "private"
        if visibility not in ("private", "public"):
            raise ConfigError(f"OCICAT_DEFAULT_VISIBILITY must be private or public, got {visibility!r}")
        listen = env.get("OCICAT_LISTEN") or cls.listen
        _listen(listen)
        token_issuer = env.get("OCICAT_REGISTRY_TOKEN_ISSUER") or None
        token_audience = env.get("OCICAT_REGISTRY_TOKEN_AUDIENCE") or None
        token_keys = env.get("OCICAT_REGISTRY_TOKEN_KEYS") or None
        if token_issuer and not (token_audience and token_keys):
            raise ConfigError("OCICAT_REGISTRY_TOKEN_ISSUER needs OCICAT_REGISTRY_TOKEN_AUDIENCE (the registry's "
                              "service name) and OCICAT_REGISTRY_TOKEN_KEYS (a PEM bundle or JWKS file)")
        log_format = (env.get("OCICAT_LOG_FORMAT") or cls.log_format).lower()
        if log_format not in logs.FORMATS:
            raise ConfigError(f"OCICAT_LOG_FORMAT must be text or json, got {log_format!r}")
        metrics_listen = env.get("OCICAT_WORKER_METRICS_LISTEN") or None
        if metrics_listen:
            try:
                _listen(metrics_listen)
            except ConfigError:
                raise ConfigError(f"OCICAT_WORKER_METRICS_LISTEN must be host:port, got {metrics_listen!r}") from None
        secrets = tuple(s.strip() for s in env.get("OCICAT_WEBHOOK_SECRETS", "").split(",") if s.strip())
        return cls(
            database_url=env.get("OCICAT_DATABASE_URL") or None,
            database_replica_urls=_replica_urls(env),
            replica_sticky_seconds=_int(env, "OCICAT_REPLICA_STICKY_SECONDS", cls.replica_sticky_seconds, 0),
            data_dir=env.get("OCICAT_DATA_DIR") or _default_data_dir(),
            listen=listen,
            registry_url=_registry_url(env.get("OCICAT_REGISTRY_URL") or cls.registry_url),
            registry_public_host=_public_host(env.get("OCICAT_REGISTRY_PUBLIC_HOST")),
            registry_username=env.get("OCICAT_REGISTRY_USERNAME") or None,
            registry_password=env.get("OCICAT_REGISTRY_PASSWORD") or None,
            webhook_secrets=secrets,
            default_visibility=visibility,
            worker_concurrency=_int(env, "OCICAT_WORKER_CONCURRENCY", cls.worker_concurrency, 1),
            api_workers=_int(env, "OCICAT_API_WORKERS", cls.api_workers, 1),
            api_threads=_int(env, "OCICAT_API_THREADS", cls.api_threads, 1),
            max_attempts=_int(env, "OCICAT_MAX_ATTEMPTS", cls.max_attempts, 1),
            log_level=(env.get("OCICAT_LOG_LEVEL") or cls.log_level).upper(),
            log_format=log_format,
            worker_metrics_listen=metrics_listen,
            resync_interval=_int(env, "OCICAT_RESYNC_INTERVAL", cls.resync_interval, 0),
            resync_concurrency=_int(env, "OCICAT_RESYNC_CONCURRENCY", cls.resync_concurrency, 1),
            registry_token_issuer=token_issuer,
            registry_token_audience=token_audience,
            registry_token_keys=token_keys,
            registry_token_nested=_bool(env, "OCICAT_REGISTRY_TOKEN_NESTED"),
            kafka=_kafka(env),
            public_url=_public_url(env.get("OCICAT_PUBLIC_URL") or f"http://{_loopback_if_any(listen)}"),
            events_retention_days=_int(env, "OCICAT_EVENTS_RETENTION_DAYS", cls.events_retention_days, 1),
            delivery_allow=_delivery_allow(env.get("OCICAT_DELIVERY_ALLOW")),
            delivery_concurrency=_int(env, "OCICAT_DELIVERY_CONCURRENCY", cls.delivery_concurrency, 1),
            delivery_attempts=_int(env, "OCICAT_DELIVERY_ATTEMPTS", cls.delivery_attempts, 1),
            delivery_backoff_seconds=_seconds(env, "OCICAT_DELIVERY_BACKOFF_SECONDS", cls.delivery_backoff_seconds),
            worker_delivery=_bool(env, "OCICAT_WORKER_DELIVERY", default=True),
            helm_index_cache_mb=_int(env, "OCICAT_HELM_INDEX_CACHE_MB", cls.helm_index_cache_mb, 0),
            oidc=_oidc(env),
            secret_key=env.get("OCICAT_SECRET_KEY") or None,
            session_hours=_int(env, "OCICAT_SESSION_HOURS", cls.session_hours, 1),
        )

    @property
    def listen_address(self) -> tuple[str, int]:
        return _listen(self.listen)

    @staticmethod
    def listen_address_of(raw: str) -> tuple[str, int]:
        """(host, port) of another host:port setting, checked like OCICAT_LISTEN."""
        return _listen(raw)

    @property
    def default_public(self) -> bool:
        return self.default_visibility == "public"

    @property
    def registry_host(self) -> str:
        """Host (and port) users pull from, for ``oci://`` references."""
        return self.registry_public_host or urlsplit(self.registry_url).netloc

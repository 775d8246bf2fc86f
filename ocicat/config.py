"""Configuration, read once from ``OCICAT_*`` environment variables.

Every setting has a default that makes one machine work out of the box; the
README lists them all. Parsing is strict: a malformed value stops the process
at start-up with the variable's name, instead of surfacing later as a
confusing runtime error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


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


def _bool(env: dict, name: str) -> bool:
    raw = (env.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1", "yes")


def _listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"OCICAT_LISTEN must be host:port, got {raw!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _registry_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"OCICAT_REGISTRY_URL must be an http(s) URL, got {raw!r}")
    return raw.rstrip("/")


@dataclass(frozen=True)
class Config:
    database_url: str | None = None
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
    # Bearer JWTs of the registry's token service, accepted when an issuer is set (api.auth).
    registry_token_issuer: str | None = None
    registry_token_audience: str | None = None
    registry_token_keys: str | None = None
    registry_token_nested: bool = False

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Config":
        env = dict(os.environ if env is None else env)
        visibility = env.get("OCICAT_DEFAULT_VISIBILITY", "private") or "private"
        if visibility not in ("private", "public"):
            raise ConfigError(f"OCICAT_DEFAULT_VISIBILITY must be private or public, got {visibility!r}")
        if env.get("OCICAT_KAFKA_BOOTSTRAP"):
            raise ConfigError(
                "OCICAT_KAFKA_BOOTSTRAP is set, but this version has only the PostgreSQL queue; unset it"
            )
        listen = env.get("OCICAT_LISTEN") or cls.listen
        _listen(listen)
        token_issuer = env.get("OCICAT_REGISTRY_TOKEN_ISSUER") or None
        token_audience = env.get("OCICAT_REGISTRY_TOKEN_AUDIENCE") or None
        token_keys = env.get("OCICAT_REGISTRY_TOKEN_KEYS") or None
        if token_issuer and not (token_audience and token_keys):
            raise ConfigError("OCICAT_REGISTRY_TOKEN_ISSUER needs OCICAT_REGISTRY_TOKEN_AUDIENCE (the registry's "
                              "service name) and OCICAT_REGISTRY_TOKEN_KEYS (a PEM bundle or JWKS file)")
        secrets = tuple(s.strip() for s in env.get("OCICAT_WEBHOOK_SECRETS", "").split(",") if s.strip())
        return cls(
            database_url=env.get("OCICAT_DATABASE_URL") or None,
            data_dir=env.get("OCICAT_DATA_DIR") or _default_data_dir(),
            listen=listen,
            registry_url=_registry_url(env.get("OCICAT_REGISTRY_URL") or cls.registry_url),
            registry_public_host=env.get("OCICAT_REGISTRY_PUBLIC_HOST") or None,
            registry_username=env.get("OCICAT_REGISTRY_USERNAME") or None,
            registry_password=env.get("OCICAT_REGISTRY_PASSWORD") or None,
            webhook_secrets=secrets,
            default_visibility=visibility,
            worker_concurrency=_int(env, "OCICAT_WORKER_CONCURRENCY", cls.worker_concurrency, 1),
            api_workers=_int(env, "OCICAT_API_WORKERS", cls.api_workers, 1),
            api_threads=_int(env, "OCICAT_API_THREADS", cls.api_threads, 1),
            max_attempts=_int(env, "OCICAT_MAX_ATTEMPTS", cls.max_attempts, 1),
            log_level=(env.get("OCICAT_LOG_LEVEL") or cls.log_level).upper(),
            registry_token_issuer=token_issuer,
            registry_token_audience=token_audience,
            registry_token_keys=token_keys,
            registry_token_nested=_bool(env, "OCICAT_REGISTRY_TOKEN_NESTED"),
        )

    @property
    def listen_address(self) -> tuple[str, int]:
        return _listen(self.listen)

    @property
    def default_public(self) -> bool:
        return self.default_visibility == "public"

    @property
    def registry_host(self) -> str:
        """Host (and port) users pull from, for ``oci://`` references."""
        return self.registry_public_host or urlsplit(self.registry_url).netloc

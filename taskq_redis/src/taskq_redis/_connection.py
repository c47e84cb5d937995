"""Building the Redis client: URLs, passwords, options."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis

__all__ = [
    "CONNECTION_OPTIONS",
    "PASSWORD_ENV_VARS",
    "make_client",
    "redact_url",
]

DEFAULT_URL = "redis://localhost:6379/0"
#: Environment variables read (in order) for a password the URL lacks.
PASSWORD_ENV_VARS = ("TASKQ_REDIS_PASSWORD", "REDIS_PASSWORD")
#: Options passed through to redis-py's connection pool.
CONNECTION_OPTIONS = frozenset(
    {
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "socket_keepalive_options",
        "health_check_interval",
        "retry",
        "retry_on_timeout",
        "retry_on_error",
        "max_connections",
        "client_name",
        "username",
        "password",
        "db",
        "protocol",
        "credential_provider",
        "ssl_keyfile",
        "ssl_certfile",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_ca_data",
        "ssl_check_hostname",
        "ssl_password",
        "ssl_min_version",
        "ssl_ciphers",
    }
)


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _describe_pool(pool: Any) -> str:
    kwargs: Mapping[str, Any] = getattr(pool, "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    scheme = (
        "rediss" if "ssl" in getattr(pool, "connection_class", type).__name__.lower() else "redis"
    )
    host = kwargs.get("host", "localhost")
    port = kwargs.get("port", 6379)
    return f"{scheme}://{host}:{port}/{kwargs.get('db', 0)}"


def make_client(
    connection: redis.Redis | None, url: str | None, options: dict[str, Any]
) -> tuple[redis.Redis, str, bool]:
    """``(client, url for messages, whether the broker owns the client)``.

    The client always returns bytes (``decode_responses=False``): a user's
    decoding connection gets a sibling pool with the same settings.
    """
    unknown = sorted(set(options) - CONNECTION_OPTIONS)
    if unknown:
        raise TypeError(f"RedisBroker got unknown option(s): {', '.join(unknown)}")
    if connection is not None:
        if url is not None or options:
            raise TypeError("RedisBroker takes either a connection or a url with options, not both")
        pool = connection.connection_pool
        described = _describe_pool(pool)
        if not pool.connection_kwargs.get("decode_responses"):
            return connection, described, False
        if type(pool) is not redis.ConnectionPool:
            raise TypeError(
                f"RedisBroker cannot copy a {type(pool).__name__} with decode_responses=True; "
                "pass a connection created with decode_responses=False"
            )
        kwargs = dict(pool.connection_kwargs)
        kwargs["decode_responses"] = False
        sibling = redis.ConnectionPool(
            connection_class=pool.connection_class,
            max_connections=pool.max_connections,
            **kwargs,
        )
        return redis.Redis(connection_pool=sibling), described, True
    url = url or DEFAULT_URL
    options = dict(options)
    if options.get("password") is None:
        options.pop("password", None)
        for name in PASSWORD_ENV_VARS:
            if os.environ.get(name):
                options["password"] = os.environ[name]
                break
    try:
        client = redis.Redis.from_url(url, decode_responses=False, **options)
    except ValueError as exc:
        raise ValueError(f"invalid Redis URL {redact_url(url)!r}: {exc}") from None
    return client, redact_url(url), True

"""Loading and validating the hub configuration (TOML file or dict, ``${VAR}`` from the env)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._adapter import AdapterSettings, ChannelAdapter
from ._errors import ConfigurationError
from ._plugins import AdapterRegistry
from ._service_settings import ApiSettings, FeedSettings

__all__ = ["ChannelConfig", "DeliverySettings", "HubSettings", "load_config"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class DeliverySettings(BaseModel):
    """How the outbox delivers (``[omnichannel.delivery]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: int = Field(default=128, ge=1)
    """Sends in flight at once, per process."""
    max_attempts: int = Field(default=8, ge=1)
    """Tries before a send is dead-lettered."""
    base_delay: float = Field(default=1.0, gt=0)
    """First retry delay in seconds; doubles each try, with jitter."""
    max_delay: float = Field(default=900.0, gt=0)
    """Longest retry delay in seconds."""
    lease: float = Field(default=120.0, gt=0)
    """Seconds a job stays its process's without a renewal: a live process renews the leases
    of the jobs it holds every ``lease / 3`` seconds, so another process takes over only a
    dead one's jobs (crash recovery), ``lease`` seconds after their last renewal at most."""
    poll_interval: float = Field(default=1.0, gt=0)
    """How often due retries and abandoned jobs are looked for."""
    max_in_flight_per_channel: int = Field(default=16, ge=1)
    """Vendor calls of sends in flight at once per channel key, per process. It bounds what
    a crash can leave uncertain (and so the duplicates it may cause) and the burst a vendor
    sees; ``concurrency`` bounds all jobs of the process."""
    worker_id: str | None = Field(default=None, min_length=1, max_length=100)
    """The base of this process's identity in the outbox (default: the host name). A
    restarted process takes the same identity and takes back at once the sends its previous
    incarnation had leased; two live processes never share one (the second gets
    ``<worker_id>#2``)."""


class HubSettings(BaseModel):
    """The ``[omnichannel]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str = "sqlite:///omnichannel.db"
    """``sqlite:///path.db`` (embedded default) or ``postgresql://…``."""
    bus: str = "memory"
    """``memory`` (default) or ``nats://127.0.0.1:4222``."""
    public_url: str | None = None
    """Base URL vendors see the gateway at; signatures are checked against it."""
    blobs: str | None = None
    """Where media bytes go: ``file://dir`` or ``memory://``. Default: a folder beside the
    SQLite database (``omnichannel.db`` → ``omnichannel-blobs/`` in the same folder); with
    PostgreSQL, ``omnichannel-blobs/`` in the working directory (set it explicitly there)."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    """Largest webhook body accepted (413 beyond)."""
    media_allow_http_loopback: bool = False
    """Tests only: let media downloads use plain http to a loopback ``api_base`` (a local
    vendor stub). Off, media comes over https only, from the exact declared origins."""
    max_channel_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    """Largest body of a request to an adapter's own routes (``/channels/{key}/…``) when the
    adapter sets no limit of its own for the route (413 beyond, enforced while streaming)."""
    http_transport: Literal["httpx", "aiohttp"] = "httpx"
    """Carrier of vendor HTTP calls: httpx's own (default; what a plain ``respx.mock()``
    intercepts) or aiohttp's pool (the ``[aiohttp]`` extra; for high outbound concurrency)."""
    http_max_per_host: int = Field(default=100, ge=1, le=1024)
    """Requests in flight to one vendor origin with the httpx transport (the rest wait)."""
    http_timeout: float = Field(default=20.0, gt=0)
    """Seconds before a vendor call times out."""
    delivery: DeliverySettings = DeliverySettings()
    """Outbox settings."""
    feed: FeedSettings = FeedSettings()
    """The durable event feed (``[omnichannel.feed]``)."""
    api: ApiSettings | None = None
    """The service API, from the top-level ``[api]`` table (``omnichannel serve``)."""
    log_format: Literal["text", "json"] = "text"
    """``json``: ``omnichannel serve`` writes one JSON object per log line."""

    def blob_url(self) -> str:
        """The blob store URL in effect (``blobs``, or the default beside the database)."""
        if self.blobs is not None:
            return self.blobs
        if self.store.startswith("sqlite:///"):
            path = self.store[len("sqlite:///"):]
            if path in ("", ":memory:"):
                return "memory://"
            db = Path(path)
            return f"file://{db.parent / (db.stem + '-blobs')}"
        return "file://omnichannel-blobs"


@dataclass(frozen=True)
class ChannelConfig:
    """One validated ``[channels.<key>]`` table."""

    key: str
    adapter: type[ChannelAdapter]
    settings: AdapterSettings


def _expand(value: Any, where: tuple[str | None, str | None]) -> Any:
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name, default)
            if found is None:
                raise ConfigurationError(f"environment variable {name} is not set",
                                         channel_key=where[0], field=where[1])
            return found

        return _VAR.sub(sub, value)
    if isinstance(value, Mapping):
        return {k: _expand(v, (where[0], k if where[1] is None else f"{where[1]}.{k}"))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, where) for v in value]
    return value


def _field_of(error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(table)"
    return loc, first["msg"]


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any], registry: AdapterRegistry
) -> tuple[HubSettings, dict[str, ChannelConfig]]:
    """Read and validate a configuration; one :class:`ConfigurationError` on the first problem."""
    if isinstance(source, Mapping):
        raw: Mapping[str, Any] = source
    else:
        path = Path(source)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(raw) - {"omnichannel", "channels", "api"}
    if unknown:
        raise ConfigurationError(f"unknown top-level table(s): {', '.join(sorted(unknown))}")
    hub_raw = _expand(dict(raw.get("omnichannel", {})), (None, None))
    if "api" in raw:  # a table of its own in the file, kept with the hub's settings
        hub_raw["api"] = _expand(raw["api"], (None, "api"))
    try:
        hub = HubSettings.model_validate(hub_raw)
    except ValidationError as exc:
        loc, msg = _field_of(exc)
        raise ConfigurationError(msg, field=loc if loc.startswith("api") else f"omnichannel.{loc}") from None
    channels: dict[str, ChannelConfig] = {}
    for key, table in dict(raw.get("channels", {})).items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", key):
            raise ConfigurationError("channel keys are letters, digits, '-', '_' and '.'",
                                     channel_key=key)
        if not isinstance(table, Mapping):
            raise ConfigurationError("must be a table", channel_key=key)
        table = _expand(dict(table), (key, None))
        name = table.pop("adapter", None)
        if not name:
            raise ConfigurationError("missing", channel_key=key, field="adapter")
        adapter = registry.get(name, channel_key=key)
        try:
            settings = adapter.Settings.model_validate(table)
        except ValidationError as exc:
            loc, msg = _field_of(exc)
            raise ConfigurationError(msg, channel_key=key, field=loc) from None
        channels[key] = ChannelConfig(key=key, adapter=adapter, settings=settings)
    return hub, channels

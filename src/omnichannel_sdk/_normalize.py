"""``omnichannel normalize``: a vendor payload file parsed offline into normalized messages
(no signature check, nothing stored or sent), with stand-ins for the secrets it needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._adapter import AdapterContext
from ._errors import CliError, ConfigurationError, OmnichannelError
from ._plugins import build_plugin_manager
from ._webhook import WebhookRequest

__all__ = ["CONTENT_TYPES", "channel_table", "normalize_file", "settings_for_normalize",
           "settings_pairs"]

CONTENT_TYPES = {".json": "application/json", ".xml": "text/xml", ".eml": "message/rfc822",
                 ".form": "application/x-www-form-urlencoded",
                 ".txt": "application/x-www-form-urlencoded"}
"""The content type a payload file is read as, by its suffix."""


def settings_pairs(items: list[str] | None) -> dict[str, Any]:
    """``--set NAME=VALUE`` options as a dict (a :class:`CliError` for a malformed one)."""
    values: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--set {item}: expected NAME=VALUE")
        values[name.strip()] = value
    return values


def normalize_file(
    file: Path, *, adapter: str | None, setting: list[str] | None, config: Path | None,
    channel: str | None, content_type: str | None,
) -> tuple[dict[str, Any], list[str]]:
    """The items and failures ``adapter`` (or the ``[channels.<channel>]`` of ``config``)
    parses from ``file``, and the adapter's notes on it (a mapping names paths that matched
    nothing)."""
    _, registry = build_plugin_manager()
    values: dict[str, Any] = {}
    if config is not None:
        if not config.is_file():
            raise CliError(f"no such file: {config}")
        channel, adapter, values = channel_table(config, channel, adapter)
    if adapter is None:
        raise CliError("name an adapter with --adapter, or a channel with --config")
    cls = registry.get(adapter)
    values.update(settings_pairs(setting))
    if config is not None:
        try:
            settings = cls.Settings.model_validate(values)
        except ValidationError as exc:  # a mapping that cannot compile: say where
            first = exc.errors()[0]
            raise ConfigurationError(first["msg"], channel_key=channel,
                                     field=".".join(str(x) for x in first["loc"]) or None) from None
    else:
        settings = settings_for_normalize(cls, values, adapter)
    context = AdapterContext(key="normalize", public_url="https://example.invalid",
                             http=None, kv=None)  # type: ignore[arg-type]
    instance = cls(settings, context)
    if not file.is_file():
        raise CliError(f"no such file: {file}")
    body = file.read_bytes()
    ctype = content_type or CONTENT_TYPES.get(file.suffix.lower(), "application/octet-stream")
    request = WebhookRequest("POST", "https://example.invalid/webhooks/normalize",
                             {"content-type": ctype}, body)
    result = instance.parse(request)
    out = [item.model_dump(mode="json", exclude_none=True) for item in result.items]
    failures = [{"error": f.error, "fragment": f.fragment} for f in result.failures]
    explain = getattr(instance, "explain", None)
    notes = list(explain(request)) if callable(explain) else []
    return {"items": out, "failures": failures}, notes


def channel_table(
    path: Path, key: str | None, adapter: str | None
) -> tuple[str, str | None, dict[str, Any]]:
    """The adapter and settings of one ``[channels.<key>]`` table; unset ``${VARS}`` become
    placeholders (nothing is verified or sent)."""
    import re
    import tomllib

    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise OmnichannelError(f"cannot read {path}: {exc}") from exc
    channels = data.get("channels") or {}
    if key is None:
        if len(channels) != 1:
            raise OmnichannelError(f"{path} has {len(channels)} channels: choose one with --channel")
        key = next(iter(channels))
    if key not in channels:
        raise OmnichannelError(f"{path} has no [channels.{key}]")
    table = dict(channels[key])

    def placeholders(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}",
                          lambda m: m.group(2) or f"unset-{m.group(1)}", value)
        if isinstance(value, dict):
            return {k: placeholders(v) for k, v in value.items()}
        if isinstance(value, list):
            return [placeholders(v) for v in value]
        return value

    table = placeholders(table)
    found = table.pop("adapter", None)
    return key, adapter or found, table


def settings_for_normalize(cls: Any, values: dict[str, Any], adapter: str) -> Any:
    """Validated settings for ``normalize``, or a :class:`CliError` naming the ``--set``.

    Nothing is verified or sent there, so a secret the user left out gets a stand-in: the
    required ones, and the optional ones too when a rule asks for "one of these".
    """
    from pydantic import ValidationError

    stand_in = "not-needed-to-normalize"
    secrets = [n for n, i in cls.Settings.model_fields.items()
               if n not in values and "Secret" in str(i.annotation)]
    required = {n: stand_in for n in secrets if cls.Settings.model_fields[n].is_required()}
    errors: list[ValidationError] = []
    for attempt in ({**values, **required}, {**values, **dict.fromkeys(secrets, stand_in)}):
        try:
            return cls.Settings.model_validate(attempt)
        except ValidationError as exc:
            errors.append(exc)
    stood_in = set(secrets)
    if all(e["loc"] and e["loc"][0] in stood_in for exc in errors for e in exc.errors()):
        # only the stand-ins were refused (a token format check): skip checking them
        from pydantic import SecretStr

        return cls.Settings.model_construct(**values, **{n: SecretStr(stand_in) for n in secrets})
    found = errors[0].errors()
    missing = [".".join(str(x) for x in e["loc"]) for e in found if e["type"] == "missing"]
    if missing:
        raise CliError(f"{adapter} needs " + " ".join(f"--set {m}=VALUE" for m in missing))
    name = ".".join(str(x) for x in found[0]["loc"])
    if not name:  # a rule across several settings
        raise CliError(f"{adapter} settings: {found[0]['msg']}")
    raise CliError(f"--set {name}: {found[0]['msg']}")

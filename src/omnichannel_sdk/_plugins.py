"""The plugin manager: hookspecs, entry-point discovery and the adapter registry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pluggy

from . import hookspecs
from ._adapter import AdapterSettings, ChannelAdapter
from ._errors import ConfigurationError, PluginError
from ._observes import Watch, watch_of

__all__ = ["AdapterRegistry", "HookCalls", "build_plugin_manager", "check_hooks", "implemented"]

PROJECT = "omnichannel"


class AdapterRegistry:
    """Adapter classes by name, as plugins registered them."""

    def __init__(self) -> None:
        self._adapters: dict[str, type[ChannelAdapter]] = {}

    def register(self, adapter: type[ChannelAdapter]) -> None:
        """Add an adapter class; refuse a second one with the same name, and one that lacks
        ``name``, ``channel``, a ``Settings`` model or an implementation of ``verify`` or
        ``parse`` (a :class:`PluginError` naming what is missing)."""
        if not (isinstance(adapter, type) and issubclass(adapter, ChannelAdapter)):
            raise PluginError(f"{adapter!r} is not a ChannelAdapter subclass")
        for attr in ("name", "channel"):
            if not isinstance(getattr(adapter, attr, None), str) or not getattr(adapter, attr):
                raise PluginError(f"{adapter.__qualname__} has no {attr!r}")
        missing = sorted(getattr(adapter, "__abstractmethods__", ()))
        if missing:
            raise PluginError(
                f"{adapter.__qualname__} ({adapter.__module__}) does not implement "
                + ", ".join(f"{name}()" for name in missing))
        settings = getattr(adapter, "Settings", None)
        if not (isinstance(settings, type) and issubclass(settings, AdapterSettings)):
            raise PluginError(f"{adapter.__qualname__}.Settings is not an AdapterSettings subclass")
        existing = self._adapters.get(adapter.name)
        if existing is not None and existing is not adapter:
            raise PluginError(
                f"adapter name {adapter.name!r} registered twice "
                f"({existing.__module__} and {adapter.__module__})"
            )
        self._adapters[adapter.name] = adapter

    def get(self, name: str, *, channel_key: str | None = None) -> type[ChannelAdapter]:
        """The adapter class called ``name``; a :class:`ConfigurationError` when unknown."""
        try:
            return self._adapters[name]
        except KeyError:
            known = ", ".join(sorted(self._adapters)) or "none installed"
            raise ConfigurationError(
                f"unknown adapter {name!r} (installed: {known})",
                channel_key=channel_key,
                field="adapter",
            ) from None

    def __iter__(self) -> Any:
        return iter(sorted(self._adapters.values(), key=lambda a: a.name))

    def __contains__(self, name: object) -> bool:
        return name in self._adapters

    def names(self) -> list[str]:
        """Registered adapter names, sorted."""
        return sorted(self._adapters)


def build_plugin_manager(
    plugins: Iterable[object] = (), *, entry_points: bool = True
) -> tuple[pluggy.PluginManager, AdapterRegistry]:
    """A plugin manager with our hookspecs, installed plugins and ``plugins`` registered.

    Plugins add their own hookspecs through ``omni_add_hookspecs`` as they are registered;
    then every ``omni_*`` implementation must match a specification: a misspelled hook raises
    :class:`PluginError` naming the plugin and the hook.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    # historic: each plugin registered from now on gets the call at once (pytest_addhooks)
    pm.hook.omni_add_hookspecs.call_historic(kwargs={"pluginmanager": pm})
    from . import _builtin

    pm.register(_builtin, name="omnichannel-builtin")
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(PROJECT)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"installed plugin {exc.plugin!r} is invalid: {exc}") from None
    for plugin in plugins:
        if pm.is_registered(plugin):
            continue
        try:
            pm.register(plugin)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {plugin!r} is invalid: {exc}") from None
    check_hooks(pm)
    registry = AdapterRegistry()
    pm.hook.omni_register_adapters(register=registry.register)
    return pm, registry


def check_hooks(pm: pluggy.PluginManager) -> None:
    """Refuse a hook implementation that matches no hookspec (a typo, a hook of a plugin that
    is not installed) with a :class:`PluginError` naming it — pluggy's ``check_pending``."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc} (a misspelled omni_* hook? One that a plugin which is not "
                          "installed specifies is marked @hookimpl(optionalhook=True))") from None


_Calls = tuple[tuple[Any, tuple[str, ...], Watch | None], ...]

def implemented(caller: Any) -> bool:
    """Whether the :class:`pluggy.HookCaller` ``caller`` has an implementation: what
    ``bool(caller.get_hookimpls())`` says, without the copy of the list pluggy's method makes
    (asked several times per inbound message for hooks nobody implements)."""
    impls = getattr(caller, "_hookimpls", None)
    if type(impls) is list:
        return bool(impls)
    return bool(caller.get_hookimpls())  # a pluggy without that list: its own answer


# pluggy's own call loop, as a fresh manager has it (tracing and monitoring replace it)
_PLAIN_HOOKEXEC = pluggy.PluginManager(PROJECT)._inner_hookexec


class HookCalls:
    """Calls the hooks of ``pm`` that the hub runs per event, the way pluggy would.

    pluggy's generic call (defaults, argument checks, a copy of the implementations, wrapper
    handling, teardowns) costs about twice the work of two observer implementations that
    return at once, on every inbound message. When a hook has only plain implementations (no
    ``wrapper`` / ``hookwrapper``, no keyword-only arguments), is not ``firstresult`` or
    historic and the manager is not traced, :meth:`call` calls them itself in pluggy's order
    (last registered first), keeping the results that are not ``None``; an exception stops the
    loop and propagates, as in pluggy. What it saw is checked on every call (the same
    implementations, the same call loop), so registering or unregistering a plugin, or tracing
    the manager, sends the next call through pluggy again.

    On the direct way, an implementation that declared with :func:`~omnichannel_sdk.observes`
    what it watches is left out of a call about a channel adapter or parts it does not watch
    (on pluggy's way every implementation is called, which that declaration allows).
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        # hook name -> (the implementations seen, the call loop seen, the direct calls or None)
        self._plans: dict[str, tuple[list[Any], Any, _Calls | None]] = {}

    def call(self, caller: Any, kwargs: dict[str, Any], adapter: object | None = None,
             parts: Sequence[Any] | None = None) -> list[Any]:
        """``caller(**kwargs)`` (a :class:`pluggy.HookCaller` of ``pm``), for an event of a
        channel with ``adapter`` about a message with ``parts`` (``None``: not known / no
        message; see :class:`~omnichannel_sdk._observes.Watch`)."""
        calls = self._current(caller)[2]
        if calls is None:
            results: list[Any] = caller(**kwargs)
            return results
        results = []
        for function, argnames, watch in calls:
            if watch is not None and not watch.matches(adapter, parts):
                continue  # it declared it does nothing for this event
            result = function(*[kwargs[name] for name in argnames])
            if result is not None:
                results.append(result)
        return results

    def hears(self, caller: Any, adapter: object | None, parts: Sequence[Any] | None) -> bool | None:
        """Whether :meth:`call` with ``adapter`` and ``parts`` would call any implementation
        (``None``: the hook has none at all, a falsy answer as well)."""
        impls, _, calls = self._current(caller)
        if not impls:  # (pluggy's own answer, should its private list ever be missing)
            return True if caller.get_hookimpls() else None
        if calls is None:
            return True
        for _, _, watch in calls:  # a loop, not any() over a generator: asked per message
            if watch is None or watch.matches(adapter, parts):
                return True
        return False

    def _current(self, caller: Any) -> tuple[list[Any], Any, _Calls | None]:
        impls = getattr(caller, "_hookimpls", None)
        hookexec = getattr(self.pm, "_inner_hookexec", None)
        plan = self._plans.get(caller.name)
        if plan is None or plan[1] is not hookexec or plan[0] != impls:
            plan = self._plan(caller, impls, hookexec)
        return plan

    def _plan(self, caller: Any, impls: Any, hookexec: Any) -> tuple[list[Any], Any, _Calls | None]:
        """What calling ``caller`` takes: its implementations' functions and arguments in
        pluggy's order, or ``None`` when only pluggy may call it."""
        calls: _Calls | None = None
        spec = getattr(caller, "spec", None)
        if (isinstance(impls, list) and spec is not None and not caller.is_historic()
                and not spec.opts.get("firstresult") and hookexec is _PLAIN_HOOKEXEC
                and all(not (i.wrapper or i.hookwrapper or i.kwargnames)
                        and set(i.argnames) <= set(spec.argnames) for i in impls)):
            calls = tuple((i.function, tuple(i.argnames), watch_of(i.function))
                          for i in reversed(impls))
        plan = (list(impls) if isinstance(impls, list) else [], hookexec, calls)
        self._plans[caller.name] = plan
        return plan

"""The observer hooks' direct calls (``HookCalls``) answer exactly what pluggy's own call does:
same implementations, same order, same results, same exception, and pluggy again whenever a
plugin registers or unregisters, a wrapper appears or the manager is traced."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from omnichannel_sdk import hookimpl, observes
from omnichannel_sdk._plugins import HookCalls, build_plugin_manager, implemented

ARGS = {"hub": "hub", "message": "m", "conversation": "c"}


class _Returns:
    def __init__(self, value: Any, seen: list[str]) -> None:
        self.value = value
        self.seen = seen

    @hookimpl
    def omni_inbound_received(self, hub: Any, message: Any, conversation: Any) -> Any:
        self.seen.append(f"{self.value}:{hub}:{message}:{conversation}")
        return self.value


class _OnlyMessage:
    @hookimpl
    def omni_inbound_received(self, message: Any) -> Any:
        return f"only {message}"


class _Raises:
    @hookimpl
    def omni_inbound_received(self, message: Any) -> Any:
        raise RuntimeError("observer broke")


class _Wraps:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @hookimpl(wrapper=True)
    def omni_inbound_received(self, message: Any) -> Generator[None, Any, Any]:
        self.seen.append("before")
        result = yield
        self.seen.append("after")
        return result


def _both(calls: HookCalls, pm: Any) -> tuple[Any, Any]:
    """What the direct call and pluggy's own call answer (and record), with the same plugins."""
    caller = pm.hook.omni_inbound_received
    return calls.call(caller, dict(ARGS)), caller(**ARGS)


def test_the_direct_call_answers_what_pluggy_answers() -> None:
    pm, _ = build_plugin_manager(entry_points=False)
    calls = HookCalls(pm)
    seen: list[str] = []
    for plugin in (_Returns("a", seen), _Returns(None, seen), _OnlyMessage(), _Returns("b", seen)):
        pm.register(plugin)
    direct, plain = _both(calls, pm)
    assert direct == plain == ["b", "only m", "a"]  # last registered first, None dropped
    assert seen[:3] == seen[3:] == ["b:hub:m:c", "None:hub:m:c", "a:hub:m:c"]
    assert calls._plans["omni_inbound_received"][2] is not None  # the direct way was taken


def test_registering_or_unregistering_is_seen_at_the_next_call() -> None:
    pm, _ = build_plugin_manager(entry_points=False)
    calls = HookCalls(pm)
    seen: list[str] = []
    first = _Returns("a", seen)
    pm.register(first)
    assert calls.call(pm.hook.omni_inbound_received, dict(ARGS)) == ["a"]
    pm.register(_Returns("b", seen))
    assert _both(calls, pm) == (["b", "a"], ["b", "a"])
    pm.unregister(first)
    assert _both(calls, pm) == (["b"], ["b"])


def test_an_exception_stops_the_loop_as_in_pluggy() -> None:
    pm, _ = build_plugin_manager(entry_points=False)
    calls = HookCalls(pm)
    seen: list[str] = []
    pm.register(_Returns("a", seen))
    pm.register(_Raises())
    pm.register(_Returns("b", seen))
    caller = pm.hook.omni_inbound_received
    with pytest.raises(RuntimeError, match="observer broke"):
        calls.call(caller, dict(ARGS))
    with pytest.raises(RuntimeError, match="observer broke"):
        caller(**ARGS)
    assert seen == ["b:hub:m:c", "b:hub:m:c"]  # "a" (registered first, called last) never ran


def test_wrappers_and_tracing_go_through_pluggy() -> None:
    pm, _ = build_plugin_manager(entry_points=False)
    calls = HookCalls(pm)
    seen: list[str] = []
    pm.register(_Returns("a", seen))
    assert calls.call(pm.hook.omni_inbound_received, dict(ARGS)) == ["a"]
    wrapper = _Wraps(seen)
    pm.register(wrapper)
    seen.clear()
    assert calls.call(pm.hook.omni_inbound_received, dict(ARGS)) == ["a"]
    assert seen == ["before", "a:hub:m:c", "after"]  # the wrapper ran around the call
    assert calls._plans["omni_inbound_received"][2] is None
    pm.unregister(wrapper)
    traced: list[str] = []
    undo = pm.add_hookcall_monitoring(lambda name, impls, kwargs: traced.append(name),
                                      lambda outcome, name, impls, kwargs: None)
    assert calls.call(pm.hook.omni_inbound_received, dict(ARGS)) == ["a"]
    assert traced == ["omni_inbound_received"]  # the monitor saw the call: pluggy made it
    undo()
    assert calls.call(pm.hook.omni_inbound_received, dict(ARGS)) == ["a"]
    assert traced == ["omni_inbound_received"]
    assert calls._plans["omni_inbound_received"][2] is not None


class _Watching:
    """Acts on one adapter's messages with a media part only (declared with ``observes``)."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @hookimpl
    @observes(adapters=[int], part_types=["media"])
    def omni_inbound_received(self, message: Any) -> Any:
        self.seen.append(message)
        return "watched"


class _Part:
    def __init__(self, type: str) -> None:
        self.type = type


def test_a_declared_watch_leaves_other_events_out() -> None:
    pm, _ = build_plugin_manager(entry_points=False)
    calls = HookCalls(pm)
    seen: list[str] = []
    pm.register(_Watching(seen))
    caller = pm.hook.omni_inbound_received
    media, text = [_Part("text"), _Part("media")], [_Part("text")]
    assert calls.hears(caller, 1, media) and calls.call(caller, dict(ARGS), 1, media) == ["watched"]
    assert not calls.hears(caller, "other adapter", media)
    assert calls.call(caller, dict(ARGS), "other adapter", media) == []
    assert not calls.hears(caller, 1, text) and calls.call(caller, dict(ARGS), 1, text) == []
    # what cannot be judged (no adapter known, no parts) is called
    assert calls.hears(caller, None, None) and calls.call(caller, dict(ARGS)) == ["watched"]
    assert seen == ["m", "m"]
    pm.register(_Returns("a", []))  # an implementation watching everything hears everything
    assert calls.hears(caller, "other adapter", text)
    assert calls.call(caller, dict(ARGS), "other adapter", text) == ["a"]
    pm.register(_Wraps([]))  # pluggy's way calls every implementation (the watch allows it)
    assert calls.call(caller, dict(ARGS), "other adapter", text) == ["a", "watched"]


def test_implemented_answers_as_get_hookimpls_without_calling_it(monkeypatch: pytest.MonkeyPatch) -> None:
    pm, _ = build_plugin_manager(entry_points=False)
    caller = pm.hook.omni_inbound_received
    copies: list[int] = []
    real = type(caller).get_hookimpls

    def counting(self: Any) -> Any:
        copies.append(1)
        return real(self)

    def answer() -> bool:
        copies.clear()
        result = implemented(caller)
        assert not copies  # answered from pluggy's list, not its copy
        return result

    monkeypatch.setattr(type(caller), "get_hookimpls", counting)
    assert not answer()
    plugin = _Returns("a", [])
    pm.register(plugin)
    assert answer()
    pm.unregister(plugin)
    assert not answer()

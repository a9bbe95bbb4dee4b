"""Hook specifications of omnichannel_sdk (pluggy project name ``omnichannel``).

A plugin is a module or object with functions marked ``@omnichannel_sdk.hookimpl``, registered
under the entry-point group ``omnichannel``. Implementations may accept fewer arguments than
the specification names, so hooks can grow. ``firstresult`` hooks are synchronous and cheap (no
network I/O); observer hooks may return an awaitable, which the hub awaits. Observers run after
the vendor has been answered and never delay a webhook.

Every ``omni_*`` implementation must match a specification: once every plugin is loaded the
plugin manager checks (pluggy's ``check_pending``), so a misspelled hook is a
:class:`~omnichannel_sdk.PluginError`, not silence. A plugin that offers hooks of its own adds
their specifications in :func:`omni_add_hookspecs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._adapter import ChannelAdapter, InboundMessage
    from ._capabilities import Capabilities
    from ._demos import Demo
    from ._hub import Hub
    from ._models import Address, Conversation, Message, Part
    from ._render import Rendered

hookspec = pluggy.HookspecMarker("omnichannel")
hookimpl = pluggy.HookimplMarker("omnichannel")

# -------------------------------------------------------------------------
# registration
# -------------------------------------------------------------------------


@hookspec(historic=True)
def omni_add_hookspecs(pluginmanager: pluggy.PluginManager) -> None:
    """Add the hook specifications this plugin offers to other plugins.

    Called once for every plugin when it is registered (a historic hook, like pytest's
    ``pytest_addhooks``), before the plugin manager checks that every implementation matches
    a specification. Returns nothing; not ``firstresult``.

    :param pluginmanager: the ``omnichannel`` plugin manager: call
        ``pluginmanager.add_hookspecs(module_or_class)``.
    """


@hookspec
def omni_register_adapters(register: Callable[[type[ChannelAdapter]], None]) -> None:
    """Register the channel adapters this plugin provides.

    Called once when the plugin manager is built. Returns nothing (results are ignored); not
    ``firstresult``: every plugin registers its own.

    :param register: call ``register(AdapterClass)`` for each adapter class. Two adapters with
        one ``name``, or an adapter that does not implement ``verify`` and ``parse``, raise
        :class:`~omnichannel_sdk.PluginError`.
    """


@hookspec
def omni_register_demos(register: Callable[[Demo], None]) -> None:
    """Register what this plugin adds to ``omnichannel demo``.

    Called whenever the demo builds its configuration, simulates traffic or mounts its vendor
    stubs. Returns nothing (results are ignored); not ``firstresult``: every plugin registers
    its own.

    :param register: call ``register(Demo(adapters=..., channels=..., simulate=...,
        vendor=...))`` once (see :class:`~omnichannel_sdk.Demo`).
    """


# -------------------------------------------------------------------------
# lifecycle
# -------------------------------------------------------------------------


@hookspec
def omni_hub_started(hub: Hub) -> Any:
    """The hub has opened its store, HTTP pool, bus and workers.

    Returns nothing, or an awaitable the hub awaits; not ``firstresult``.

    :param hub: the hub.
    """


@hookspec
def omni_hub_stopping(hub: Hub) -> Any:
    """The hub is about to close; last chance to use it.

    Returns nothing, or an awaitable the hub awaits (briefly); not ``firstresult``.

    :param hub: the hub.
    """


# -------------------------------------------------------------------------
# inbound: contact resolution and threading (synchronous, cheap)
# -------------------------------------------------------------------------


@hookspec
def omni_contact_identify(adapter: ChannelAdapter, message: InboundMessage) -> Sequence[Address] | None:
    """Name more addresses of the sender of ``message`` (e.g. an email from a pre-chat form).

    Called for each inbound message before it is stored. The hub looks the contact up by the
    sender's address, then by these; the first match is the contact, and every address is
    attached to it. Returns a sequence of addresses or ``None``; not ``firstresult``: the
    results of all implementations are combined. Synchronous.

    :param adapter: the adapter that parsed the message.
    :param message: the parsed, not yet stored message.
    """


@hookspec(firstresult=True)
def omni_inbound_thread_key(adapter: ChannelAdapter, message: InboundMessage) -> str | None:
    """Return the key that threads ``message`` into a conversation on its channel key.

    Called when the message names no conversation and refers to no stored message. Messages
    with one thread key share the open conversation of that key. Returns the key, or ``None``
    for the default: the adapter's :meth:`~omnichannel_sdk.ChannelAdapter.thread_key`.
    Synchronous.

    Stops at first non-None result.

    :param adapter: the adapter that parsed the message.
    :param message: the parsed, not yet stored message.
    """


@hookspec(firstresult=True)
def omni_inbound_passive_reply(
    hub: Hub, adapter: ChannelAdapter, message: Message, conversation: Conversation
) -> Sequence[Part] | None:
    """Return parts to answer ``message`` inside the webhook's own HTTP response.

    Called only for adapters whose capabilities have ``passive_reply`` (WeChat's passive reply,
    Twilio's TwiML), after the message is stored and before the vendor is answered, so it must
    be quick and synchronous (canned answers, keyword bots). The reply is stored as an outbound
    message. Returns the parts, or ``None`` to answer the vendor plainly.

    Stops at first non-None result.

    :param hub: the hub.
    :param adapter: the adapter that received the message.
    :param message: the stored inbound message.
    :param conversation: its conversation.
    """


# -------------------------------------------------------------------------
# inbound: observers (after the vendor was answered)
# -------------------------------------------------------------------------


@hookspec
def omni_inbound_received(hub: Hub, message: Message, conversation: Conversation) -> Any:
    """A new inbound message was stored (duplicates never reach this hook).

    Called after the vendor was answered. Returns nothing, or an awaitable the hub awaits; not
    ``firstresult``.

    :param hub: the hub (use ``hub.send`` to answer).
    :param message: the stored message.
    :param conversation: its conversation.
    """


@hookspec
def omni_conversation_opened(hub: Hub, conversation: Conversation) -> Any:
    """A new conversation was created (by an inbound message or a send).

    Returns nothing, or an awaitable the hub awaits; not ``firstresult``.

    :param hub: the hub.
    :param conversation: the new conversation.
    """


@hookspec
def omni_message_updated(hub: Hub, message: Message) -> Any:
    """A stored message changed other than by status (media downloaded, transcript added).

    Returns nothing, or an awaitable the hub awaits; not ``firstresult``.

    :param hub: the hub.
    :param message: the message as now stored.
    """


# -------------------------------------------------------------------------
# outbound
# -------------------------------------------------------------------------


@hookspec(firstresult=True)
def omni_outbound_render(
    adapter: ChannelAdapter, parts: Sequence[Part], capabilities: Capabilities
) -> Rendered | Sequence[Part] | None:
    """Render outbound ``parts`` to what the channel can show.

    Called by ``hub.send`` before the message is queued. Returns a
    :class:`~omnichannel_sdk.Rendered` (parts plus render metadata: the numbered actions that
    map a customer's "2" back, the SMS encoding), or only the parts to send (their render
    metadata is then what the default renderer would record for the same input, so numbered
    replies still map back), or ``None`` for the default renderer (numbered lists for actions,
    links for media the channel cannot carry, splitting at the maximum length). Synchronous.

    Stops at first non-None result.

    :param adapter: the adapter that will send.
    :param parts: the parts as the caller gave them.
    :param capabilities: the adapter's capabilities.
    """


@hookspec
def omni_outbound_sent(hub: Hub, message: Message) -> Any:
    """The vendor accepted an outbound message.

    Returns nothing, or an awaitable the hub awaits; not ``firstresult``.

    :param hub: the hub.
    :param message: the message with its vendor id and status.
    """


@hookspec
def omni_status_changed(hub: Hub, message: Message, previous: str) -> Any:
    """An outbound message's delivery status moved forward (or it failed).

    Returns nothing, or an awaitable the hub awaits; not ``firstresult``.

    :param hub: the hub.
    :param message: the message with its new status.
    :param previous: the status before.
    """


# -------------------------------------------------------------------------
# demo: deprecated since 0.2 (use omni_register_demos), removed in 0.3
# -------------------------------------------------------------------------


@hookspec(warn_on_impl=DeprecationWarning(
    "omni_demo_channels is deprecated: register a Demo in omni_register_demos"))
def omni_demo_channels(public_url: str) -> dict[str, dict[str, Any]] | None:
    """Deprecated: :attr:`Demo.channels <omnichannel_sdk.Demo.channels>`. Channels this
    plugin adds to ``omnichannel demo``, as ``{key: settings table}``.

    Called once when the demo builds its configuration. Tables must work offline: point
    ``api_base`` at ``{public_url}/demo/vendor/<name>`` (the demo's loopback vendor stub).
    Returns the tables or ``None``; not ``firstresult``: every plugin's channels are merged.

    :param public_url: where the demo gateway listens.
    """


@hookspec(warn_on_impl=DeprecationWarning(
    "omni_demo_simulate is deprecated: register a Demo in omni_register_demos"))
def omni_demo_simulate(channel_key: str, adapter_name: str, public_url: str) -> list[Any] | None:
    """Deprecated: :attr:`Demo.simulate <omnichannel_sdk.Demo.simulate>`. Signed sample
    requests to post to a demo channel (``omnichannel simulate``).

    Returns :class:`~omnichannel_sdk.WebhookRequest` objects signed for
    ``{public_url}/webhooks/{channel_key}``, or ``None`` when the adapter is not yours; not
    ``firstresult``: every plugin's requests are posted.

    :param channel_key: the demo channel.
    :param adapter_name: its adapter.
    :param public_url: the demo's public URL.
    """


@hookspec(firstresult=True, warn_on_impl=DeprecationWarning(
    "omni_demo_vendor is deprecated: register a Demo in omni_register_demos"))
def omni_demo_vendor(adapter_name: str, hub: Hub) -> Any:
    """Deprecated: :attr:`Demo.vendor <omnichannel_sdk.Demo.vendor>`. An ASGI app that plays
    the vendor API of ``adapter_name`` in ``omnichannel demo``.

    The demo mounts it at ``/demo/vendor/{adapter_name}``; demo channels point their
    ``api_base`` there. It should answer sends as the vendor does and may report delivery
    back through ``hub.apply_status`` or signed status callbacks. Returns the ASGI app, or
    ``None`` when the adapter is not yours.

    Stops at first non-None result.

    :param adapter_name: the adapter whose vendor to play.
    :param hub: the demo hub.
    """

"""Changes to stored messages and contacts, each published as the event that says so (merges
of contacts: :mod:`._contacts`)."""

from __future__ import annotations

from collections.abc import Callable

from ._events import ContactUpdated, MessageUpdated
from ._models import Address, Contact, Message
from ._publisher import Publisher
from ._store import SqlStore

__all__ = ["Mutations"]


class Mutations:
    """Atomic changes of messages and contacts (the hub's mutation API)."""

    def __init__(self, store: SqlStore, publisher: Publisher) -> None:
        self.store = store
        self.publisher = publisher

    async def update_message(self, message: Message) -> None:
        """Store a changed message (same id) and publish ``message.updated``."""
        await self.store.update_message(message)
        self.publisher.publish(MessageUpdated(message=message))

    async def modify_message(
        self, message_id: str, change: Callable[[Message], Message | None]
    ) -> Message | None:
        """Change a stored message in the store's transaction; publish if it changed."""
        before: list[Message] = []

        def tracked(current: Message) -> Message | None:
            before.append(current)
            return change(current)

        result = await self.store.modify_message(message_id, tracked)
        if result is not None and before and result != before[-1]:
            self.publisher.publish(MessageUpdated(message=result))
        return result

    async def modify_contact(
        self, contact: str | Address, change: Callable[[Contact], Contact | None], *,
        reason: str = "profile",
    ) -> Contact | None:
        """Change a contact in the store's transaction; publish ``contact.updated`` with
        ``change=reason`` if it changed."""
        before: list[Contact] = []

        def tracked(current: Contact) -> Contact | None:
            before.append(current)
            return change(current)

        result = await self.store.modify_contact(contact, tracked)
        if result is not None and before and result != before[-1]:
            self.publisher.publish(ContactUpdated(contact=result, change=reason))
        return result

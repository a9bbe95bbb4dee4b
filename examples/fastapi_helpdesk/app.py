"""A helpdesk in FastAPI with omnichannel_sdk: webhooks mounted, an API to list and reply.

Run: pip install fastapi && uvicorn examples.fastapi_helpdesk.app:app
(reads omnichannel.toml from the working directory, or OMNICHANNEL_CONFIG)
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

from omnichannel_sdk import Author, Hub

hub = Hub.from_config(os.environ.get("OMNICHANNEL_CONFIG", "omnichannel.toml"))


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with hub:
        yield


app = FastAPI(lifespan=lifespan)
app.mount("/hooks", hub.asgi(lifespan=False))  # vendors call https://…/hooks/webhooks/<key>


@app.get("/conversations")
async def conversations() -> list[dict]:
    return [c.model_dump(mode="json") for c in await hub.store.list_conversations(limit=50)]


@app.post("/conversations/{conversation_id}/reply")
async def reply(conversation_id: str, text: str, agent: str) -> dict:
    message = await hub.send(conversation_id, text=text, author=Author(kind="human", name=agent))
    return message.model_dump(mode="json")

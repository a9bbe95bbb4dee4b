"""A helpdesk in FastAPI with omnichannel_sdk: webhooks mounted, an API to list and reply.

Run from the repository root (see README.md beside this file)::

    pip install omnichannel-sdk fastapi uvicorn
    uvicorn examples.fastapi_helpdesk.app:app

It reads ``omnichannel.toml`` beside this file (or the file ``OMNICHANNEL_CONFIG`` names) and
keeps its SQLite database and media in this folder (or ``HELPDESK_DATA``).
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from omnichannel_sdk import Author, Hub

HERE = Path(__file__).resolve().parent
os.environ.setdefault("HELPDESK_DATA", str(HERE))
hub = Hub.from_config(os.environ.get("OMNICHANNEL_CONFIG", str(HERE / "omnichannel.toml")))


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

"""Fixtures of the WhatsApp plugin's tests."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMNICHANNEL_TRANSCRIBER", "off")  # hubs stay model-free; tests bring an engine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

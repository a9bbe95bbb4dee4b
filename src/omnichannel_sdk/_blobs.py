"""Blob stores keep media bytes (vendor media URLs expire). Content-addressed by SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from ._errors import ConfigurationError, MediaError, NotFoundError
from ._redact import redact_url

__all__ = ["BlobInfo", "BlobStore", "FileBlobStore", "MemoryBlobStore", "blobs_from_url",
           "data_locations"]


@dataclass(frozen=True)
class BlobInfo:
    """Where stored bytes live and what they are."""

    key: str
    sha256: str
    size: int


class BlobStore(Protocol):
    """Where media bytes are kept."""

    async def put_stream(self, chunks: AsyncIterator[bytes], *, max_bytes: int) -> BlobInfo:
        """Store a stream of bytes; raise :class:`MediaError` past ``max_bytes``."""

    async def put(self, data: bytes) -> BlobInfo:
        """Store bytes."""

    async def get(self, key: str) -> bytes:
        """The bytes of ``key``; :class:`NotFoundError` when absent."""


class MemoryBlobStore:
    """Blobs in process memory (tests)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put_stream(self, chunks: AsyncIterator[bytes], *, max_bytes: int) -> BlobInfo:
        """Store a stream of bytes; raise :class:`MediaError` past ``max_bytes``."""
        buf = bytearray()
        async for chunk in chunks:
            buf += chunk
            if len(buf) > max_bytes:
                raise MediaError(f"media larger than {max_bytes} bytes")
        return await self.put(bytes(buf))

    async def put(self, data: bytes) -> BlobInfo:
        """Store bytes."""
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return BlobInfo(key=digest, sha256=digest, size=len(data))

    async def get(self, key: str) -> bytes:
        """The bytes of ``key``."""
        try:
            return self.blobs[key]
        except KeyError:
            raise NotFoundError(f"no blob {key!r}") from None


class FileBlobStore:
    """Blobs as files under a folder, sharded by hash (``ab/cd/abcd…``), written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise NotFoundError(f"no blob {key!r}")
        return self.root / key[:2] / key[2:4] / key

    async def put_stream(self, chunks: AsyncIterator[bytes], *, max_bytes: int) -> BlobInfo:
        """Store a stream of bytes; raise :class:`MediaError` past ``max_bytes``."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaError(f"media larger than {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            key = digest.hexdigest()
            final = self._path(key)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return BlobInfo(key=key, sha256=key, size=size)

    async def put(self, data: bytes) -> BlobInfo:
        """Store bytes."""

        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(one(), max_bytes=len(data) + 1)

    async def get(self, key: str) -> bytes:
        """The bytes of ``key``."""
        path = self._path(key)
        try:
            return await anyio.Path(path).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no blob {key!r}") from None


def blobs_from_url(url: str) -> BlobStore:
    """``file://relative/dir``, ``file:///abs/dir`` or ``memory://``."""
    if url.startswith("memory:"):
        return MemoryBlobStore()
    if url.startswith("file://"):
        return FileBlobStore(url[len("file://"):])
    raise ConfigurationError(f"unsupported blob store URL {url!r}", field="blobs")


def data_locations(store_url: str, blobs: BlobStore) -> tuple[str, str]:
    """Where customer data lands, for the start-up log: the database (a resolved path, or the
    DSN without its password) and the media (a directory, or the blob store's kind)."""
    if store_url.startswith("sqlite:///"):
        path = store_url[len("sqlite:///"):] or ":memory:"
        where = path if path == ":memory:" else str(Path(path).resolve())
    else:
        where = redact_url(store_url)  # the DSN may carry a password
    media = str(blobs.root.resolve()) if isinstance(blobs, FileBlobStore) else type(blobs).__name__
    return where, media

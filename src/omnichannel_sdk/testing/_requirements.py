"""Helpers for plugin authors' tests: required tools and services, free ports."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
from types import ModuleType

import pytest

__all__ = ["free_port", "require", "require_binary", "require_package", "require_service"]


def require(what: str, available: bool, *, hint: str = "") -> None:
    """Skip the test when ``what`` is missing on a developer's machine; fail it under
    ``CI=true``, where the project's own files must have installed or started it."""
    if available:
        return
    message = f"{what} is not available" + (f" ({hint})" if hint else "")
    if os.environ.get("CI") == "true":
        pytest.fail(message + " — CI=true: it is required")
    pytest.skip(message)


def require_binary(name: str, *, hint: str = "") -> str:
    """The path of program ``name`` (see :func:`require`)."""
    path = shutil.which(name)
    require(name, path is not None, hint=hint)
    return str(path)


def require_package(name: str, *, hint: str = "") -> ModuleType:
    """Import a test-only package (see :func:`require`)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        require(f"Python package {name}", False, hint=hint or "install the test extras")
        raise  # unreachable: require() skips or fails


def require_service(name: str, port: int, host: str = "127.0.0.1") -> None:
    """A TCP service such as PostgreSQL or NATS on ``host:port`` (see :func:`require`)."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        up = sock.connect_ex((host, port)) == 0
    require(f"{name} on {host}:{port}", up)


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

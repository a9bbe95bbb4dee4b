"""Fixtures of the email plugin's tests: samples, a real aiosmtpd sink, a real Dovecot IMAP."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from omnichannel_sdk.testing import free_port, require

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def need(what: str, ok: bool) -> None:
    """Skip without ``what`` on a laptop; fail under CI=true."""
    require(what, ok, hint="scripts/system-deps.d/email.list")


class Dovecot:
    """A throwaway Dovecot IMAP server on loopback with one passwd-file user."""

    user = "agent@shop.example"
    password = "imap-test-password"

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        nobody = pwd.getpwnam("nobody")
        home = self.root / "home"
        return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
info_log_path = {self.root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{home}/%n/Maildir
first_valid_uid = 1
mail_uid = {nobody.pw_uid}
mail_gid = {nobody.pw_gid}
default_login_user = {_login_user()}
default_internal_user = {_internal_user()}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/passwd
}}
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={home}/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""

    def start(self) -> None:
        nobody = pwd.getpwnam("nobody")
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chown(self.root / "home", nobody.pw_uid, nobody.pw_gid)
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        (self.root / "dovecot.conf").write_text(self.config())
        self.process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
            if self.process.stderr:
                self.process.stderr.close()


def _login_user() -> str:
    for name in ("dovenull", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return "nobody"


def _internal_user() -> str:
    try:
        pwd.getpwnam("dovecot")
        return "dovecot"
    except KeyError:
        return "nobody"


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A running Dovecot (needs the ``dovecot-imapd`` package and root to start it)."""
    need("dovecot (Debian package dovecot-imapd)", shutil.which("dovecot") is not None)
    need("root (dovecot drops privileges)", os.geteuid() == 0)
    # not under pytest's 0700 temp root: dovecot's unprivileged auth process reads the passwd
    root = Path(tempfile.mkdtemp(prefix="omni-dovecot-"))
    os.chmod(root, 0o755)
    server = Dovecot(root, free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sample() -> Any:
    """Load a recorded sample's bytes by file name."""
    return lambda name: (SAMPLES / name).read_bytes()

"""Fixtures of the email plugin's tests: samples, a real aiosmtpd sink, a real Dovecot IMAP."""

from __future__ import annotations

import contextlib
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

from omnichannel_sdk.testing import LocalCA, free_port, require

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def need(what: str, ok: bool) -> None:
    """Skip without ``what`` on a laptop; fail under CI=true."""
    require(what, ok, hint="scripts/system-deps.d/email.list")


class Dovecot:
    """A throwaway Dovecot IMAP server on loopback with one passwd-file user; with ``tls``
    (certificate and key PEM paths) it requires TLS: STARTTLS on ``port``, implicit TLS on
    ``tls_port``, and no login in clear."""

    user = "agent@shop.example"
    password = "imap-test-password"

    def __init__(self, root: Path, port: int, tls: tuple[Path, Path] | None = None) -> None:
        self.root = root
        self.port = port
        self.tls = tls
        self.tls_port = free_port() if tls else 0
        self.process: subprocess.Popen[bytes] | None = None

    def ssl_config(self) -> str:
        if self.tls is None:
            return "ssl = no\ndisable_plaintext_auth = no"
        cert, key = self.tls
        return (f"ssl = required\nssl_cert = <{cert}\nssl_key = <{key}\n"
                "disable_plaintext_auth = yes")

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
{self.ssl_config()}
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
    address = 127.0.0.1
    port = {self.tls_port}
    {"ssl = yes" if self.tls else ""}
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


@contextlib.contextmanager
def running_dovecot(tls: tuple[Path, Path] | None = None) -> Iterator[Dovecot]:
    """Start a Dovecot in a fresh directory, stop and remove it afterwards."""
    need("dovecot (Debian package dovecot-imapd)", shutil.which("dovecot") is not None)
    need("root (dovecot drops privileges)", os.geteuid() == 0)
    # not under pytest's 0700 temp root: dovecot's unprivileged auth process reads the passwd
    root = Path(tempfile.mkdtemp(prefix="omni-dovecot-"))
    os.chmod(root, 0o755)
    server = Dovecot(root, free_port(), tls)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A running Dovecot (needs the ``dovecot-imapd`` package and root to start it)."""
    with running_dovecot() as server:
        yield server


@pytest.fixture
def tls_dovecot(tmp_path: Path) -> Iterator[tuple[Dovecot, LocalCA]]:
    """A Dovecot that requires TLS, with the CA that signed its certificate."""
    ca = LocalCA(tmp_path / "pki")
    with running_dovecot((ca.cert_file, ca.key_file)) as server:
        yield server, ca


@pytest.fixture
def sample() -> Any:
    """Load a recorded sample's bytes by file name."""
    return lambda name: (SAMPLES / name).read_bytes()


@pytest.fixture
def make_ca() -> Any:
    """Make another :class:`LocalCA`: ``make_ca(directory, name)``."""
    return LocalCA

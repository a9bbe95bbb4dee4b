"""WeChat's message signatures and safe-mode encryption (``WXBizMsgCrypt``), on ``cryptography``.

Facts from WeChat's "message encryption" documentation:

* ``signature`` = hex SHA-1 of the lexicographically sorted ``token``, ``timestamp`` and
  ``nonce`` joined without separator; ``msg_signature`` adds the ``Encrypt`` value to the sort.
* The ``EncodingAESKey`` is 43 characters of base64 without its ``=``: decoded it gives the
  32-byte AES-256 key; the CBC IV is the key's first 16 bytes.
* The plaintext is 16 random bytes, the XML's length as a 4-byte big-endian integer, the XML,
  then the AppID; it is padded PKCS#7-style to a multiple of **32** bytes (not AES's 16).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
import threading

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from omnichannel_sdk import constant_time_equals

__all__ = ["WeChatCrypto", "decode_aes_key", "sha1_signature"]

_BLOCK = 32
_MAX_CIPHERTEXT = 4 * 1024 * 1024


def sha1_signature(*values: str) -> str:
    """Hex SHA-1 of ``values`` sorted and concatenated: WeChat's ``signature`` /
    ``msg_signature``."""
    return hashlib.sha1("".join(sorted(values)).encode("utf-8")).hexdigest()  # noqa: S324 - vendor protocol


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character ``EncodingAESKey``; :class:`ValueError` if it is
    not one (the message never contains the key)."""
    if len(encoding_aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("EncodingAESKey is not base64") from None
    if len(key) != 32:
        raise ValueError("EncodingAESKey does not decode to 32 bytes")
    return key


class CryptoError(ValueError):
    """A ciphertext that does not decrypt to a well-formed WeChat plaintext."""


class WeChatCrypto:
    """Encrypts and decrypts safe-mode payloads for one app (``app_id``)."""

    __slots__ = ("_algorithm", "_app_id", "_ecb", "_iv", "_lock")

    def __init__(self, key: bytes, app_id: str) -> None:
        self._algorithm = algorithms.AES(key)
        self._iv = key[:16]
        self._app_id = app_id.encode("utf-8")
        # CBC decryption is ECB decryption XOR the previous ciphertext block; an ECB context
        # keeps no state between whole blocks, so one context serves every message
        self._ecb = Cipher(self._algorithm, modes.ECB()).decryptor()  # noqa: S305 - CBC, see above
        self._lock = threading.Lock()

    def decrypt(self, encrypted: str | bytes) -> bytes:
        """The XML inside a base64 ``Encrypt`` value; :class:`CryptoError` when the ciphertext,
        padding, length or AppID is wrong."""
        if len(encrypted) > _MAX_CIPHERTEXT:
            raise CryptoError("ciphertext too large")
        try:
            data = binascii.a2b_base64(encrypted)
        except (binascii.Error, ValueError):
            raise CryptoError("Encrypt is not base64") from None
        size = len(data)
        if not size or size % 16:
            raise CryptoError("ciphertext is not a whole number of AES blocks")
        with self._lock:
            blocks = self._ecb.update(data)
        plain = (int.from_bytes(blocks, "big") ^ int.from_bytes(self._iv + data[:-16], "big")) \
            .to_bytes(size, "big")
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or pad > size or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CryptoError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        if length > len(plain) - 20:
            raise CryptoError("bad message length")
        if not constant_time_equals(plain[20 + length:], self._app_id):
            raise CryptoError("the message is for another AppID")
        return plain[20:20 + length]

    def encrypt(self, xml: bytes, nonce16: bytes | None = None) -> str:
        """The base64 ``Encrypt`` value carrying ``xml`` (``nonce16``: the 16 leading random
        bytes, for tests)."""
        body = (nonce16 if nonce16 is not None else os.urandom(16)) + struct.pack(">I", len(xml)) \
            + xml + self._app_id
        pad = _BLOCK - len(body) % _BLOCK
        body += bytes([pad]) * pad
        encryptor = Cipher(self._algorithm, modes.CBC(self._iv)).encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode("ascii")

"""Mail written for every failure class of issue 14, with the parse a helpdesk expects.

Each case is ``(name, raw bytes, expected)``; ``expected`` holds ``sender`` (the address the
message must be stored under, ``None``: kept under the unknown-sender address and flagged),
``subject``, ``text`` (the body text, whitespace-insensitive) and ``attachments`` (each with its
``sha256`` and, where it matters, ``filename``). ``bench/email_corpus.py`` scores the same cases
against the standard library and mail-parser; ``test_corpus.py`` asserts them for us.
"""

# ruff: noqa: RUF001 - full-width CJK punctuation is what mail clients write

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tnef(files: list[tuple[str, bytes]]) -> bytes:
    """A minimal Outlook TNEF (winmail.dat) with the given files (the attributes tnefparse
    reads: attAttachRendData starts a file, attAttachTitle names it, attAttachData holds it)."""
    def attr(level: int, ident: int, data: bytes) -> bytes:
        return struct.pack("<BII", level, ident, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)

    out = struct.pack("<IH", 0x223E9F78, 1) + attr(1, 0x00089006, struct.pack("<I", 0x00010000))
    for name, data in files:
        out += attr(2, 0x00069002, b"\x00" * 14) + attr(2, 0x00018010, name.encode() + b"\x00")
        out += attr(2, 0x0006800F, data)
    return out


def _mail(headers: str, body: bytes | str = "Hello\n", charset_body: str = "utf-8") -> bytes:
    data = body if isinstance(body, bytes) else body.encode(charset_body)
    return headers.strip("\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n" + data


PDF = b"%PDF-1.4\n" + bytes(range(256)) * 4
TNEF_FILE = b"quarterly numbers\n"
NEC = "①②③ 株式会社"  # NEC row 13 and JIS X 0208: ISO-2022-JP as Outlook Japan writes it


def _jis_nec() -> bytes:
    # the JIS pairs of NEC's row 13 (①②③) and of 株式会社, as an ESC $ B run
    return (b"\x1b$B-!-\"-#\x1b(B \x1b$B3t<02q<R\x1b(B")


CASES: list[tuple[str, bytes, dict[str, Any]]] = [
    ("from-junk-brackets", _mail("""
From: <power quadrant system@example.com>
To: support@shop.example
Subject: junk brackets
Message-ID: <c1@example.com>
"""), {"sender": "system@example.com", "subject": "junk brackets", "text": "Hello"}),
    ("from-quoted-local-with-reply-to", _mail("""
From: "Millions Lottery Claims"@example.com>
Reply-To: claims@lottery.example
To: support@shop.example
Subject: you won
Message-ID: <c2@example.com>
"""), {"sender": "claims@lottery.example", "subject": "you won", "text": "Hello"}),
    ("from-name-without-brackets", _mail("""
From: Test test@example.com
To: support@shop.example
Subject: plain
"""), {"sender": "test@example.com", "subject": "plain", "text": "Hello"}),
    ("no-from-sender-header", _mail("""
Sender: Office <office@example.org>
To: support@shop.example
Subject: only a sender
"""), {"sender": "office@example.org", "subject": "only a sender", "text": "Hello"}),
    ("no-from-return-path", _mail("""
Return-Path: <bounce-123@lists.example.net>
To: support@shop.example
Subject: only a return path
"""), {"sender": "bounce-123@lists.example.net", "subject": "only a return path", "text": "Hello"}),
    ("second-from-is-the-good-one", _mail("""
From: undisclosed
From: Real Person <real@example.org>
To: support@shop.example
Subject: two froms
"""), {"sender": "real@example.org", "subject": "two froms", "text": "Hello"}),
    ("no-sender-at-all", _mail("""
From: nobody at all
To: support@shop.example
Subject: who am I
"""), {"sender": None, "subject": "who am I", "text": "Hello"}),
    ("rfc2047-spaces-inside-words", _mail("""
From: =?UTF-8?Q? Personal=C3=A4nderung?= <hr@example.de>
To: support@shop.example
Subject: =?us-ascii?Q?ABC / 123?=
"""), {"sender": "hr@example.de", "subject": "ABC / 123", "text": "Hello"}),
    ("rfc2047-utf7-word", _mail("""
From: a@example.org
To: support@shop.example
Subject: =?utf-7?Q?Gr+APwA3w-e?=
"""), {"sender": "a@example.org", "subject": "Grüße", "text": "Hello"}),
    ("rfc2047-comma-in-encoded-name", _mail("""
From: =?iso-8859-1?Q?B=FCrling,_Andreas?= <andreas@example.de>
To: =?iso-8859-1?Q?M=FCller,_Eva?= <eva@example.de>, support@shop.example
Subject: comma
"""), {"sender": "andreas@example.de", "subject": "comma", "text": "Hello"}),
    ("q-encoded-name-hides-an-address", _mail("""
From: =?utf-8?Q?Alice,_mallory@attacker.example?= <alice@example.org>
To: support@shop.example
Subject: spoof
"""), {"sender": "alice@example.org", "subject": "spoof", "text": "Hello"}),
    ("q-encoded-name-with-colon", _mail("""
From: =?utf-8?Q?Support:_x@attacker.example=2C?= <bob@example.org>
To: support@shop.example
Subject: colon
"""), {"sender": "bob@example.org", "subject": "colon", "text": "Hello"}),
    ("raw-gb2312-subject-and-filename",
     b"From: zhang@example.cn\r\nTo: support@shop.example\r\nSubject: " + "关于订单的问题".encode("gbk")
     + b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
     b"Content-Type: text/plain; charset=gb2312\r\n\r\n" + "您好，包裹还没有到。".encode("gbk")
     + b"\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\""
     + "发票.pdf".encode("gbk") + b"\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     + base64.encodebytes(PDF) + b"--b--\r\n",
     {"sender": "zhang@example.cn", "subject": "关于订单的问题", "text": "您好，包裹还没有到。",
      "attachments": [{"sha256": sha(PDF), "filename": "发票.pdf"}]}),
    ("shift-jis-labelled-iso-2022-jp",
     b"From: tanaka@example.jp\r\nTo: support@shop.example\r\nSubject: order\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: text/plain; charset=iso-2022-jp\r\n\r\n" + "ご注文の商品がまだ届いていません。".encode("cp932"),
     {"sender": "tanaka@example.jp", "subject": "order", "text": "ご注文の商品がまだ届いていません。"}),
    ("unlabelled-gbk-body",
     b"From: li@example.cn\r\nTo: support@shop.example\r\nSubject: no label\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
     + "我的订单还没有到，请帮我查一下物流信息，谢谢。".encode("gbk"),
     {"sender": "li@example.cn", "subject": "no label", "text": "我的订单还没有到，请帮我查一下物流信息，谢谢。"}),
    ("iso-2022-jp-nec-extensions",
     b"From: sato@example.jp\r\nTo: support@shop.example\r\nSubject: =?ISO-2022-JP?B?"
     + base64.b64encode(_jis_nec()) + b"?=\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
     + _jis_nec() + b"\r\n",
     {"sender": "sato@example.jp", "subject": NEC, "text": NEC}),
    ("html-only-part-in-mixed", _mail("""
From: c@example.org
To: support@shop.example
Subject: html in mixed
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b
""", "--b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--b\r\nContent-Type: text/html\r\n\r\n"
     "<p>The order <b>1234</b> never came.</p>\r\n--b--\r\n"),
     {"sender": "c@example.org", "subject": "html in mixed",
      "text": "See below.\n\nThe order 1234 never came."}),
    ("forward-banner-before-headers",
     b"---- Original email message ----\r\nFrom: d@example.org\r\nTo: support@shop.example\r\n"
     b"Subject: forwarded by hand\r\n\r\nplease help\r\n",
     {"sender": "d@example.org", "subject": "forwarded by hand", "text": "please help"}),
    ("unindented-continuation-line",
     b"From: e@example.org\r\nSubject: a subject that was\r\nfolded badly\r\nTo: support@shop.example\r\n"
     b"Message-ID: <c19@example.org>\r\n\r\nbody here\r\n",
     {"sender": "e@example.org", "subject": "a subject that was folded badly", "text": "body here"}),
    ("inline-text-file-kept-as-file", _mail("""
From: f@example.org
To: support@shop.example
Subject: log attached
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b
""", "--b\r\nContent-Type: text/plain\r\n\r\nThe log:\r\n--b\r\nContent-Type: text/plain; name=app.log\r\n"
     "Content-Disposition: inline; filename=app.log\r\n\r\nERROR boom\r\n--b--\r\n"),
     {"sender": "f@example.org", "subject": "log attached", "text": "The log:",
      "attachments": [{"sha256": sha(b"ERROR boom"), "filename": "app.log"}]}),
    ("message-partial-and-external-body", _mail("""
From: g@example.org
To: support@shop.example
Subject: pieces
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b
""", "--b\r\nContent-Type: text/plain\r\n\r\nsee parts\r\n--b\r\nContent-Type: message/partial; id=\"abc@x\"; number=2; total=3\r\n\r\n"
     "Subject: inner\r\n\r\npart two\r\n--b\r\nContent-Type: message/external-body; access-type=URL; URL=\"https://files.example/x.zip\"\r\n\r\n"
     "Content-Type: application/zip\r\n\r\n--b--\r\n"),
     {"sender": "g@example.org", "subject": "pieces", "text": "see parts",
      "attachments": [{}, {}]}),
    ("tnef-winmail-dat", _mail("""
From: h@example.org
To: support@shop.example
Subject: outlook rich text
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b
""", b"--b\r\nContent-Type: text/plain\r\n\r\nnumbers attached\r\n--b\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\n"
     b"Content-Disposition: attachment; filename=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\n"
     + base64.encodebytes(_tnef([("numbers.txt", TNEF_FILE)])) + b"--b--\r\n"),
     {"sender": "h@example.org", "subject": "outlook rich text", "text": "numbers attached",
      "attachments": [{"sha256": sha(TNEF_FILE), "filename": "numbers.txt"}]}),
    ("path-in-attachment-name", _mail("""
From: i@example.org
To: support@shop.example
Subject: sneaky name
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=b
""", "--b\r\nContent-Type: text/plain\r\n\r\nfile\r\n--b\r\nContent-Type: application/octet-stream\r\n"
     "Content-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\nroot:x\r\n--b--\r\n"),
     {"sender": "i@example.org", "subject": "sneaky name", "text": "file",
      "attachments": [{"sha256": sha(b"root:x"), "filename": "_.._etc_passwd",
                       "original": "../../etc/passwd"}]}),
    ("long-subject", _mail("From: j@example.org\nTo: support@shop.example\nSubject: "
                           + " ".join(["word"] * 400)),
     {"sender": "j@example.org", "subject": " ".join(["word"] * 400), "text": "Hello"}),
    ("comment-in-display-name", _mail("""
From: "MAILER-DAEMON" (Mail Delivery System) <mailer-daemon@mx.example.net>
To: support@shop.example
Subject: notice
"""), {"sender": "mailer-daemon@mx.example.net", "subject": "notice", "text": "Hello",
       "display_name": "MAILER-DAEMON (Mail Delivery System)"}),
    ("raw-latin1-headers",
     b"From: J\xfcrgen <juergen@example.de>\r\nTo: support@shop.example\r\nSubject: Gr\xfc\xdfe\r\n"
     b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nSch\xf6ne Gr\xfc\xdfe\r\n",
     {"sender": "juergen@example.de", "subject": "Grüße", "text": "Schöne Grüße"}),
    ("utf7-body",
     b"From: k@example.org\r\nTo: support@shop.example\r\nSubject: utf7\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: text/plain; charset=utf-7\r\n\r\nDie Hasen und die Fr+APY-sche\r\n",
     {"sender": "k@example.org", "subject": "utf7", "text": "Die Hasen und die Frösche"}),
]

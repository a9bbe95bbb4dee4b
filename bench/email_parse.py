"""Email parse throughput: omnichannel-email against the standard-library floor and mail-parser.

Run: ``.venv/bin/python bench/email.py`` (needs the ``mail-parser`` bench peer installed).
One run measures, on the same ~21 KB multipart message (plain + HTML alternative with a quoted
reply, an inline image, a PDF attachment, GBK and UTF-8 encoded words):

- ``stdlib compat32 + walk``: the floor — parse and decode every part, nothing else;
- ``stdlib default + get_body``: the documented modern API, headers decoded by policy objects;
- ``mail-parser``: the peer library (``mailparser.parse_from_bytes``);
- ``ours: parse_mime``: our MIME reader (charset supersets, tolerant headers, attachments);
- ``ours: adapter parse``: the whole inbound step — MIME, HTML sanitizing, reply splitting,
  auto-reply detection, blobs, the normalized message.
"""

from __future__ import annotations

import sys
from pathlib import Path

# this file is called email.py: keep it from shadowing the standard library's email package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import email  # noqa: E402
import email.policy  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from email.message import EmailMessage  # noqa: E402

import httpx  # noqa: E402
from omnichannel_email import EmailSmtpAdapter, parse_mime  # noqa: E402

from omnichannel_sdk import AdapterContext, MemoryBlobStore  # noqa: E402
from omnichannel_sdk.testing._contract import MemoryKV  # noqa: E402


def sample() -> bytes:
    """A realistic reply of about 21 KB."""
    msg = EmailMessage()
    msg["From"] = "=?gb2312?B?1cXI/Q==?= <zhang@example.cn>"
    msg["To"] = "Shop Support <support+conv_01jd3x0000000000000000abcd@shop.example>"
    msg["Cc"] = "Jane Doe <jane@example.org>, ops@example.org"
    msg["Subject"] = "Re: =?utf-8?B?6K6i5Y2V6Zeu6aKY?= order 1234"
    msg["Message-ID"] = "<CAJ0-bench@mail.example.cn>"
    msg["In-Reply-To"] = "<msg_01JD3X0000000000000000ABCD@shop.example>"
    msg["References"] = " ".join(f"<ref{i}@example.cn>" for i in range(8))
    msg["Date"] = "Mon, 1 Jan 2024 10:00:00 +0800"
    history = "\n".join(f"> line {i} of the earlier conversation about the order" for i in range(60))
    text = ("Hello,\n\nthe parcel still has not arrived. Tracking says it left the depot.\n\n"
            "Best regards\nZhang\n\nOn Mon, Jan 1, 2024 at 9:00 AM Shop Support "
            "<support@shop.example> wrote:\n" + history)
    msg.set_content(text)
    html = ("<div>Hello,</div><div>the parcel still has <b>not</b> arrived.</div>"
            '<img src="cid:logo@cn"><div class="gmail_quote">On Mon Shop Support wrote:'
            "<blockquote>" + "".join(f"<p>line {i} of the earlier conversation</p>"
                                     for i in range(60)) + "</blockquote></div>")
    msg.add_alternative(html, subtype="html")
    msg.get_payload()[1].add_related(os.urandom(4000), "image", "png", cid="<logo@cn>")
    msg.add_attachment(b"%PDF-1.4\n" + os.urandom(6000), maintype="application", subtype="pdf",
                       filename="发票.pdf")
    return msg.as_bytes()


def floor(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if not part.is_multipart():
            part.get_payload(decode=True)


def stdlib_default(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for name in ("From", "To", "Cc", "Subject", "Message-ID", "References", "Date"):
        str(msg[name])
    body = msg.get_body(("plain", "html"))
    if body is not None:
        body.get_content()
    for att in msg.iter_attachments():
        att.get_content()


def measure(cases: list[tuple[str, Callable[[bytes], object]]], raw: bytes,
            rounds: int = 9, batch: int = 40) -> dict[str, list[float]]:
    """CPU seconds per call of every case, one entry per round. Rounds are interleaved (one
    batch of each case in turn) so that load from other processes on a shared machine hits
    every case alike; ``process_time`` does not count time spent descheduled."""
    for _, fn in cases:
        fn(raw)
    samples: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(rounds):
        for name, fn in cases:
            start = time.process_time()
            for _ in range(batch):
                fn(raw)
            samples[name].append((time.process_time() - start) / batch)
    return samples


def main() -> None:
    raw = sample()
    adapter = EmailSmtpAdapter(
        EmailSmtpAdapter.Settings.model_validate({"from_address": "support@shop.example"}),
        AdapterContext(key="bench", public_url="https://x.test", http=httpx.AsyncClient(),
                       kv=MemoryKV(), blobs=MemoryBlobStore()))
    cases: list[tuple[str, Callable[[bytes], object]]] = [
        ("stdlib compat32 + walk (floor)", floor),
        ("stdlib default + get_body", stdlib_default),
    ]
    try:
        import mailparser

        cases.append(("mail-parser", mailparser.parse_from_bytes))
    except ImportError:
        print("mail-parser is not installed: pip install mail-parser (bench peer)")
    cases += [("ours: parse_mime", parse_mime), ("ours: adapter parse", adapter.parse_raw)]
    print(f"message: {len(raw) / 1024:.1f} KB, {os.cpu_count()} CPUs")
    samples = measure(cases, raw)
    ours = samples["ours: parse_mime"]
    print(f"{len(ours)} interleaved rounds, CPU time per message; a ratio above 1 is slower "
          "than parse_mime")
    print(f"{'implementation':34} {'µs/op':>9} {'ops/s':>9} {'vs parse_mime (min / median / max)':>36}")
    for name, times in samples.items():
        ratios = sorted(t / o for t, o in zip(times, ours, strict=True))
        spread = f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f}"
        median = statistics.median(times)
        print(f"{name:34} {median * 1e6:9.0f} {1 / median:9.0f} {spread:>36}")


if __name__ == "__main__":
    main()

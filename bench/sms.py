# ruff: noqa: E402 - the path fix below must run before the imports
"""Twilio webhook verification (and parsing): omnichannel-sms vs the ``twilio`` package vs a floor.

Run: ``.venv/bin/python bench/sms.py``. Needs the bench peer ``twilio`` installed in the venv.
Each contender starts from the raw request (URL, form body bytes, signature header) as a web
server hands it over, so everyone pays for reading the form:

- ``twilio RequestValidator``: ``parse_qsl`` into a dict, then ``RequestValidator.validate``
  (which also tries the URL with and without the port).
- ``omnichannel verify``: ``WebhookRequest`` + ``TwilioSmsAdapter.verify``.
- ``omnichannel verify+parse``: the same plus ``parse`` into a normalized ``InboundMessage``
  (E.164 numbers, keyword detection, metadata) — the work the gateway really does.
- ``floor``: hand-rolled ``parse_qsl`` + sorted concatenation + HMAC-SHA1 + base64 + compare.

Medians of several rounds; compare ratios within one run (shared machines are noisy).
"""

from __future__ import annotations

import os
import sys

# bench/ holds scripts named like stdlib modules (email.py): keep this folder off the path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import base64
import hashlib
import hmac
import statistics
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

import httpx
from omnichannel_sms import TwilioSmsAdapter, twilio_signature

from omnichannel_sdk import AdapterContext, WebhookRequest
from omnichannel_sdk.testing._contract import MemoryKV

TOKEN = "0123456789abcdef0123456789abcdef"
URL = "https://support.example.com/hooks/webhooks/support-sms"
FORM = [
    ("ToCountry", "US"), ("ToState", "CA"), ("SmsMessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
    ("NumMedia", "0"), ("ToCity", "SAN FRANCISCO"), ("FromZip", "94105"),
    ("SmsSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"), ("FromState", "CA"), ("SmsStatus", "received"),
    ("FromCity", "SAN FRANCISCO"), ("Body", "Hi! My order #1234 hasn't arrived yet, can you check? 😟"),
    ("FromCountry", "US"), ("To", "+15005550006"), ("ToZip", "94105"), ("NumSegments", "1"),
    ("MessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
    ("AccountSid", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"), ("From", "+14155550100"),
    ("MessagingServiceSid", "MGXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"), ("ApiVersion", "2010-04-01"),
]
BODY = urlencode(FORM).encode()
SIGNATURE = twilio_signature(TOKEN, URL, FORM)
HEADERS = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": SIGNATURE,
           "host": "support.example.com", "user-agent": "TwilioProxy/1.1"}


def _adapter() -> TwilioSmsAdapter:
    settings = TwilioSmsAdapter.Settings.model_validate(
        {"account_sid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "auth_token": TOKEN,
         "from_number": "+15005550006"})
    return TwilioSmsAdapter(settings, AdapterContext(key="support-sms", public_url=URL,
                                                     http=httpx.AsyncClient(), kv=MemoryKV()))


def contenders() -> dict[str, Callable[[], object]]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    adapter = _adapter()
    key = TOKEN.encode()

    def peer() -> object:
        params = dict(parse_qsl(BODY.decode(), keep_blank_values=True))
        if not validator.validate(URL, params, SIGNATURE):
            raise AssertionError("twilio refused")
        return params

    def ours_verify() -> object:
        request = WebhookRequest("POST", URL, HEADERS, BODY)
        adapter.verify(request)
        return request

    def ours_full() -> object:
        request = WebhookRequest("POST", URL, HEADERS, BODY)
        adapter.verify(request)
        return adapter.parse(request)

    def floor() -> object:
        pairs = parse_qsl(BODY.decode(), keep_blank_values=True)
        data = URL + "".join(k + v for k, v in sorted(pairs))
        digest = base64.b64encode(hmac.new(key, data.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(digest, SIGNATURE):
            raise AssertionError("floor refused")
        return pairs

    return {"twilio RequestValidator": peer, "omnichannel verify": ours_verify,
            "omnichannel verify+parse": ours_full, "floor (hand-rolled)": floor}


def measure(cases: dict[str, Callable[[], object]], rounds: int = 9,
            number: int = 2000) -> dict[str, list[float]]:
    """CPU seconds per call of every case, one list entry per round. Rounds interleave the
    cases (one batch of each in turn), so that load from other processes hits them alike;
    ``process_time`` does not count time spent descheduled."""
    for fn in cases.values():
        for _ in range(200):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            start = time.process_time()
            for _ in range(number):
                fn()
            samples[name].append((time.process_time() - start) / number)
    return samples


def main() -> None:
    samples = measure(contenders())
    peer = samples["twilio RequestValidator"]
    print(f"Twilio inbound SMS webhook, {len(BODY)} B form body, {len(FORM)} parameters; "
          f"{len(peer)} interleaved rounds, CPU time per call")
    print(f"{'contender':<28}{'µs/op':>9}{'ops/s':>10}  {'faster than twilio (min / median / max)':>40}")
    for name, times in samples.items():
        ratios = sorted(p / t for p, t in zip(peer, times, strict=True))
        spread = f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f}"
        median = statistics.median(times)
        print(f"{name:<28}{median * 1e6:>9.1f}{1 / median:>10,.0f}  {spread:>40}")


if __name__ == "__main__":
    main()

"""amazon-transcribe over Amazon SNS: signatures (v1 SHA1withRSA, v2 SHA256withRSA), the
signing certificate (fetched in the background, cached in kv), subscription confirmation."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omnichannel_voice import AmazonTranscribeAdapter
from omnichannel_voice._sns import (
    CertificatePendingError,
    forget_certificates,
    is_sns_url,
    remember_certificate,
)

from omnichannel_sdk import (
    Address,
    Hub,
    PayloadError,
    RetryLaterError,
    SignatureError,
    WebhookRequest,
    hookimpl,
)
from omnichannel_sdk.testing import PUBLIC_URL, ChannelContract, SendCase

SAMPLES = Path(__file__).parent / "samples"
REGION = "us-east-2"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:transcribe-results"
CERT_URL = f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem"
SUBSCRIBE_URL = (f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}"
                 "&Token=2336412f37fb687f5d51e6e2425dacbba9e5d2f")
KEY = "contract"


def _make_pki() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


PRIVATE_KEY, CERT_PEM = _make_pki()
OTHER_KEY, _ = _make_pki()

# the canonical fields, in order, as AWS documents them (written here, not taken from the adapter)
_SIGNED = {"Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
           "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                        "TopicArn", "Type"],
           "UnsubscribeConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                       "TopicArn", "Type"]}


def sign(document: dict[str, Any], version: str = "1", key: rsa.RSAPrivateKey = PRIVATE_KEY,
         cert_url: str = CERT_URL) -> dict[str, Any]:
    """Sign an SNS document like SNS does."""
    document = {**document, "SignatureVersion": version, "SigningCertURL": cert_url}
    text = "".join(f"{k}\n{document[k]}\n" for k in _SIGNED[document["Type"]] if k in document)
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    return {**document, "Signature": base64.b64encode(signature).decode()}


def sns_now(seconds_ago: float = 0.0) -> str:
    """An SNS ``Timestamp`` (ISO 8601, milliseconds, ``Z``) ``seconds_ago`` before now."""
    when = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def notification(message: str | None = None, *, subject: str | None = None, version: str = "1",
                 topic: str = TOPIC, message_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                 timestamp: str | None = None, **kw: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Type": "Notification", "MessageId": message_id, "TopicArn": topic,
        "Message": message if message is not None else (SAMPLES / "amazon_output.json").read_text(),
        "Timestamp": timestamp or sns_now(2),
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:1"}
    if subject is not None:
        doc["Subject"] = subject
    return sign(doc, version, **kw)


def confirmation(kind: str = "SubscriptionConfirmation", subscribe_url: str = SUBSCRIBE_URL,
                 **kw: Any) -> dict[str, Any]:
    return sign({"Type": kind, "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
                 "Token": "2336412f37fb687f5d51e6e2425dacbba9e5d2f",
                 "TopicArn": TOPIC, "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
                 "SubscribeURL": subscribe_url, "Timestamp": sns_now(5)}, **kw)


def post(document: dict[str, Any], key: str = KEY) -> WebhookRequest:
    """An SNS HTTPS delivery (SNS sends ``text/plain``)."""
    return WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/{key}", {
        "content-type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": document["Type"], "x-amz-sns-topic-arn": document["TopicArn"],
        "x-amz-sns-message-id": document["MessageId"]}, orjson.dumps(document))


@pytest.fixture(autouse=True)
def _fresh_certificates() -> Iterator[None]:
    forget_certificates()
    yield
    forget_certificates()


@pytest.fixture
def cached() -> None:
    remember_certificate(CERT_URL, CERT_PEM)


def adapter(**settings: Any) -> AmazonTranscribeAdapter:
    case = TestAmazonSnsContract()
    if settings:
        case.channel_settings = settings  # type: ignore[misc]
    return case.make_adapter()  # type: ignore[return-value]


class TestAmazonSnsContract(ChannelContract):
    """The contract kit on an SNS-only channel (certificate already cached)."""
    sends_over_http = False

    adapter_class = AmazonTranscribeAdapter
    channel_settings = {"sns_topic_arns": [TOPIC]}
    signature_headers = ()
    no_secrets = True  # SNS signs with Amazon's certificate: no shared secret configured
    supports_send = False  # jobs are started with AWS tooling; this adapter only receives

    @pytest.fixture(autouse=True)
    def _certificate(self) -> None:
        remember_certificate(CERT_URL, CERT_PEM)

    def sample_requests(self) -> dict[str, WebhookRequest]:
        return {"notification v1": post(notification()),
                "notification v2 with subject": post(notification(
                    (SAMPLES / "amazon_output.json").read_text().replace("0001", "0004"),
                    subject="Transcribe job done", version="2", message_id="m-2"))}

    def tamper(self, request: WebhookRequest) -> WebhookRequest:
        doc = orjson.loads(request.body)
        doc["Message"] = doc["Message"].replace("order", "ordre")
        return WebhookRequest("POST", request.url, request.headers, orjson.dumps(doc))

    def unsigned(self, request: WebhookRequest) -> WebhookRequest:
        doc = orjson.loads(request.body)
        doc.pop("Signature")
        return WebhookRequest("POST", request.url, request.headers, orjson.dumps(doc))

    def malformed_request(self) -> WebhookRequest:
        return post(notification('{"jobName": 7, "results": []}'))

    def send_case(self) -> SendCase:
        return SendCase(method="POST", url="https://transcribe.us-east-2.amazonaws.com/",
                        success=lambda: httpx.Response(200, json={}),
                        recipient=Address(channel="voice", handle="x"))


# -- sans-IO ------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "2"])
def test_both_signature_versions_verify_and_parse(version: str, cached: None) -> None:
    a = adapter()
    request = post(notification(version=version, subject="done"))
    a.verify(request)
    [msg] = a.parse(request).items
    assert msg.parts[0].type == "transcript"


def test_wrong_key_version_or_field_refused(cached: None) -> None:
    a = adapter()
    for doc in (notification(key=OTHER_KEY), notification(version="3"),
                {**notification(), "Subject": "added after signing"},
                {**notification(version="2"), "SignatureVersion": "1"},
                {**notification(), "Signature": "not base64!"},
                {**notification(), "Timestamp": "2026-11-24T00:00:00.000Z"}):
        with pytest.raises(SignatureError):
            a.verify(post(doc))


def test_topic_must_be_allowed(cached: None) -> None:
    with pytest.raises(SignatureError, match="TopicArn"):
        adapter().verify(post(notification(topic="arn:aws:sns:us-east-2:999999999999:theirs")))
    with pytest.raises(SignatureError, match="sns_topic_arns"):  # a shared-secret-only channel
        adapter(shared_secret="s3cret").verify(post(notification()))


@pytest.mark.parametrize("url", [
    "http://sns.us-east-2.amazonaws.com/cert.pem",
    "https://sns.us-east-2.amazonaws.com.evil.test/cert.pem",
    "https://evil.test/sns.us-east-2.amazonaws.com/cert.pem",
    "https://user@sns.us-east-2.amazonaws.com/cert.pem",
    "https://sns.us-east-2.amazonaws.com:8443/cert.pem",
    "https://s3.us-east-2.amazonaws.com/cert.pem",
    "https://sns.amazonaws.com/cert.pem",
])
def test_signing_cert_url_must_be_sns_https(url: str) -> None:
    assert not is_sns_url(url)
    remember_certificate(url, CERT_PEM)  # even a cached key for it is never used
    with pytest.raises(SignatureError, match="SigningCertURL"):
        adapter().verify(post(notification(cert_url=url)))


def test_sns_hosts_accepted() -> None:
    assert is_sns_url(CERT_URL)
    assert is_sns_url("https://sns.cn-north-1.amazonaws.com.cn/x.pem")
    assert is_sns_url("https://sns.us-gov-west-1.amazonaws.com:443/x.pem")


def test_uncached_certificate_is_a_retryable_refusal() -> None:
    with pytest.raises(CertificatePendingError) as info:
        adapter().verify(post(notification()))
    assert isinstance(info.value, RetryLaterError) and info.value.retry_after


def test_shared_secret_and_sns_side_by_side(cached: None) -> None:
    a = adapter(shared_secret="s3cret", sns_topic_arns=[TOPIC])
    a.verify(post(notification()))
    body = (SAMPLES / "amazon_output.json").read_bytes()
    a.verify(WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/{KEY}", {"x-transcribe-token": "s3cret"}, body))
    with pytest.raises(SignatureError):
        a.verify(WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/{KEY}", {"x-transcribe-token": "x"}, body))


def test_settings_need_some_authentication() -> None:
    with pytest.raises(ValueError, match="shared_secret"):
        AmazonTranscribeAdapter.Settings.model_validate({})
    with pytest.raises(ValueError, match="ARN"):
        AmazonTranscribeAdapter.Settings.model_validate({"sns_topic_arns": ["transcribe-results"]})


def test_expired_or_garbage_certificate_not_cached() -> None:
    with pytest.raises(ValueError):
        remember_certificate(CERT_URL, b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    old = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
           .serial_number(1).not_valid_before(past - dt.timedelta(days=1)).not_valid_after(past)
           .sign(key, hashes.SHA256()))
    with pytest.raises(ValueError, match="valid"):
        remember_certificate(CERT_URL, old.public_bytes(serialization.Encoding.PEM))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["Type", "TopicArn", "Signature", "SignatureVersion",
                                        "SigningCertURL", "Message", "MessageId", "Timestamp",
                                        "Subject", "SubscribeURL", "Token"]),
                       st.one_of(st.text(max_size=40), st.integers(), st.none(),
                                 st.lists(st.integers(), max_size=2),
                                 st.sampled_from(["Notification", "SubscriptionConfirmation", TOPIC,
                                                  CERT_URL, "1", "2", "AAAA"]))))
def test_fuzz_sns_verify_only_typed_errors(doc: dict[str, Any]) -> None:
    remember_certificate(CERT_URL, CERT_PEM)
    a = adapter()
    request = WebhookRequest("POST", f"{PUBLIC_URL}/webhooks/{KEY}", {}, json.dumps(doc).encode())
    try:
        a.verify(request)
    except (PayloadError, RetryLaterError):
        pass
    else:  # only a real signature passes
        raise AssertionError("an unsigned document verified")


# -- through a hub ------------------------------------------------------------------------------

class _Aws:
    @hookimpl
    def omni_register_adapters(self, register):  # type: ignore[no-untyped-def]
        register(AmazonTranscribeAdapter)


@pytest.fixture
def aws_config(omni_config: dict) -> dict:
    omni_config["channels"]["aws"] = {"adapter": "amazon-transcribe", "sns_topic_arns": [TOPIC]}
    return omni_config


async def _eventually(check, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return value


def _hub(config: dict) -> Hub:
    import omnichannel_voice._plugin as plugin

    return Hub.from_config(config, plugins=[_Aws(), plugin])


@pytest.mark.anyio
async def test_first_sight_fetches_certificate_then_sns_retry_is_stored(aws_config: dict) -> None:
    """First delivery: 503 and the certificate fetched in the background, once, into kv; SNS's
    retry verifies and is stored. Another process loads the certificate from kv at start."""
    hub = _hub(aws_config)
    async with hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as gateway:
            with respx.mock(assert_all_called=False) as router:
                router.route(host="hooks.example.test").pass_through()
                cert = router.get(CERT_URL).mock(return_value=httpx.Response(
                    200, content=CERT_PEM, headers={"content-type": "application/x-x509-ca-cert"}))
                request = post(notification(), "aws")
                first = await gateway.post("/webhooks/aws", content=request.body, headers=request.headers)
                assert first.status_code == 503
                assert await hub.store.list_dead_letters() == []
                await _eventually(lambda: _async(cert.called))

                async def retried():  # type: ignore[no-untyped-def]
                    again = await gateway.post("/webhooks/aws", content=request.body,
                                               headers=request.headers)
                    return again if again.status_code == 200 else None

                await _eventually(retried)
                message = await hub.store.find_message_by_external("aws", "amazon-transcribe:voicemail-2026-11-23-0001")
                assert message is not None and message.parts[0].type == "transcript"
                assert cert.call_count == 1
                [(_, value)] = await hub.adapter("aws").context.kv.kv_scan("voice:sns-cert:")
                assert orjson.loads(value)["url"] == CERT_URL

                forget_certificates()  # another process: loads it from kv when it starts
                await hub.adapter("aws").start()
                hub.adapter("aws").verify(post(notification(version="2"), "aws"))
                assert cert.call_count == 1


@pytest.mark.anyio
async def test_certificate_fetch_failure_keeps_refusing(aws_config: dict) -> None:
    hub = _hub(aws_config)
    async with hub:
        with respx.mock() as router:
            cert = router.get(CERT_URL).mock(return_value=httpx.Response(404))
            with pytest.raises(CertificatePendingError):
                await hub.handle_webhook("aws", post(notification(), "aws"))
            await _eventually(lambda: _async(cert.called))
            await asyncio.sleep(0.05)
            with pytest.raises(CertificatePendingError):  # not cached; not fetched again at once
                await hub.handle_webhook("aws", post(notification(), "aws"))
            assert cert.call_count == 1
        assert await hub.adapter("aws").context.kv.kv_scan("voice:sns-cert:") == []


@pytest.mark.anyio
async def test_subscription_confirmed_in_background(aws_config: dict, cached: None) -> None:
    hub = _hub(aws_config)
    async with hub:
        with respx.mock() as router:
            confirm = router.get(SUBSCRIBE_URL).mock(return_value=httpx.Response(
                200, text="<ConfirmSubscriptionResponse/>"))
            response = await hub.handle_webhook("aws", post(confirmation(), "aws"))
            assert response.status == 200
            await _eventually(lambda: _async(confirm.called))
            assert "authorization" not in confirm.calls.last.request.headers
        [conversation_count] = [len(await hub.store.list_conversations())]
        assert conversation_count == 0


@pytest.mark.anyio
async def test_subscribe_url_off_sns_is_never_fetched(aws_config: dict, cached: None) -> None:
    hub = _hub(aws_config)
    async with hub:
        with respx.mock(assert_all_called=False) as router:
            evil = router.route().mock(return_value=httpx.Response(200))
            doc = confirmation(subscribe_url="https://evil.test/?Action=ConfirmSubscription")
            assert (await hub.handle_webhook("aws", post(doc, "aws"))).status == 200
            await asyncio.sleep(0.05)
            assert not evil.called
        [letter] = await hub.store.list_dead_letters()
        assert "SubscribeURL" in letter.error


@pytest.mark.anyio
async def test_unsubscribe_confirmation_acknowledged(aws_config: dict, cached: None) -> None:
    hub = _hub(aws_config)
    async with hub:
        with respx.mock(assert_all_called=False) as router:
            route = router.route().mock(return_value=httpx.Response(200))
            response = await hub.handle_webhook("aws", post(confirmation("UnsubscribeConfirmation"), "aws"))
            assert response.status == 200
            await asyncio.sleep(0.05)
            assert not route.called  # not re-subscribed
        assert await hub.store.list_conversations() == []
        assert await hub.store.list_dead_letters() == []


async def _async(value):  # type: ignore[no-untyped-def]
    return value


def test_old_or_zoneless_timestamp_refused_though_signed(cached: None) -> None:
    """A validly signed notification from 2019 (or one just older than ``sns_max_age``)."""
    a = adapter(sns_topic_arns=[TOPIC], sns_max_age=600)
    for stamp in ("2019-06-01T10:00:00.000Z", sns_now(601), "2026-11-23T18:02:11", "yesterday"):
        with pytest.raises(SignatureError):
            a.verify(post(notification(timestamp=stamp)))
    a.verify(post(notification(timestamp=sns_now(30))))


@pytest.mark.anyio
async def test_message_id_replayed_with_another_document_is_refused(aws_config: dict,
                                                                    cached: None) -> None:
    hub = _hub(aws_config)
    async with hub:
        transport = httpx.ASGITransport(app=hub.asgi(lifespan=False))
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as gateway:
            first = post(notification(), "aws")
            other = post(notification((SAMPLES / "amazon_output.json").read_text()
                                      .replace("0001", "0009")), "aws")
            for request, status in ((first, 200), (first, 200), (other, 403)):
                answer = await gateway.post("/webhooks/aws", content=request.body,
                                            headers=request.headers)
                assert answer.status_code == status
        found = await hub.store.find_message_by_external(
            "aws", "amazon-transcribe:voicemail-2026-11-23-0009")
        assert found is None


@pytest.mark.anyio
async def test_sns_query_never_steers_a_transcript(aws_config: dict, cached: None) -> None:
    hub = _hub(aws_config)
    async with hub:
        request = post(notification(), "aws")
        request = WebhookRequest("POST", request.url + "?message=msg_someone_else&from=%2B1999",
                                 request.headers, request.body)
        assert (await hub.handle_webhook("aws", request)).status == 200
        message = await hub.store.find_message_by_external(
            "aws", "amazon-transcribe:voicemail-2026-11-23-0001")
        assert message is not None and message.sender.handle == "unknown-caller"

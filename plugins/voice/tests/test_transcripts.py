"""Vendor transcript parsers: speaker turns, units, stable labels — and fuzzing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omnichannel_voice import (
    AmazonTranscribeAdapter,
    AssemblyAIAdapter,
    DeepgramAdapter,
    TwilioVoiceAdapter,
    amazon_transcript,
    assemblyai_transcript,
    deepgram_transcript,
)

from omnichannel_sdk import PayloadError, TranscriptPart, WebhookRequest

SAMPLES = Path(__file__).parent / "samples"


def load(name: str) -> Any:
    return orjson.loads((SAMPLES / name).read_bytes())


def test_deepgram_utterances_merge_into_turns() -> None:
    part = deepgram_transcript(load("deepgram_utterances.json"))
    assert [(s.speaker, s.start, s.end) for s in part.segments] == [
        ("speaker_0", 0.08, 3.0), ("speaker_1", 3.4, 8.25), ("speaker_0", 8.6, 10.0)]
    assert part.segments[0].text == "Thanks for calling Acme support. How can I help?"
    assert part.segments[1].confidence == pytest.approx((0.93 + 0.91) / 2)


def test_deepgram_words_keep_vendor_speakers_stable() -> None:
    part = deepgram_transcript(load("deepgram_words.json"))
    # Deepgram's speaker 1 talks first: it is speaker_0 here, and stays so
    assert [(s.speaker, s.text) for s in part.segments] == [("speaker_0", "Hello there."),
                                                            ("speaker_1", "Yes, hi.")]


def test_deepgram_multichannel_without_diarization() -> None:
    doc = {"metadata": {"request_id": "r"}, "results": {"channels": [
        {"alternatives": [{"words": [{"word": "hello", "start": 0.5, "end": 0.9}]}]},
        {"alternatives": [{"words": [{"word": "hi", "start": 0.1, "end": 0.3},
                                     {"word": "there", "start": 1.0, "end": 1.2}]}]}]}}
    part = deepgram_transcript(doc)
    assert [(s.speaker, s.text) for s in part.segments] == [
        ("speaker_0", "hi"), ("speaker_1", "hello"), ("speaker_0", "there")]


def test_deepgram_plain_transcript() -> None:
    doc = {"metadata": {"request_id": "r", "duration": 4.5},
           "results": {"channels": [{"alternatives": [{"transcript": "just text"}]}]}}
    [segment] = deepgram_transcript(doc).segments
    assert (segment.start, segment.end, segment.text, segment.speaker) == (0, 4.5, "just text", None)


def test_assemblyai_milliseconds_and_language() -> None:
    part = assemblyai_transcript(load("assemblyai_transcript.json"))
    assert part.language == "en"
    assert [(s.speaker, s.start, s.end) for s in part.segments] == [
        ("speaker_0", 0.24, 2.1), ("speaker_1", 2.5, 5.32), ("speaker_0", 5.6, 7.25)]


def test_assemblyai_text_only_and_errors() -> None:
    [segment] = assemblyai_transcript({"id": "x", "status": "completed", "text": "hi",
                                       "audio_duration": 3}).segments
    assert (segment.end, segment.text) == (3, "hi")
    with pytest.raises(PayloadError):
        assemblyai_transcript({"id": "x", "status": "error", "error": "bad audio"})


def test_amazon_strings_and_punctuation() -> None:
    part = amazon_transcript(load("amazon_output.json"))
    assert [s.text for s in part.segments] == ["Hello, Acme support.", "Hi, my order is late."]
    assert isinstance(part.segments[0].start, float) and part.segments[0].start == 0.04


def test_amazon_item_speaker_labels_and_plain_text() -> None:
    doc = {"jobName": "j", "results": {"items": [
        {"type": "pronunciation", "start_time": "1.0", "end_time": "1.5", "speaker_label": "spk_1",
         "alternatives": [{"content": "yes", "confidence": "0.9"}]}]}}
    assert amazon_transcript(doc).segments[0].speaker == "speaker_0"
    plain = {"jobName": "j", "results": {"transcripts": [{"transcript": "only text"}]}}
    assert amazon_transcript(plain).segments[0].text == "only text"


@pytest.mark.parametrize("parser", [deepgram_transcript, assemblyai_transcript, amazon_transcript])
@pytest.mark.parametrize("doc", [None, [], "x", {}, {"results": []}, {"results": {"items": "zz"}},
                                 {"results": {"channels": [{"alternatives": [{"words": [{}]}]}]}},
                                 {"utterances": [{"start": "nan"}]}, {"words": [{"text": "a"}]}])
def test_malformed_documents_are_typed_errors(parser: Any, doc: Any) -> None:
    """Not a transcript document: a typed error, never an empty transcript."""
    with pytest.raises(PayloadError):
        parser(doc)


def _well_formed(part: Any) -> None:
    """What a parser returns is a transcript a helpdesk can show: text in every segment,
    finite times in order."""
    assert isinstance(part, TranscriptPart)
    for segment in part.segments:
        assert segment.text.strip()
        assert math.isfinite(segment.start) and math.isfinite(segment.end)
        assert 0 <= segment.start <= segment.end


@pytest.mark.parametrize(("parser", "doc"), [
    (deepgram_transcript, {"results": {"channels": [{"alternatives": [{"transcript": ""}]}]}}),
    (assemblyai_transcript, {"status": "completed", "text": ""}),
    (amazon_transcript, {"results": {"transcripts": [{"transcript": ""}], "items": []}}),
])
def test_silence_is_an_empty_transcript(parser: Any, doc: Any) -> None:
    """A real result of silent audio is the one document that gives no segments."""
    assert parser(doc).segments == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["results", "channels", "alternatives", "words", "utterances", "items",
                         "start", "end", "start_time", "end_time", "speaker", "speaker_label",
                         "word", "text", "content", "type", "confidence", "transcript",
                         "metadata", "request_id", "jobName", "status", "transcript_id", "id",
                         "speaker_labels", "segments", "channel_labels", "punctuated_word"]),
        children, max_size=5),
    max_leaves=25)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(doc=json_values)
def test_parsers_fuzz(doc: Any) -> None:
    for parser in (deepgram_transcript, assemblyai_transcript, amazon_transcript):
        try:
            part = parser(doc)
        except PayloadError:
            continue
        _well_formed(part)


def _adapters() -> list[Any]:
    from omnichannel_voice import _plugin  # noqa: F401 - the adapters' module is importable

    from omnichannel_sdk import AdapterContext
    from omnichannel_sdk.testing._contract import MemoryKV

    made = []
    for cls, values in [
        (TwilioVoiceAdapter, {"account_sid": "AC1", "auth_token": "t"}),
        (DeepgramAdapter, {"callback_secret": "s"}),
        (AssemblyAIAdapter, {"api_key": "k", "webhook_secret": "s"}),
        (AmazonTranscribeAdapter, {"shared_secret": "s"}),
    ]:
        context = AdapterContext(key="k", public_url="https://x.test", http=None, kv=MemoryKV())  # type: ignore[arg-type]
        made.append(cls(cls.Settings.model_validate(values), context))
    return made


ADAPTERS = _adapters()


@settings(max_examples=200, deadline=None)
@given(body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
                      st.dictionaries(st.sampled_from(["CallSid", "RecordingSid", "RecordingUrl",
                                                       "RecordingStatus", "From", "To",
                                                       "TranscriptionSid", "TranscriptionText",
                                                       "TranscriptionStatus", "RecordingDuration",
                                                       "AccountSid", "RecordingStartTime"]),
                                      st.text(max_size=30), max_size=8).map(
                          lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode("utf-8"))),
       query=st.sampled_from(["", "?From=%2B14155550123&To=%2B15005550006", "?from=abc&message=m1",
                              "?step=recorded"]))
def test_adapters_parse_fuzz(body: bytes, query: str) -> None:
    """Arbitrary bodies: a result or one of our typed errors, never anything else."""
    for adapter in ADAPTERS:
        request = WebhookRequest("POST", f"https://x.test/webhooks/k{query}",
                                 {"content-type": "application/x-www-form-urlencoded"}, body)
        try:
            adapter.parse(request)
        except PayloadError:
            pass
        try:
            adapter.verify(request)
        except PayloadError:
            pass

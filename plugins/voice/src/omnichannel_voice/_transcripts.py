"""Vendor transcript documents → one :class:`~omnichannel_sdk.TranscriptPart`.

Pure functions of a decoded JSON document. Every vendor's result becomes one segment per speaker
turn (consecutive words or utterances of one speaker are merged), with start and end in seconds
(AssemblyAI counts milliseconds, Amazon Transcribe writes numbers as strings), the text, a 0-1
confidence and a speaker label that is stable within the transcript: ``speaker_0``,
``speaker_1``… in order of first appearance, whatever the vendor calls them (``0``, ``"A"``,
``"spk_0"``). Anything malformed raises :class:`~omnichannel_sdk.UnparseablePayloadError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from omnichannel_sdk import TranscriptPart, TranscriptSegment, UnparseablePayloadError

__all__ = [
    "Word",
    "amazon_transcript",
    "assemblyai_transcript",
    "deepgram_transcript",
    "segments_from_words",
]


@dataclass
class Word:
    """One recognized word (or an utterance) with its timing, speaker and confidence."""

    text: str
    """What was said."""
    start: float
    """Seconds from the start."""
    end: float
    """Seconds from the start."""
    speaker: str | None = None
    """The vendor's speaker label, as a string."""
    confidence: float | None = None
    """From 0 to 1."""


class SpeakerNames:
    """Maps vendor speaker labels to ``speaker_0``, ``speaker_1``… in order of appearance."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def __call__(self, label: str | None) -> str | None:
        if label is None:
            return None
        name = self._names.get(label)
        if name is None:
            name = self._names[label] = f"speaker_{len(self._names)}"
        return name


def _seconds(value: Any, scale: float = 1.0) -> float:
    """A time from a vendor number or numeric string, in seconds, never negative."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a time: {value!r}")
    number = float(value) / scale
    if not math.isfinite(number):
        raise ValueError(f"not a time: {value!r}")
    return max(0.0, number)


def _confidence(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return min(1.0, max(0.0, number))


def _join(words: Iterable[str]) -> str:
    text = ""
    for word in words:
        word = word.strip()
        if not word:
            continue
        if text and word[0] not in ",.;:!?%)":
            text += " "
        text += word
    return text


def segments_from_words(words: Iterable[Word], names: SpeakerNames | None = None
                        ) -> list[TranscriptSegment]:
    """Merge consecutive words of one speaker into speaker turns."""
    names = names or SpeakerNames()
    segments: list[TranscriptSegment] = []
    turn: list[Word] = []

    def flush() -> None:
        if not turn:
            return
        text = _join(w.text for w in turn)
        if text:
            scores = [w.confidence for w in turn if w.confidence is not None]
            start = turn[0].start
            segments.append(TranscriptSegment(
                speaker=names(turn[0].speaker), start=start, end=max(start, turn[-1].end),
                text=text, confidence=sum(scores) / len(scores) if scores else None))
        turn.clear()

    for word in words:
        if turn and word.speaker != turn[-1].speaker:
            flush()
        turn.append(word)
    flush()
    return segments


def _language(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().replace("_", "-").split("-")[0].lower() or None


def _guard(vendor: str) -> Callable[[Callable[[Any], TranscriptPart]], Callable[[Any], TranscriptPart]]:
    """Turn every slip of a parser on odd input into an UnparseablePayloadError."""

    def wrap(fn: Callable[[Any], TranscriptPart]) -> Callable[[Any], TranscriptPart]:
        def parse(document: Any) -> TranscriptPart:
            if not isinstance(document, dict):
                raise UnparseablePayloadError(f"{vendor} result is not a JSON object",
                                              adapter=vendor)
            try:
                return fn(document)
            except UnparseablePayloadError:
                raise
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                raise UnparseablePayloadError(f"{vendor} result: {type(exc).__name__}: {exc}",
                                              adapter=vendor) from None

        parse.__doc__ = fn.__doc__
        parse.__name__ = fn.__name__
        return parse

    return wrap


# ----------------------------------------------------------------------------------------------
# Deepgram (pre-recorded /v1/listen result)


def _deepgram_words(words: list[Any], channel: int | None) -> Iterator[Word]:
    for w in words:
        text = w.get("punctuated_word") or w.get("word")
        if not isinstance(text, str):
            raise TypeError("word without text")
        speaker = w.get("speaker")
        label = f"channel {channel}" if speaker is None and channel is not None else (
            None if speaker is None else str(speaker))
        yield Word(text, _seconds(w["start"]), _seconds(w["end"]), label,
                   _confidence(w.get("confidence")))


@_guard("deepgram")
def deepgram_transcript(document: Any) -> TranscriptPart:
    """The transcript of a Deepgram ``/v1/listen`` result (``metadata`` + ``results``).

    Uses ``results.utterances`` when present (``utterances=true``), else the words of each
    channel's first alternative (speaker from ``diarize=true``, or the channel of a
    multichannel recording), else the plain transcript text.
    """
    results = document["results"]
    if not isinstance(results, dict):
        raise TypeError("results is not an object")
    if "channels" not in results and "utterances" not in results:
        raise KeyError("results has neither channels nor utterances")  # not a listen result
    channels = results.get("channels") or []
    language = None
    if channels and isinstance(channels[0], dict):
        language = _language(channels[0].get("detected_language"))
    utterances = results.get("utterances")
    if utterances:
        words = [Word(str(u["transcript"]), _seconds(u["start"]), _seconds(u["end"]),
                      None if u.get("speaker") is None else str(u["speaker"]),
                      _confidence(u.get("confidence")))
                 for u in utterances]
        return TranscriptPart(segments=segments_from_words(words), language=language)
    multichannel = len(channels) > 1
    all_words: list[Word] = []
    texts: list[str] = []
    for index, channel in enumerate(channels):
        alternative = (channel.get("alternatives") or [{}])[0]
        if alternative.get("words"):
            all_words.extend(_deepgram_words(alternative["words"], index if multichannel else None))
        elif alternative.get("transcript"):
            texts.append(str(alternative["transcript"]))
    if all_words:
        all_words.sort(key=lambda w: w.start)
        return TranscriptPart(segments=segments_from_words(all_words), language=language)
    duration = _seconds(document.get("metadata", {}).get("duration") or 0)
    text = " ".join(t.strip() for t in texts if t.strip())
    segments = [TranscriptSegment(start=0, end=duration, text=text)] if text else []
    return TranscriptPart(segments=segments, language=language)


# ----------------------------------------------------------------------------------------------
# AssemblyAI (GET /v2/transcript/{id}); times in milliseconds


@_guard("assemblyai")
def assemblyai_transcript(document: Any) -> TranscriptPart:
    """The transcript of a completed AssemblyAI transcript resource.

    Uses ``utterances`` (``speaker_labels=true``), else ``words``, else ``text``; times in the
    document are milliseconds.
    """
    status = document.get("status")
    if status not in (None, "completed"):
        raise ValueError(f"transcript status is {status!r}, not completed")
    language = _language(document.get("language_code"))
    if not any(key in document for key in ("utterances", "words", "text")):
        # a transcript without words may be silence; one without the fields is not a transcript
        raise KeyError("no utterances, words or text")
    for key in ("utterances", "words"):
        items = document.get(key)
        if items:
            words = [Word(str(u["text"]), _seconds(u["start"], 1000), _seconds(u["end"], 1000),
                          None if u.get("speaker") is None else str(u["speaker"]),
                          _confidence(u.get("confidence")))
                     for u in items]
            return TranscriptPart(segments=segments_from_words(words), language=language)
    text = document.get("text")
    if not isinstance(text, str) or not text.strip():
        return TranscriptPart(segments=[], language=language)
    duration = _seconds(document.get("audio_duration") or 0)
    return TranscriptPart(segments=[TranscriptSegment(
        start=0, end=duration, text=text.strip(), confidence=_confidence(document.get("confidence")))],
        language=language)


# ----------------------------------------------------------------------------------------------
# Amazon Transcribe (the job's output JSON); numbers are strings


def _amazon_speakers(results: dict[str, Any]) -> dict[str, str]:
    """start_time → speaker label, from ``speaker_labels`` or ``channel_labels``."""
    by_start: dict[str, str] = {}
    labels = results.get("speaker_labels") or {}
    for segment in labels.get("segments") or []:
        for item in segment.get("items") or []:
            if item.get("start_time") is not None and item.get("speaker_label") is not None:
                by_start[str(item["start_time"])] = str(item["speaker_label"])
    channels = results.get("channel_labels") or {}
    for channel in channels.get("channels") or []:
        label = channel.get("channel_label")
        for item in channel.get("items") or []:
            if item.get("start_time") is not None and label is not None:
                by_start.setdefault(str(item["start_time"]), str(label))
    return by_start


@_guard("amazon-transcribe")
def amazon_transcript(document: Any) -> TranscriptPart:
    """The transcript of an Amazon Transcribe job's output document.

    Speaker turns from ``results.items`` (each word's ``speaker_label``, or the
    ``speaker_labels`` / ``channel_labels`` sections); punctuation sticks to the word before;
    without items, the plain ``transcripts[0].transcript``.
    """
    status = document.get("status")
    if status not in (None, "COMPLETED"):
        raise ValueError(f"job status is {status!r}, not COMPLETED")
    results = document["results"]
    if not isinstance(results, dict):
        raise TypeError("results is not an object")
    if "items" not in results and "transcripts" not in results:
        raise KeyError("results has neither items nor transcripts")  # not a job output
    language = _language(results.get("language_code") or document.get("language_code"))
    speakers = _amazon_speakers(results)
    words: list[Word] = []
    for item in results.get("items") or []:
        alternative = (item.get("alternatives") or [{}])[0]
        content = alternative.get("content")
        if not isinstance(content, str):
            raise TypeError("item without content")
        if item.get("type") == "punctuation":
            if words:
                words[-1].text += content
            continue
        start = str(item["start_time"])
        speaker = item.get("speaker_label") or item.get("channel_label") or speakers.get(start)
        words.append(Word(content, _seconds(start), _seconds(item["end_time"]),
                          None if speaker is None else str(speaker),
                          _confidence(alternative.get("confidence"))))
    if words:
        return TranscriptPart(segments=segments_from_words(words), language=language)
    transcripts = results.get("transcripts") or []
    text = " ".join(str(t.get("transcript") or "").strip() for t in transcripts).strip()
    segments = [TranscriptSegment(start=0, end=0, text=text)] if text else []
    return TranscriptPart(segments=segments, language=language)

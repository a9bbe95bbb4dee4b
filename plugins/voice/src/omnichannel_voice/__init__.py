"""omnichannel-voice: phone calls and voicemail as conversation messages, with transcripts.

Adapters: ``twilio-voice`` (voicemail recordings and Twilio's transcriptions), ``deepgram``,
``assemblyai`` and ``amazon-transcribe`` (transcript results by webhook or file). Any stored audio
without a transcript, on any channel, is transcribed in the background by the first registered
transcriber — by default the offline :class:`WhisperTranscriber` (extra ``[whisper]``).
"""

from __future__ import annotations

from ._amazon import AmazonTranscribeAdapter, AmazonTranscribeSettings
from ._assemblyai import AssemblyAIAdapter, AssemblyAISettings
from ._attach import attach_transcript, has_transcript
from ._deepgram import DeepgramAdapter, DeepgramSettings
from ._sns import CertificatePendingError, is_sns_url, sns_string_to_sign, verify_sns_signature
from ._transcriber import (
    AsyncTranscriber,
    Transcriber,
    TranscriptionService,
    VendorTranscriber,
    audio_to_transcribe,
)
from ._transcripts import amazon_transcript, assemblyai_transcript, deepgram_transcript
from ._twilio import TwilioVoiceAdapter, twilio_signature
from ._vendors import TranscriptVendorAdapter, transcribe_signature
from ._whisper import WhisperTranscriber, bundled_model_path, whisper_available

__all__ = [
    "AmazonTranscribeAdapter",
    "AmazonTranscribeSettings",
    "AssemblyAIAdapter",
    "AssemblyAISettings",
    "AsyncTranscriber",
    "CertificatePendingError",
    "DeepgramAdapter",
    "DeepgramSettings",
    "Transcriber",
    "TranscriptVendorAdapter",
    "TranscriptionService",
    "TwilioVoiceAdapter",
    "VendorTranscriber",
    "WhisperTranscriber",
    "amazon_transcript",
    "assemblyai_transcript",
    "attach_transcript",
    "audio_to_transcribe",
    "bundled_model_path",
    "deepgram_transcript",
    "has_transcript",
    "is_sns_url",
    "sns_string_to_sign",
    "transcribe_signature",
    "twilio_signature",
    "verify_sns_signature",
    "whisper_available",
]

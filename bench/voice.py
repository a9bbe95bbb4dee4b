"""Offline transcription: word error rate and real-time factor of the default engine.

Run: ``.venv/bin/python bench/voice.py`` (needs espeak-ng and sox, and the ``[whisper]`` extra).

Speech is synthesized with espeak-ng, then stored as 16 kHz 16-bit WAV and as an 8 kHz mu-law
phone line (300-3400 Hz). Three engines, in one run, on one CPU thread each:

- ours: :class:`omnichannel_voice.WhisperTranscriber` (bytes in, TranscriptPart out);
- floor: faster-whisper called directly on the file with the same model and settings;
- peer: pocketsphinx 5 with the model its wheel ships (when installed).

WER is the word-level edit distance over the reference length (lower-cased, punctuation and
digit/word spelling normalized); RTF is processing seconds per second of audio (lower is better).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "voice" / "src"))

from omnichannel_voice import WhisperTranscriber, bundled_model_path

SENTENCES = [
    "Hello, my parcel never arrived and I would like a refund please.",
    "Please call me back tomorrow morning after nine o'clock.",
    "I was charged twice for the same order last week.",
    "My password reset email never came, can you help me log in?",
    "The delivery driver left the box at the wrong address.",
    "Could you cancel my subscription before the next billing date?",
]
DIGITS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
          "7": "seven", "8": "eight", "9": "nine"}


def normalize(text: str) -> list[str]:
    """Lower-case words, digits spelled out, punctuation dropped."""
    text = re.sub(r"\d", lambda m: f" {DIGITS[m.group()]} ", text.lower())
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text)


def wer(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edits, reference words) by word-level Levenshtein distance."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)


def synthesize(folder: Path) -> list[tuple[str, str, Path, float]]:
    """(band, reference, wav, seconds) for every sentence at 16 kHz and on a phone line."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if not espeak or not sox:
        sys.exit("bench/voice.py needs espeak-ng and sox (scripts/system-deps.d/voice.list)")
    clips = []
    for n, sentence in enumerate(SENTENCES):
        raw = folder / f"{n}.raw.wav"
        subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(raw), sentence], check=True)
        wide, phone, phone16 = folder / f"{n}.16k.wav", folder / f"{n}.8k.wav", folder / f"{n}.8k16.wav"
        subprocess.run([sox, str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wide)], check=True)
        subprocess.run([sox, str(raw), "-r", "8000", "-c", "1", "-e", "u-law", str(phone),
                        "sinc", "300-3400"], check=True)
        # the same phone line, resampled for an engine that only takes 16 kHz PCM
        subprocess.run([sox, str(phone), "-r", "16000", "-b", "16", "-e", "signed", str(phone16)],
                       check=True)
        with wave.open(str(wide)) as w:
            seconds = w.getnframes() / w.getframerate()
        clips += [("16 kHz", sentence, wide, seconds), ("8 kHz phone", sentence, phone, seconds)]
    return clips


def engines() -> dict[str, Callable[[Path], str]]:
    """name → transcribe(path) -> text."""
    ours = WhisperTranscriber(cpu_threads=1)
    ours.load()

    def run_ours(path: Path) -> str:
        part = ours.transcribe(path.read_bytes(), content_type="audio/wav")
        return " ".join(s.text for s in part.segments)

    from faster_whisper import WhisperModel

    model = WhisperModel(str(bundled_model_path()), device="cpu", compute_type="int8", cpu_threads=1,
                         local_files_only=True)

    def run_floor(path: Path) -> str:
        segments, _ = model.transcribe(str(path), language="en", beam_size=1,
                                       condition_on_previous_text=False)
        return " ".join(s.text for s in segments)

    beam5 = WhisperTranscriber(cpu_threads=1, beam_size=5)

    def run_beam5(path: Path) -> str:
        part = beam5.transcribe(path.read_bytes(), content_type="audio/wav")
        return " ".join(s.text for s in part.segments)

    found = {"ours (WhisperTranscriber)": run_ours, "floor (faster-whisper direct)": run_floor,
             "ours, beam_size=5": run_beam5}
    try:
        from pocketsphinx import Decoder
    except ImportError:
        return found
    decoder = Decoder(loglevel="FATAL")

    def run_peer(path: Path) -> str:
        source = path.with_name(path.name.replace(".8k.wav", ".8k16.wav"))
        with wave.open(str(source)) as w:
            pcm = w.readframes(w.getnframes())
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp else ""

    found["peer (pocketsphinx 5)"] = run_peer
    return found


def main() -> None:
    """Print one table: WER per band and real-time factor, per engine."""
    with tempfile.TemporaryDirectory() as tmp:
        clips = synthesize(Path(tmp))
        audio_seconds = sum(c[3] for c in clips)
        print(f"{len(SENTENCES)} sentences x 2 bands, {audio_seconds:.1f} s of speech, "
              f"{os.cpu_count()} CPUs, 1 thread per engine")
        print(f"{'engine':32} {'WER 16 kHz':>10} {'WER 8 kHz':>10} {'x real time':>12} {'clips/s':>8}")
        base_rtf = None
        for name, run in engines().items():
            run(clips[0][2])  # warm-up
            edits: dict[str, list[int]] = {"16 kHz": [0, 0], "8 kHz phone": [0, 0]}
            started = time.perf_counter()
            for band, reference, path, _ in clips:
                e, n = wer(reference, run(path))
                edits[band][0] += e
                edits[band][1] += n
            elapsed = time.perf_counter() - started
            rtf = elapsed / audio_seconds
            base_rtf = base_rtf or rtf
            w16 = edits["16 kHz"][0] / edits["16 kHz"][1]
            w8 = edits["8 kHz phone"][0] / edits["8 kHz phone"][1]
            print(f"{name:32} {w16:>10.1%} {w8:>10.1%} {rtf:>12.3f} {len(clips) / elapsed:>8.2f}"
                  f"   (time x{rtf / base_rtf:.2f} of ours)")


if __name__ == "__main__":
    main()

"""Events per hour on long read speech, for kws-edge's model and the MLPerf Tiny reference.

``python -m benchmarks.read_speech AUDIO ... [--model M] [--no-reference] --json`` runs the
streaming detector (hop, smoothing and refractory period as shipped; the model's own threshold)
over long recordings of running speech (WAV or FLAC, any rate; an audiobook, say) and counts
the events it fires, by keyword and at a sweep of thresholds: issue 11's read-speech check
(≤ 170 events per hour, half the reference's rate, on an hour of audiobook speech). The
reference runs on 1-s windows at the same hop through its own front-end, at the same threshold
(as in ``benchmarks.rejection``).

``--speak TEXT ...`` makes the recording here instead: the text files' paragraphs read in turn
by ``--voices`` (``piper``: the neural Piper voice at five vocal-tract lengths, the ``synth``
extra; or espeak-ng voices), with pauses between paragraphs, up to ``--minutes`` of speech. A
stand-in where no recording of people reading is at hand: one synthetic voice, so its figures
compare the two models on the same speech, not on people's speech. Every occurrence of a
keyword in the text read out is counted, so events on words that were said are told apart.
Writes ``read_speech.{json,md}`` into ``--out`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.rejection import stream_posteriors
from benchmarks.results_io import RESULTS, markdown_table, publish
from edge_runtime.detector import DetectorConfig, model_threshold
from edge_runtime.errors import KwsError
from edge_runtime.manifest import BACKGROUND_LABELS
from edge_runtime.model import KwsModel
from edge_runtime.paths import default_model
from edge_runtime.stream_score import gate_events
from edge_runtime.wav import write_wav

SWEEP = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
PAUSE_S = (0.3, 0.9)  # silence between paragraphs
FLOOR = 3e-4  # white noise under the spoken text (about -70 dBFS): no digital silence


@dataclass
class Recording:
    """Long audio at the model's rate; ``said``: how often each word of it was spoken, when
    known (text read out here)."""

    name: str
    samples: np.ndarray
    said: Counter = field(default_factory=Counter)


def load_recordings(paths: list[Path], sample_rate: int) -> list[Recording]:
    from train.data import load_clip

    return [Recording(p.name, load_clip(p, sample_rate).samples) for p in paths]


def paragraphs(text: str) -> list[str]:
    """The text's paragraphs (blank-line separated), each on one line."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def spoken_text(texts: list[Path], voices: tuple[str, ...], minutes: float, seed: int = 0
                ) -> Recording:
    """The paragraphs of ``texts`` read in turn by each voice of ``voices``, with pauses, up
    to ``minutes`` of audio (at least one paragraph; the text starts over if it runs out)."""
    from train.synth import RATE, SynthConfig, expand_voices, speak

    config = SynthConfig(words=(), out=Path("."))
    chosen = expand_voices(voices)
    parts = [p for t in texts for p in paragraphs(t.read_text(errors="replace"))]
    if not parts:
        raise KwsError(f"no text to read in {', '.join(map(str, texts))}")
    rng = np.random.default_rng(seed)
    pieces, said, length, i = [], Counter(), 0, 0
    while length < minutes * 60 * RATE or not pieces:
        text = parts[i % len(parts)]
        audio = speak(text, chosen[i % len(chosen)], rng, config)
        audio = audio * (0.5 / (np.abs(audio).max() + 1e-9))  # the same level for every voice
        pause = np.zeros(int(rng.uniform(*PAUSE_S) * RATE), np.float32)
        pieces += [audio.astype(np.float32), pause]
        said.update(re.findall(r"[a-z']+", text.lower()))
        length += audio.size + pause.size
        i += 1
    samples = np.concatenate(pieces)
    samples += rng.normal(0, FLOOR, samples.size).astype(np.float32)
    return Recording(f"{len(texts)} text(s) read by {len(chosen)} voice(s)", samples, said)


def count_events(model, recordings: list[Recording], config: DetectorConfig,
                 reference: bool, thresholds: tuple[float, ...]) -> dict:
    """Events per hour over all recordings, by keyword at ``config.threshold`` and in total
    at each of ``thresholds``."""
    refractory = config.refractory_ms / 1000
    at: Counter[str] = Counter()
    totals: Counter[float] = Counter()
    posteriors = stream_posteriors(model, dict(enumerate(recordings)), config, reference)
    for times, smoothed in posteriors.values():
        at.update(e.label for e in gate_events(times, smoothed, model.labels,
                                               config.threshold, refractory))
        for t in thresholds:
            totals[t] += len(gate_events(times, smoothed, model.labels, t, refractory))
    hours = sum(r.samples.size for r in recordings) / model.sample_rate / 3600
    keywords = [x for x in model.labels if x not in BACKGROUND_LABELS]
    return {"threshold": config.threshold, "hours": round(hours, 4),
            "events": sum(at.values()),
            "events_per_hour": round(sum(at.values()) / hours, 1),
            "by_keyword_per_hour": {k: round(at[k] / hours, 1) for k in keywords},
            "sweep": [{"threshold": t, "events_per_hour": round(totals[t] / hours, 1)}
                      for t in thresholds]}


def markdown(results: list[dict], recordings: list[Recording], said: dict, rate: int) -> str:
    minutes = sum(r.samples.size for r in recordings) / rate / 60
    rows = [[r["name"], f"{r['threshold']:.2f}", r["events"], r["events_per_hour"],
             ", ".join(f"{k} {v}" for k, v in sorted(r["by_keyword_per_hour"].items(),
                                                     key=lambda kv: -kv[1]) if v) or "none",
             *(p["events_per_hour"] for p in r["sweep"])] for r in results]
    table = markdown_table(["model", "threshold", "events", "events per hour",
                            "per hour by keyword",
                            *(f"per hour at {t:g}" for t in SWEEP)], rows)
    words = (", ".join(f"{k} {n}" for k, n in said.items()) or "none") if said else None
    text = (f"# Events on long read speech\n\n{len(recordings)} recording(s), "
            f"{minutes:.1f} min: {', '.join(r.name for r in recordings)}. The detector as "
            f"shipped (hop, smoothing, refractory period), each model at the threshold given."
            f"\n\n{table}\n")
    if words is not None:
        text += f"\nKeywords said in the text read out (each a possible right event): {words}.\n"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("audio", nargs="*", type=Path, help="long recordings (WAV or FLAC)")
    parser.add_argument("--speak", type=Path, action="append", default=[], metavar="TEXT",
                        help="text file(s) to read out instead of recordings")
    parser.add_argument("--voices", default="piper",
                        help="voices for --speak: piper, espeak or espeak-ng voice ids, "
                             "comma-separated")
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="length of the speech --speak makes")
    parser.add_argument("--save", type=Path, metavar="WAV",
                        help="also write the speech --speak made (16-bit WAV), to score other "
                             "models on the same audio (the Piper voice is not repeatable)")
    parser.add_argument("--model", type=Path, help="TFLite model (default: the shipped int8)")
    parser.add_argument("--threshold", type=float,
                        help="the detector's threshold (default: the model's own)")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        if bool(args.audio) == bool(args.speak):
            raise KwsError("give recordings or --speak TEXT, one of the two")
        if not 0 < args.minutes <= 600:
            raise KwsError(f"--minutes must be within (0, 600], got {args.minutes:g}")
        if args.save is not None and not args.speak:
            raise KwsError("--save keeps the speech that --speak makes: give --speak")
        if args.threshold is not None and not 0 < args.threshold < 1:
            raise KwsError(f"--threshold must be within (0, 1), got {args.threshold:g}")
        model = KwsModel(args.model or default_model())
        config = DetectorConfig(threshold=model_threshold(model) if args.threshold is None
                                else args.threshold)
        if args.audio:
            recordings = load_recordings(args.audio, model.sample_rate)
        elif model.sample_rate != 16000:  # the voices speak at 16 kHz
            raise KwsError(f"--speak makes 16 kHz speech; the model takes {model.sample_rate} Hz")
        else:
            recordings = [spoken_text(args.speak, tuple(args.voices.split(",")), args.minutes)]
            if args.save is not None:
                write_wav(args.save, recordings[0].samples, model.sample_rate)
        results = [{"name": f"kws-edge {model.path.name}",
                    **count_events(model, recordings, config, False, SWEEP)}]
        if not args.no_reference:
            from benchmarks.reference import REFERENCE_NAME, ReferenceModel

            results.append({"name": REFERENCE_NAME, **count_events(
                ReferenceModel(), recordings, config, True, SWEEP)})
    except (KwsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    keywords = [x for x in model.labels if x not in BACKGROUND_LABELS]
    said = {k: sum(r.said[k] for r in recordings) for k in keywords} if args.speak else {}
    data = {"recordings": [{"name": r.name, "minutes": round(r.samples.size
                                                               / model.sample_rate / 60, 2)}
                           for r in recordings],
            "speak": [str(p) for p in args.speak], "voices": args.voices if args.speak else None,
            "keywords_said": said, "detector": asdict(config), "results": results}
    text = markdown(results, recordings, said, model.sample_rate)
    return publish("read_speech", data, text, text, args.json, args.out)


if __name__ == "__main__":
    sys.exit(main())

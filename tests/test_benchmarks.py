"""The streaming and accuracy benchmarks run end to end on small models and write their files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import accuracy, frontend, latency, pipelines, streaming
from benchmarks.reference import reference_dir
from edge_runtime.wav import write_wav
from tests.conftest import speech_like
from tests.fixtures_data import as_flac, make_fake_dataset

RESULT_FILES = ("json", "md", "png")


def read_result(out, name: str) -> dict:
    for ext in RESULT_FILES:
        assert (out / f"{name}.{ext}").is_file(), f"{name}.{ext} missing"
        assert (out / f"{name}.{ext}").stat().st_size > 0
    return json.loads((out / f"{name}.json").read_text())


def test_streaming_benchmark_writes_rtf_and_hop_latency(tiny_models, tmp_path, capsys):
    out = tmp_path / "results"
    status = streaming.main(["--model", str(tiny_models["int8"]), "--seconds", "60",
                             "--out", str(out), "--json"])
    assert status == 0
    data = read_result(out, "streaming")
    assert json.loads(capsys.readouterr().out)["rtf"] == data["rtf"]
    assert data["audio_seconds"] == pytest.approx(60.0)
    assert data["chunks"] == 60 * 1000 // 20  # 20 ms chunks
    # the detector runs the model once per 100 ms hop once a 1-s window is full
    assert data["hops"] == pytest.approx((60 - 1) * 10 + 1, abs=2)
    assert data["rtf"] > 0 and data["rtf_cpu"] > 0
    assert data["rtf"] == pytest.approx(data["processing_seconds"] / data["audio_seconds"],
                                        rel=1e-3)
    for key in ("median", "p90", "p99"):
        assert data["hop_latency_ms"][key] > 0
    assert data["hop_latency_ms"]["p99"] >= data["hop_latency_ms"]["median"]
    assert data["quantization"] == "int8"
    assert {"machine", "commit", "meets_target", "events", "detector"} <= set(data)
    markdown = (out / "streaming.md").read_text()
    assert tiny_models["int8"].name in markdown and "{" not in markdown


def test_streaming_and_soak_run_the_detector_at_the_models_threshold(tiny_models, tmp_path,
                                                                     capsys):
    import shutil
    from dataclasses import replace

    from benchmarks import soak
    from edge_runtime.detector import DetectorConfig
    from edge_runtime.manifest import load_manifest, manifest_path_for, save_manifest

    model = tmp_path / "m" / "kws_int8.tflite"
    model.parent.mkdir()
    shutil.copy(tiny_models["int8"], model)
    manifest = load_manifest(manifest_path_for(tiny_models["int8"]))
    for threshold, expected in ((None, DetectorConfig().threshold), (0.83, 0.83)):
        save_manifest(replace(manifest, threshold=threshold), manifest_path_for(model))
        assert streaming.main(["--model", str(model), "--seconds", "60", "--out",
                               str(tmp_path / "out"), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["detector"]["threshold"] == expected
        assert soak.main(["--model", str(model), "--minutes", "3", "--synthetic", "--json",
                          "--no-write"]) == 0
        assert json.loads(capsys.readouterr().out)["threshold"] == expected


def test_streaming_benchmark_refuses_short_audio(tiny_models, tmp_path, capsys):
    status = streaming.main(["--model", str(tiny_models["int8"]), "--seconds", "5",
                             "--out", str(tmp_path)])
    assert status == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "streaming.json").exists()


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """24 clips: 4 words x 3 speakers x 2, in the mini layout."""
    root = tmp_path_factory.mktemp("clips")
    return make_fake_dataset(root, ["yes", "no", "up", "down"], speakers=3, per_speaker=2,
                             with_noise=False, mini_layout=True)


def test_accuracy_benchmark_compares_float_and_int8(tiny_models, clip_folder, tmp_path):
    out = tmp_path / "results"
    status = accuracy.main(["--data", str(clip_folder), "--float", str(tiny_models["float32"]),
                            "--int8", str(tiny_models["int8"]), "--out", str(out), "--json"])
    assert status == 0
    data = read_result(out, "accuracy")
    assert data["n"] == 24
    assert set(data["accuracy"]) == {"float32", "int8"}
    assert set(data["per_class"]["int8"]) == set(data["labels"])
    confusion = data["reports"]["int8"]["confusion"]
    assert sum(map(sum, confusion)) == 24
    assert data["drop_points_vs_float32"]["int8"] == pytest.approx(
        100 * (data["accuracy"]["float32"] - data["accuracy"]["int8"]), abs=1e-3)
    assert isinstance(data["gate"]["passed"], bool)
    markdown = (out / "accuracy.md").read_text()
    assert "## Per class" in markdown and "{" not in markdown


def test_accuracy_benchmark_keeps_only_held_out_clips(tiny_models, clip_folder, tmp_path):
    rels = sorted(p.relative_to(clip_folder).as_posix() for p in clip_folder.glob("yes/*.wav"))
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"test_files": rels[:3]}))
    out = tmp_path / "results"
    status = accuracy.main(["--data", str(clip_folder), "--float", str(tiny_models["float32"]),
                            "--int8", str(tiny_models["int8"]), "--held-out", str(split),
                            "--out", str(out)])
    assert status == 0
    data = read_result(out, "accuracy")
    assert data["n"] == 3
    assert data["reports"]["float32"]["skipped"]["not held out"] == 21


def test_accuracy_benchmark_missing_model_is_an_error(clip_folder, tmp_path, capsys):
    status = accuracy.main(["--data", str(clip_folder), "--float", str(tmp_path / "no.tflite"),
                            "--int8", str(tmp_path / "no.tflite"), "--out", str(tmp_path)])
    assert status == 2
    assert capsys.readouterr().err.startswith("error: model not found")


def test_rejection_benchmark_scores_streams_of_held_out_speakers(tmp_path, capsys,
                                                                  monkeypatch):
    from benchmarks import rejection
    from tests.model_factory import build_models

    tflite = build_models(tmp_path / "m", labels=["_silence_", "_unknown_", "yes", "no"])["int8"]
    data = make_fake_dataset(tmp_path / "sc", ["yes", "no", "bed", "cat"], speakers=4,
                             per_speaker=2, mini_layout=True, silence_clips=2)
    held_out = sorted({p.name.split("_")[0] for p in (data / "yes").glob("*.wav")})[:2]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"test": held_out}))
    out = tmp_path / "results"
    status = rejection.main(["--model", str(tflite), "--data", str(data),
                             "--split", str(split), "--minutes", "0.5", "--no-reference",
                             "--out", str(out), "--json"])
    assert status == 0
    result = read_result(out, "rejection")
    assert result["held_out_speakers"] == 2
    assert result["streams"]["keywords"]["keywords"] > 0
    assert result["streams"]["other_words"]["keywords"] == 0
    (model,) = result["models"]
    sweep = model["sweep"]
    assert [p["threshold"] for p in sweep] == sorted(p["threshold"] for p in sweep)
    # a higher threshold never fires more, nor rejects fewer keywords
    fa = [p["non_keyword_fa_per_hour"] for p in sweep]
    frr = [p["false_reject_rate"] for p in sweep]
    assert all(a >= b for a, b in zip(fa, fa[1:], strict=False))
    assert all(a <= b for a, b in zip(frr, frr[1:], strict=False))
    op = model["operating_point"]
    assert op is None or op["false_reject_rate"] <= rejection.MAX_FRR
    # the streams repeat a few recordings; each point counts those that fired
    recordings = result["non_keyword_recordings"]
    words = sum(result["streams"][n]["words"] for n in ("other_words", "running_speech"))
    assert 0 < recordings < words
    hours = rejection.non_keyword_hours(result)
    for p in sweep:
        events = round(p["non_keyword_fa_per_hour"] * hours)
        assert 0 <= p["clips_fired"] <= min(events, recordings)
        assert (p["clips_fired"] == 0) == (events == 0)
    by_keyword = model["false_accepts_per_hour_by_keyword"]
    assert list(by_keyword) == ["yes", "no"]
    total = model["at_default_threshold"]["non_keyword_fa_per_hour"]
    assert total > 0 and sum(by_keyword.values()) == pytest.approx(total, abs=0.05)
    assert "by the keyword that fired" in (out / "rejection.md").read_text()
    assert "by the word spoken" in (out / "rejection.md").read_text()
    assert model["smoothing_sweep"] == []

    # the operating point at other smoothing windows, from posteriors recorded once: at the
    # detector's own window it is the live detector's
    assert rejection.main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                           "--minutes", "0.5", "--no-reference", "--smooth-ms", "300",
                           "--smoothing-sweep", "0", "300", "800", "--out", str(out),
                           "--json"]) == 0
    result = read_result(out, "rejection")
    (model,) = result["models"]
    assert result["detector"]["smooth_ms"] == 300
    assert [w["smooth_ms"] for w in model["smoothing_sweep"]] == [0, 300, 800]
    at_300 = model["smoothing_sweep"][1]
    assert at_300["operating_point"] == model["operating_point"]
    assert at_300["at_default_threshold"] == model["at_default_threshold"]
    assert "Operating point by posterior smoothing window" in (out / "rejection.md").read_text()
    capsys.readouterr()
    assert rejection.main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                           "--smoothing-sweep", "300", "-5", "--no-reference",
                           "--out", str(out)]) == 2
    assert capsys.readouterr().err == "error: --smooth-ms must be >= 0, got -5\n"

    split.write_text(json.dumps({"test": held_out, "val": held_out[:1]}))
    assert rejection.main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                           "--speakers", "val", "--minutes", "0.5", "--no-reference",
                           "--out", str(out), "--json"]) == 0
    result = read_result(out, "rejection")
    assert (result["speaker_list"], result["held_out_speakers"]) == ("val", 1)
    assert "from the 1 validation speakers" in (out / "rejection.md").read_text()

    # the validation speakers of a training-only FLAC folder join the validation streams
    from train.data import extra_val_speakers

    extra = as_flac(make_fake_dataset(tmp_path / "extra", ["yes", "no", "happy"],
                                      [f"e{i:07d}" for i in range(8)], 2))
    validating = extra_val_speakers(extra, 50.0)
    assert 0 < len(validating) < 8
    assert rejection.main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                           "--speakers", "val", "--extra", str(extra), "--extra-val-pct", "50",
                           "--minutes", "0.5", "--no-reference", "--out", str(out),
                           "--json"]) == 0
    result = read_result(out, "rejection")
    assert result["held_out_speakers"] == 1 + len(validating)
    assert (result["extra"], result["extra_val_pct"]) == (["extra"], 50.0)
    assert "50% of `extra`'s speakers that validated" in (out / "rejection.md").read_text()
    assert result["even_words"] is False
    assert rejection.main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                           "--speakers", "val", "--extra", str(extra), "--extra-val-pct", "50",
                           "--even-words", "--minutes", "0.5", "--no-reference",
                           "--out", str(out), "--json"]) == 0
    assert read_result(out, "rejection")["even_words"] is True
    assert "other words drawn evenly by word" in (out / "rejection.md").read_text()
    # --main-keywords: the keyword stream (false rejects) of the main folder's speakers only,
    # the very stream the main folder alone gives; the non-keyword streams keep every voice
    runs = {}
    for name, more in (("main", []), ("all", ["--extra", str(extra)]),
                       ("main_keywords", ["--extra", str(extra), "--main-keywords"])):
        assert rejection.main(["--model", str(tflite), "--data", str(data), "--split",
                               str(split), "--speakers", "val", *more, "--extra-val-pct", "50",
                               "--minutes", "0.5", "--no-reference", "--out", str(out),
                               "--json"]) == 0
        runs[name] = read_result(out, "rejection")
    assert [runs[n]["keyword_speakers"] for n in runs] == ["all", "all", "main"]
    frr = {n: r["models"][0]["at_default_threshold"]["false_reject_rate"]
           for n, r in runs.items()}
    assert runs["main_keywords"]["streams"]["keywords"] == runs["main"]["streams"]["keywords"]
    assert frr["main_keywords"] == frr["main"]
    assert runs["main_keywords"]["held_out_speakers"] == runs["all"]["held_out_speakers"]
    assert (runs["main_keywords"]["non_keyword_recordings"]
            == runs["all"]["non_keyword_recordings"] > runs["main"]["non_keyword_recordings"])
    assert "keywords from the main folder's speakers only" in (out / "rejection.md").read_text()
    capsys.readouterr()
    assert rejection.main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                           "--extra", str(extra), "--no-reference", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("error: --extra adds validation speakers: use it with "
                                       "--speakers val\n")
    assert rejection.main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                           "--speakers", "val", "--main-keywords", "--no-reference",
                           "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: --main-keywords keeps --extra's")
    assert rejection.main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                           "--reference-only", "--no-reference", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("error: --reference-only and --no-reference leave "
                                       "nothing to score\n")
    monkeypatch.setenv("KWS_REFERENCE_DIR", str(tmp_path / "no_reference_here"))
    assert rejection.main(["--model", str(tflite), "--data", str(data), "--split", str(split),
                           "--reference-only", "--out", str(out)]) == 2
    assert capsys.readouterr().err == ("error: --reference-only: the MLPerf Tiny reference "
                                       "model is not on this machine\n")


def test_offline_smoothing_is_the_live_detectors(tone_model):
    """The smoothing sweep averages posteriors recorded once unsmoothed: the same posteriors
    as the detector running with each window."""
    import numpy as np

    from benchmarks.rejection import smooth
    from edge_runtime.detector import DetectorConfig
    from edge_runtime.stream_score import record_posteriors
    from tests.tone_streams import keyword_stream

    x, _ = keyword_stream()
    times, raw = record_posteriors(tone_model, x, DetectorConfig(smooth_ms=0))
    for ms in (300, 800):
        config = DetectorConfig(smooth_ms=ms)
        live_times, live = record_posteriors(tone_model, x, config)
        np.testing.assert_array_equal(live_times, times)
        np.testing.assert_allclose(smooth(raw, config.smooth_hops), live, atol=1e-6)
        assert np.abs(live - raw).max() > 0.1  # the window changes them


def test_reference_front_end_and_model_when_present(tmp_path):
    from benchmarks.reference import ReferenceModel, reference_dir, reference_features

    if reference_dir() is None:
        pytest.skip("the MLPerf Tiny reference model is not on this machine: skipping")
    import numpy as np

    rng = np.random.default_rng(0)
    waves = (0.1 * rng.standard_normal((3, 16000))).astype(np.float32)
    feats = reference_features(waves)
    assert feats.shape == (3, 49, 10)
    # peak normalisation: the level of the input does not matter
    np.testing.assert_allclose(reference_features(waves * 0.01), feats, atol=1e-3)
    probs = ReferenceModel().predict_waves(waves)
    assert probs.shape == (3, 12)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.05)


def run_latency(models, clip_folder, out, mlperf) -> int:
    return latency.main(["--int8", str(models["int8"]), "--float", str(models["float32"]),
                         "--runs", "200", "--starts", "1", "--data", str(clip_folder),
                         "--clips-per-label", "1", "--mlperf", str(mlperf),
                         "--stream-seconds", "20", "--out", str(out), "--json"])


def check_pipeline(entry: dict) -> None:
    for key in ("frontend_ms", "invoke_ms", "end_to_end_ms", "bare_invoke_ms"):
        assert entry[key] > 0, key
    assert entry["p99_ms"]["end_to_end"] >= entry["end_to_end_ms"]
    assert entry["cpu_ms"]["end_to_end"] > 0
    assert entry["frontend_ms"] < entry["end_to_end_ms"]


def test_latency_benchmark_times_the_pipelines_side_by_side(tiny_models, clip_folder,
                                                            tmp_path, capsys):
    out = tmp_path / "results"
    assert run_latency(tiny_models, clip_folder, out, tmp_path / "no_mlperf") == 0
    data = read_result(out, "latency")
    captured = capsys.readouterr()
    assert json.loads(captured.out)["pipelines"] == data["pipelines"]
    assert "tf_signal skipped" in captured.err
    pipes = data["pipelines"]
    assert set(pipes) == {"kws_edge", "kws_edge_float32", "librosa", "tf_signal"}
    for name in ("kws_edge", "kws_edge_float32", "librosa"):
        check_pipeline(pipes[name])
    assert "not there" in pipes["tf_signal"]["skipped"]
    assert pipes["librosa"]["model"] == pipes["kws_edge"]["model"]
    assert isinstance(pipes["librosa"]["same_labels_as_kws_edge"], bool)
    assert data["clips"]["n"] == 4  # one clip of each of the 4 word folders
    assert 0 <= pipes["kws_edge"]["clips_correct"] <= 4
    t = data["targets"]
    assert t["speedup_vs_tf_signal"]["met"] is None
    assert t["speedup_vs_librosa"]["value"] == pytest.approx(
        pipes["librosa"]["end_to_end_ms"] / pipes["kws_edge"]["end_to_end_ms"], abs=0.01)
    assert all(isinstance(t[k]["met"], bool) for k in t if k != "speedup_vs_tf_signal")
    s = data["streaming"]
    assert s["default_hop_ms"] in [r["hop_ms"] for r in s["strides"]]
    for row in s["strides"]:
        assert row["rtf"] > 0 and row["rtf_cpu"] > 0 and row["keywords"] > 0
    by_hop = {r["hop_ms"]: r["invokes_per_s"] for r in s["strides"]}
    assert by_hop[20.0] > by_hop[200.0] > 0  # a shorter stride invokes more often
    for name in ("int8", "float32"):
        assert data["models"][name]["cold_start_s"] > 0
        assert data["models"][name]["peak_rss_mb"] > 0
    assert {"machine", "commit"} <= set(data)
    markdown = (out / "latency.md").read_text()
    assert "## Targets" in markdown and "{" not in markdown and str(tmp_path) not in markdown


@pytest.mark.skipif(reference_dir() is None,
                    reason="the MLPerf Tiny reference model (../shared/models) is not here")
def test_latency_benchmark_runs_the_mlperf_reference(tiny_models, clip_folder, tmp_path):
    out = tmp_path / "results"
    assert run_latency(tiny_models, clip_folder, out, reference_dir()) == 0
    data = json.loads((out / "latency.json").read_text())
    entry = data["pipelines"]["tf_signal"]
    check_pipeline(entry)
    check_pipeline(data["pipelines"]["tf_signal_eager"])
    assert entry["model"] == pipelines.shown(reference_dir() / "kws_ref_model.tflite")
    assert len(entry["predicted"]) == 4
    assert isinstance(data["targets"]["speedup_vs_tf_signal"]["met"], bool)


def test_peak_rss_is_the_child_process_alone(tiny_models, tmp_path):
    """The benchmark's own memory must not show up in the child's peak RSS."""
    ballast = np.ones(400 * 2**20 // 8)  # this process now holds 400 MB more
    wav = tmp_path / "clip.wav"
    write_wav(wav, speech_like(), 16000)
    seconds, cpu_seconds, rss_mb = latency.predict_process(tiny_models["int8"], wav)
    assert ballast[-1] == 1.0
    assert seconds > 0 and cpu_seconds > 0
    assert 10 < rss_mb < 300


def test_latency_benchmark_missing_data_folder_is_an_error(tiny_models, tmp_path, capsys):
    status = latency.main(["--int8", str(tiny_models["int8"]),
                           "--float", str(tiny_models["float32"]),
                           "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert status == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "latency.json").exists()


def test_frontend_benchmark_checks_parity_with_librosa(tmp_path, capsys):
    assert frontend.main(["--runs", "100", "--out", str(tmp_path), "--json"]) == 0
    data = json.loads((tmp_path / "frontend.json").read_text())
    assert json.loads(capsys.readouterr().out)["configs"] == data["configs"]
    for name, r in data["configs"].items():
        assert r["matches_librosa"] is True, name
        assert 0 <= r["max_abs_diff_vs_librosa"] <= frontend.PARITY
        assert r["numpy_ms"] > 0 and r["librosa_ms"] > 0 and r["streaming_ms_per_hop"] > 0
    assert (tmp_path / "frontend.md").is_file()


def test_librosa_pipeline_feeds_the_model_its_own_features(tiny_models):
    """The librosa pipeline gives the model the features it was trained on (kws-edge's)."""
    from edge_runtime.model import KwsModel

    model = KwsModel(tiny_models["int8"])
    librosa_way = pipelines.librosa_pipeline(model)
    y = speech_like()
    np.testing.assert_allclose(librosa_way.frontend(y), model.frontend(y), atol=1e-3)
    assert librosa_way.model == pipelines.shown(tiny_models["int8"])


def test_results_files_hold_no_absolute_paths(tmp_path):
    from benchmarks.results_io import ROOT, write_results

    data = {"model": str(ROOT / "artifacts" / "kws_int8.tflite"),
            "data": str(ROOT.parent / "shared" / "data" / "mini"),
            "runs": [{"folder": "/tmp/somewhere/else/run1"}], "note": "a / b"}
    write_results("paths", data, "# t", tmp_path)
    saved = json.loads((tmp_path / "paths.json").read_text())
    assert saved["model"] == "artifacts/kws_int8.tflite"
    assert saved["data"] == "../shared/data/mini"
    assert saved["runs"][0]["folder"] == "run1"
    assert saved["note"] == "a / b"


def test_architectures_benchmark_times_an_untrained_graph_beside_the_shipped_file(tmp_path,
                                                                                   capsys):
    """Each architecture converted as `kws convert` converts it, untrained; the shipped file
    (the same architecture, trained) measured in the same run: same graph, same size within
    the trained constants' difference."""
    from benchmarks import architectures
    from edge_runtime.manifest import load_manifest

    # the shipped file's architecture, its weights quantised as the shipped file's were
    manifest = load_manifest(architectures.SHIPPED.with_suffix(".manifest.json"))
    arch, per_tensor = manifest.arch, bool(manifest.notes.get("per_tensor_weights"))
    out = tmp_path / "results"
    assert architectures.main(["--arch", arch, "--runs", "5", "--out", str(out), "--json",
                               *(["--per-tensor"] if per_tensor else [])]) == 0
    data = read_result(out, "architectures")
    assert json.loads(capsys.readouterr().out) == data
    md = (out / "architectures.md").read_text()
    assert f"| `{arch}` (the shipped file, trained) |" in md
    assert ("One int8 scale per weight tensor throughout" in md) == per_tensor
    untrained, shipped = data["rows"]
    assert (untrained["arch"], untrained["trained"]) == (arch, False)
    assert (shipped["arch"], shipped["trained"]) == (arch, True)
    assert shipped["file"] == "artifacts/kws_int8.tflite"  # relative, as committed
    assert untrained["params"] == {"ds_cnn_w": 30_324, "ds_cnn_w96": 49_644}[arch]
    assert untrained["relus_clipped"]
    assert untrained["int8"]["bytes"] == pytest.approx(shipped["int8"]["bytes"], rel=0.01)
    assert not {"QUANTIZE", "DEQUANTIZE"} & set(untrained["int8_ops"])  # int8 end to end
    assert untrained["float32"]["bytes"] > 2 * untrained["int8"]["bytes"]
    for timing in (untrained["int8"], untrained["float32"], shipped["int8"]):
        assert 0 < timing["invoke"] < timing["end_to_end"]
        assert 0 < timing["frontend"] < timing["end_to_end"]


def test_architectures_benchmark_unknown_architecture_is_an_error(tmp_path, capsys):
    from benchmarks import architectures

    assert architectures.main(["--arch", "resnet", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown architecture(s) resnet") and err.count("\n") == 1
    assert not list(tmp_path.iterdir())

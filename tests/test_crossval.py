"""Pooling a recipe's speaker-fold validation runs."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from benchmarks.experiments.crossval import main, pool, rows
from edge_runtime.errors import KwsError


def write_fold(results, name: str, n: int, right: int, *, float_right: int | None = None,
               agree: int | None = None, per_class: dict | None = None, gate: bool = True,
               n_extra: int = 100, extra_right: int = 95) -> None:
    results.mkdir(exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps({
        "name": name, "gate_passed": gate, "n_val_main": n, "val_main_int8_accuracy": right / n,
        "val_main_float32_accuracy": (right if float_right is None else float_right) / n,
        "val_main_agreement_float32_int8": (n if agree is None else agree) / n,
        "val_main_per_class_int8": per_class or {"yes": 1.0, "go": 0.5},
        "n_val_extra": n_extra, "val_extra_int8_accuracy": extra_right / n_extra}))


def test_folds_are_summed_clip_by_clip(tmp_path):
    write_fold(tmp_path, "a_f0", 800, 720, float_right=724, agree=790,
               per_class={"yes": 1.0, "go": 0.6})
    write_fold(tmp_path, "a_f1", 200, 190, per_class={"yes": 0.5, "go": 1.0}, gate=False)
    p = pool("a", [0, 1], tmp_path, {0: {"yes": 30, "go": 10}, 1: {"yes": 10, "go": 30}})
    assert (p.n, p.correct, p.float32_correct, p.agree) == (1000, 910, 914, 990)
    assert p.accuracy == pytest.approx(0.91)  # not the mean of 0.90 and 0.95
    assert p.standard_error == pytest.approx(math.sqrt(0.91 * 0.09 / 1000))
    assert p.per_class == pytest.approx({"yes": 0.875, "go": 0.9})  # weighted by clips
    assert (p.n_extra, p.extra_correct, p.gates_passed) == (200, 190, 1)
    assert pool("a", [0, 1], tmp_path).per_class == pytest.approx({"yes": 0.75, "go": 0.8})


def test_differences_are_against_the_first_recipe(tmp_path):
    write_fold(tmp_path, "a_f0", 1000, 900)
    write_fold(tmp_path, "b_f0", 1000, 920)
    a, b = pool("a", [0], tmp_path), pool("b", [0], tmp_path)
    diff, se = b.difference(a)
    assert diff == pytest.approx(2.0)
    assert se == pytest.approx(100 * math.hypot(math.sqrt(.9 * .1 / 1000),
                                                math.sqrt(.92 * .08 / 1000)))
    table = rows([a, b])
    assert table[0]["int8 %"].startswith("90.00 ±") and table[1]["vs a (pt)"].startswith("+2.00")
    assert table[1]["weakest classes"].startswith("go 50.0")


def test_cli_prints_the_table_and_refuses_missing_folds(tmp_path, capsys):
    write_fold(tmp_path, "a_f0", 1000, 900)
    write_fold(tmp_path, "a_f1", 1000, 880)
    missing = tmp_path / "no-data"
    assert main(["a", "--folds", "0", "1", "--results", str(tmp_path), "--data",
                 str(missing), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["clips"] == 2000 and out[0]["int8 %"].startswith("89.00")
    assert main(["a", "--folds", "0", "2", "--results", str(tmp_path), "--data",
                 str(missing)]) == 2
    assert "no results for fold 2 of a" in capsys.readouterr().err
    assert main(["a", "--folds", "7", "--results", str(tmp_path), "--data",
                 str(missing)]) == 2


def test_the_reference_is_scored_on_the_same_fold_clips(real_data):
    from benchmarks.experiments.crossval import main_val_class_counts, reference_on_folds
    from benchmarks.reference import reference_dir

    if reference_dir() is None:
        pytest.skip("the MLPerf Tiny reference model is not on this machine")
    counts = main_val_class_counts(real_data, [1], 4)[1]
    anchor = reference_on_folds(real_data, [1], 4)
    assert anchor.anchor and anchor.n == sum(counts.values())
    assert set(anchor.per_class) == set(counts)
    weighted = sum(anchor.per_class[c] * counts[c] for c in counts) / anchor.n
    assert weighted == pytest.approx(anchor.accuracy, abs=1e-9)  # per class adds up
    assert rows([anchor])[0]["float32 %"] == "—"


def test_fold_runs_validate_on_their_fold_and_keep_the_test_split(real_data):
    from benchmarks.experiments.ship import CV_FOLDS, EXPERIMENTS, train_config
    from train.data import load_dataset

    def split(name: str):
        config = train_config(name, EXPERIMENTS[name], real_data).data.without_train_only()
        return load_dataset(config)

    base = split("speech_ema_150_xv")
    folds = [split(f"speech_ema_150_xv_f{k}") for k in range(CV_FOLDS)]
    ids = [[ds.example_id(e) for e in ds.test] for ds in (base, *folds)]
    assert all(i == ids[0] for i in ids)  # the test clips never change
    main_speakers = {e.speaker for ds in (base,) for e in ds.train + ds.val if e.speaker}
    fold_val = [{e.speaker for e in ds.val if e.speaker} for ds in folds]
    assert set().union(*fold_val) == main_speakers  # every training-side speaker validates once
    assert sum(map(len, fold_val)) == len(main_speakers)
    assert EXPERIMENTS["speech_cmn_150_xv_f1"].clip_percentile == 99.9  # converted as shipped


def test_an_experiment_s_batch_size_and_per_step_settings_reach_training(tmp_path):
    from benchmarks.experiments.ship import EXPERIMENTS, train_config
    from train.models import frontend_for

    base = train_config("b", EXPERIMENTS["speech_wd100w96ldvtlp_150_xv_f0"], tmp_path)
    half = train_config("h", EXPERIMENTS["speech_wd50w96ldvtlp_b50_150_xv_f1"], tmp_path)
    assert (base.batch_size, base.weight_decay, base.ema) == (100, 1.0, 0.998)
    assert (half.batch_size, half.weight_decay, half.ema) == (50, 0.5, 0.999)
    assert half.data.cv_fold == 1 and half.augment == base.augment and half.arch == base.arch
    double = train_config("d", EXPERIMENTS["speech_wd200w96ldvtlp_b200_150_xv_f0"], tmp_path)
    assert (double.batch_size, double.weight_decay, double.ema) == (200, 2.0, 0.996)
    assert double.data.cv_fold == 0 and double.augment == base.augment
    clean = train_config("c", EXPERIMENTS["speech_wd100w96ldvtlpln_150_xv_f0"], tmp_path)
    assert clean.data.drop_train.is_file() and base.data.drop_train is None
    assert replace(clean.data, drop_train=None) == base.data
    assert (clean.batch_size, clean.weight_decay, clean.ema, clean.augment) == (
        base.batch_size, base.weight_decay, base.ema, base.augment)
    sgd = train_config("s", EXPERIMENTS["speech_wd1w96ldvtlpsgd_150_xv_f1"], tmp_path)
    assert (sgd.sgd_momentum, sgd.lr, sgd.weight_decay) == (0.9, 0.1, 0.01)
    assert base.sgd_momentum == 0 and sgd.lr * sgd.weight_decay == base.lr * base.weight_decay
    assert (sgd.batch_size, sgd.ema, sgd.augment, sgd.arch) == (
        base.batch_size, base.ema, base.augment, base.arch)
    focal = train_config("f", EXPERIMENTS["speech_wd100w96ldvtlpfocal_150_xv_f0"], tmp_path)
    assert focal.focal_gamma == 2.0 and base.focal_gamma == 0
    assert replace(focal, focal_gamma=0.0, out_dir=base.out_dir,
                   run_name=base.run_name) == base
    noisy = train_config("n", EXPERIMENTS["speech_wd100w96ldvtlpnoise_150_xv_f0"], tmp_path)
    assert (noisy.augment.noise_prob, noisy.augment.noise_snr_db) == (1.0, (0.0, 20.0))
    assert replace(noisy.augment, noise_prob=0.8, noise_snr_db=(5.0, 20.0)) == base.augment
    quiet = train_config("q", EXPERIMENTS["speech_wd100w96ldvtlpquiet_150_xv_f0"], tmp_path)
    assert replace(quiet.augment, noise_snr_db=(5.0, 20.0)) == base.augment != quiet.augment
    half = train_config("h", EXPERIMENTS["speech_wd100w96ldvtlpquiet50_150_xv_f0"], tmp_path)
    assert (half.augment.noise_prob, half.augment.noise_snr_db) == (0.5, (10.0, 30.0))
    assert replace(half.augment, noise_prob=0.8) == quiet.augment
    dilated = train_config("l", EXPERIMENTS["speech_wd100w96ldvtlpdil_150_xv_f1"], tmp_path)
    assert (dilated.arch, base.arch) == ("ds_cnn_w96_ld_dil", "ds_cnn_w96_ld")
    assert dilated.data.cv_fold == 1
    assert replace(dilated, arch=base.arch, data=base.data, out_dir=base.out_dir,
                   run_name=base.run_name) == base
    shortcuts = train_config("r", EXPERIMENTS["speech_wd100w96ldvtlpres_150_xv_f0"], tmp_path)
    assert replace(shortcuts, arch=base.arch, out_dir=base.out_dir,
                   run_name=base.run_name) == base != shortcuts
    fine = train_config("h", EXPERIMENTS["speech_wd100w96ldvtlph10_150_xv_f0"], tmp_path)
    assert replace(fine, arch=base.arch, out_dir=base.out_dir,
                   run_name=base.run_name) == base != fine
    assert frontend_for(fine.arch).hop_ms == 10.0 and frontend_for(base.arch).hop_ms == 20.0
    for k in (0, 1):
        fold_run = f"speech_wd100w96ldvtlp_150_xv_f{k}"
        prior = EXPERIMENTS[f"speech_wd100w96ldvtlpkp_150_xv_f{k}"]
        assert (prior.model_from, prior.keyword_prior, prior.cv_fold) == (fold_run, 1.0, k)
        assert replace(prior, idea="", model_from=None, keyword_prior=0.0) == replace(
            EXPERIMENTS[fold_run], idea="")


def test_fold_split_files_give_the_rejection_benchmark_each_folds_speakers(real_data, tmp_path,
                                                                            capsys):
    from benchmarks.experiments.speaker_folds import fold_split
    from benchmarks.rejection import held_out_speakers

    assert main(["--folds", "1", "2", "--data", str(real_data), "--write-splits",
                 str(tmp_path)]) == 0
    one, two = (held_out_speakers(tmp_path / f"fold_{k}.json", "val") for k in (1, 2))
    assert one == {e.speaker for e in fold_split(real_data, 1, 4).val if e.speaker}
    assert one and two and not one & two  # folds are disjoint
    test = held_out_speakers(tmp_path / "fold_1.json", "test")
    assert test and not test & (one | two)
    assert json.loads((tmp_path / "fold_1.json").read_text())["rule"].count("fold 1")
    assert main(["--folds", "0", "--data", str(real_data)]) == 2
    assert "name at least one recipe" in capsys.readouterr().err


def sweep_file(path, fold: int, keywords: int, misses: dict, events: dict, minutes=20.0,
               clips: dict | None = None, recordings: int | None = None):
    """A rejection JSON of fold ``fold``'s validation streams with the given counts (and, with
    ``clips``, the distinct recordings that fired at each threshold)."""
    hours = 2 * minutes / 60
    path.mkdir(parents=True, exist_ok=True)
    counted = ({} if clips is None else {"non_keyword_recordings": recordings})
    (path / "rejection.json").write_text(json.dumps({**counted,
        "data": "mini", "extra": [], "split": f"fold_{fold}.json", "speaker_list": "val",
        "even_words": True, "minutes_per_stream": minutes,
        "detector": {"hop_ms": 100.0, "smooth_ms": 800.0, "refractory_ms": 1000.0},
        "streams": {"keywords": {"keywords": keywords, "words": 2 * keywords},
                    "other_words": {"keywords": 0, "words": 300},
                    "running_speech": {"keywords": 0, "words": 1500}},
        "models": [{"name": "kws-edge kws_int8.tflite", "sweep": [
            {"threshold": t, "false_reject_rate": round(misses[t] / keywords, 4),
             "non_keyword_fa_per_hour": round(events[t] / hours, 2),
             **({} if clips is None else {"clips_fired": clips[t]})} for t in misses]}]}))


def test_fold_streams_share_one_threshold_over_all_folds(tmp_path):
    from benchmarks.experiments.fold_streams import pool_sweeps, read_sweep, stream_rows

    # alone, fold 0 would take 0.3 (8% misses) and fold 1 0.5 (10%); together 0.3 misses
    # 14 of 200 keywords (7%) and 0.5 22 (11%): the pooled threshold is 0.3 for both
    sweep_file(tmp_path / "a_f0", 0, 100, {0.3: 8, 0.5: 11}, {0.3: 40, 0.5: 30})
    sweep_file(tmp_path / "a_f1", 1, 100, {0.3: 6, 0.5: 11}, {0.3: 20, 0.5: 5})
    sweeps = [read_sweep(tmp_path / f"a_f{k}" / "rejection.json", k) for k in (0, 1)]
    assert (sweeps[0].misses, sweeps[0].false_accepts) == ({0.3: 8, 0.5: 11}, {0.3: 40, 0.5: 30})
    p = pool_sweeps("a", sweeps, 0.10)
    assert (p.threshold, p.misses, p.false_accepts, p.keywords) == (0.3, 14, 60, 200)
    assert p.hours == pytest.approx(4 / 3) and p.per_hour == pytest.approx(45.0)
    assert p.false_reject_rate == pytest.approx(0.07)
    none = pool_sweeps("a", sweeps, 0.05)
    assert none.threshold is None and math.isinf(none.per_hour)
    with pytest.raises(KwsError, match="not streams of fold 1"):
        read_sweep(tmp_path / "a_f0" / "rejection.json", 1)
    # files written before recordings were counted pool without them
    assert p.clips_fired is None and stream_rows([p])[0]["recordings that fired"] == "—"


def test_pooled_fold_streams_count_the_recordings_that_fired(tmp_path):
    from benchmarks.experiments.fold_streams import pool_sweeps, read_sweep, stream_rows

    sweep_file(tmp_path / "a_f0", 0, 100, {0.3: 8, 0.5: 11}, {0.3: 40, 0.5: 30},
               clips={0.3: 3, 0.5: 2}, recordings=60)
    sweep_file(tmp_path / "a_f1", 1, 100, {0.3: 6, 0.5: 11}, {0.3: 20, 0.5: 5},
               clips={0.3: 2, 0.5: 1}, recordings=70)
    sweeps = [read_sweep(tmp_path / f"a_f{k}" / "rejection.json", k) for k in (0, 1)]
    p = pool_sweeps("a", sweeps, 0.10)  # 0.3, as above: the folds' recordings add up
    assert (p.threshold, p.false_accepts, p.clips_fired, p.recordings) == (0.3, 60, 5, 130)
    assert stream_rows([p])[0]["recordings that fired"] == "5 of 130"


def test_crossval_measures_and_pools_fold_streams(tmp_path, capsys):
    from benchmarks.experiments.fold_streams import pool_sweeps, read_sweep
    from benchmarks.experiments.speaker_folds import fold_split
    from tests.fixtures_data import make_fake_dataset
    from tests.model_factory import build_models

    data = make_fake_dataset(tmp_path / "sc", ["yes", "no", "bed", "cat"], speakers=24,
                             per_speaker=1, mini_layout=True, silence_clips=4)
    assert all(fold_split(data, k, 4).val for k in (0, 1))
    results, streams = tmp_path / "results", tmp_path / "streams"
    build_models(tmp_path / "m", labels=["_silence_", "_unknown_", "yes", "no"], name="kws")
    for k in (0, 1):
        write_fold(results, f"a_f{k}", 100, 90)
        row = json.loads((results / f"a_f{k}.json").read_text())
        (results / f"a_f{k}.json").write_text(json.dumps({**row, "folder": str(tmp_path / "m")}))
    args = ["a", "--folds", "0", "1", "--results", str(results), "--data", str(data),
            "--streams", str(streams), "--stream-minutes", "0.5"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    files = [streams / f"a_f{k}" / "rejection.json" for k in (0, 1)]
    assert all(f.is_file() for f in files) and (streams / "fold_1.json").is_file()
    sweeps = [read_sweep(f, k) for k, f in enumerate(files)]
    (row,) = out["streams"]
    assert row["keywords"] == sum(s.keywords for s in sweeps) > 0
    assert row["hours"] == pytest.approx(2 * 2 * 0.5 / 60, abs=0.01)
    # the pooled point is the one threshold with the fewest events at <= 10% misses overall
    ok = [t for t in sweeps[0].misses
          if sum(s.misses[t] for s in sweeps) <= 0.1 * row["keywords"]]
    if ok:
        best = min(sum(s.false_accepts[t] for s in sweeps) for t in ok)
        assert row["false accepts (events)"].startswith(f"{best} ±")
        assert float(row["threshold"]) in ok
        fired, of = row["recordings that fired"].split(" of ")
        assert int(of) == sum(s.recordings for s in sweeps) > 0
        assert 0 <= int(fired) <= min(best, int(of)) and (int(fired) == 0) == (best == 0)
    else:
        assert row["threshold"] == "none reaches 10% FRR"
    assert out["accuracy"][0]["clips"] == 200
    # measured once: a second call reads the files
    stamps = [f.stat().st_mtime_ns for f in files]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "one threshold for all folds" in text and "| a | 0 1 |" in text
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert pool_sweeps("a", sweeps, 0.1).threshold == (float(row["threshold"]) if ok else None)
    # fold files of other streams are not pooled with these
    sweep_file(streams / "b_f0", 0, 5, {0.05: 0}, {0.05: 0}, minutes=0.25)
    sweep_file(streams / "b_f1", 1, 5, {0.05: 0}, {0.05: 0}, minutes=0.25)
    for k in (0, 1):
        write_fold(results, f"b_f{k}", 100, 90)
    assert main(["b", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: fold 0: the rejection files") and len(err.splitlines()) == 1
    # files kept from another stream length are not reused for this one
    assert main(["b", *args[1:]]) == 2
    assert capsys.readouterr().err == (f"error: {streams / 'b_f0'}: measured on 0.25-min "
                                       "streams, not 0.5 (use a new --streams folder)\n")
    assert main([*args, "--stream-minutes", "0"]) == 2
    assert capsys.readouterr().err == "error: --stream-minutes must be > 0, got 0\n"
    assert main(["c", *args[1:]]) == 2  # no results, nothing measured
    assert "no results for fold 0 of c" in capsys.readouterr().err


def test_the_reference_meets_the_same_fold_streams(tmp_path, capsys):
    from benchmarks.experiments.fold_streams import read_sweep
    from benchmarks.reference import REFERENCE_NAME, reference_dir
    from tests.fixtures_data import make_fake_dataset
    from tests.model_factory import build_models

    if reference_dir() is None:
        pytest.skip("the MLPerf Tiny reference model is not on this machine")
    data = make_fake_dataset(tmp_path / "sc", ["yes", "no", "bed"], speakers=24,
                             per_speaker=1, mini_layout=True, silence_clips=4)
    results, streams = tmp_path / "results", tmp_path / "streams"
    build_models(tmp_path / "m", labels=["_silence_", "_unknown_", "yes", "no"], name="kws")
    write_fold(results, "a_f2", 100, 90)
    row = json.loads((results / "a_f2.json").read_text())
    (results / "a_f2.json").write_text(json.dumps({**row, "folder": str(tmp_path / "m")}))
    assert main(["a", "--folds", "2", "--results", str(results), "--data", str(data),
                 "--streams", str(streams), "--stream-minutes", "0.25", "--reference",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    path = streams / "reference_f2" / "rejection.json"
    ours, theirs = read_sweep(streams / "a_f2" / "rejection.json", 2), read_sweep(
        path, 2, REFERENCE_NAME)
    assert ours.streams == theirs.streams and ours.keywords == theirs.keywords
    # the anchor's file holds the anchor alone (the fold model is not scored twice)
    assert [m["name"] for m in json.loads(path.read_text())["models"]] == [REFERENCE_NAME]
    assert [r["recipe"] for r in out["streams"]] == ["a", "MLPerf Tiny reference (anchor)"]
    assert out["streams"][1]["keywords"] == theirs.keywords


def test_a_fold_run_without_its_model_folder_is_an_error_not_a_traceback(tmp_path):
    from benchmarks.experiments.fold_streams import fold_model

    (tmp_path / "r_f0.json").write_text(json.dumps({"name": "r_f0", "int8_accuracy": 0.9}))
    with pytest.raises(KwsError, match="r_f0.json: names no model folder"):
        fold_model(tmp_path, "r_f0")
    (tmp_path / "r_f1.json").write_text(json.dumps({"name": "r_f1", "folder": str(tmp_path)}))
    with pytest.raises(KwsError, match="int8 file is gone"):
        fold_model(tmp_path, "r_f1")


def test_the_keyword_prior_raises_the_keywords_the_training_split_has_fewest_of(real_data):
    """On the real folders, ``on``/``off`` (the mini set's clips alone) get raised and the
    keywords of ~1,000 extra clips lowered: offsets of the ten keywords, summing to 0."""
    from benchmarks.experiments.ship import EXPERIMENTS, keyword_offsets

    name = "speech_wd100w96ldvtlpkp_150_xv_f0"
    offsets = keyword_offsets(name, EXPERIMENTS[name], real_data)
    assert sorted(offsets) == sorted(["yes", "no", "up", "down", "left", "right", "on", "off",
                                      "stop", "go"])
    assert min(offsets["on"], offsets["off"]) > 0.3 > 0 > max(offsets["up"], offsets["down"])
    assert abs(sum(offsets.values())) < 1e-3

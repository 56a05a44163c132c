"""The README's command lines for the shipped model's recipe (``kws train`` + ``kws convert``,
or ``kws pipeline``) train and convert it as its experiment (benchmarks/experiments/ship.py)
did: a copied command reproduces the model."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_RUN, SHIPPED_FILE = "speech_wd100w96_150_xv", "speech_wd100w96_150_xv_ub05"


def readme_command(program: str) -> list[str]:
    """The argument list of the README's shipped-recipe ``kws <program>`` command."""
    text = (ROOT / "README.md").read_text()
    block = text.split("# the shipped model's recipe", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", block)
    line = next(x for x in joined.splitlines() if x.startswith(f"kws {program} "))
    return shlex.split(line)[1:]


@pytest.fixture(scope="module")
def parser():
    pytest.importorskip("tensorflow")
    from kws.cli import build_parser

    return build_parser()


def same_training(ours, theirs) -> None:
    """``ours`` trains as ``theirs`` (TrainConfigs): same recipe, same splits of the same
    folders (by name), whatever the output and tracking settings."""
    skip = {"data", "out_dir", "cache_dir", "track", "tracking_uri", "experiment", "run_name",
            "log_keras_model", "verbose"}
    a = {k: v for k, v in asdict(ours).items() if k not in skip}
    b = {k: v for k, v in asdict(theirs).items() if k not in skip}
    assert a == b
    data_a, data_b = asdict(ours.data), asdict(theirs.data)
    assert [Path(d).name for d in data_a.pop("extra_dirs")] == [
        Path(d).name for d in data_b.pop("extra_dirs")] == ["speech_commands_extra"]
    assert Path(data_a.pop("data_dir")).name == Path(data_b.pop("data_dir")).name
    assert data_a == data_b


def shipped_experiment():
    from benchmarks.experiments.ship import EXPERIMENTS, train_config

    exp = EXPERIMENTS[SHIPPED_FILE]
    assert exp.model_from == SHIPPED_RUN and not EXPERIMENTS[SHIPPED_RUN].init_from
    shipped = json.loads((ROOT / "artifacts" / "kws_int8.manifest.json").read_text())
    assert shipped["arch"] == exp.arch  # the names above follow the model in artifacts/
    return exp, train_config(SHIPPED_RUN, EXPERIMENTS[SHIPPED_RUN],
                             Path("speech_commands_mini"))


def test_the_readme_training_and_conversion_commands_are_the_shipped_recipe(parser):
    from train.cli import train_config

    exp, theirs = shipped_experiment()
    same_training(train_config(parser.parse_args(readme_command("train"))), theirs)
    args = parser.parse_args(readme_command("convert"))
    assert (args.unknown_bias, args.clip_percentile, args.calibration, args.per_tensor) == (
        exp.unknown_bias, exp.clip_percentile, exp.calibration, exp.per_tensor)
    assert Path(args.keras) == Path(readme_command("train")[-1])  # the trained model's folder


def test_the_readme_pipeline_command_is_the_shipped_recipe(parser):
    from kws.pipeline import pipeline_config

    exp, theirs = shipped_experiment()
    config = pipeline_config(parser.parse_args(readme_command("pipeline")))
    same_training(config.train, theirs)
    assert (config.unknown_bias, config.clip_percentile, config.calibration,
            config.per_tensor) == (exp.unknown_bias, exp.clip_percentile, exp.calibration,
                                   exp.per_tensor)

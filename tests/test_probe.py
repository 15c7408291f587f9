"""The validity probe: it reads what is there, and the gate fails a benchmark whose fine cue
survives the default pipeline or is missing at the resizer's input size."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pipeline.data.probe import (INPUT_ROLE, MODEL_ROLE, ProbeRow, attenuated_problems, fit_probe,
                                 gate_problems, majority_error, probe_error, probe_rows,
                                 spectral_features)
from pipeline.data.synth_imagenet import FINE_CUES, SynthSpec, fine_cue_of, sample
from pipeline.loaders.transforms import eval_transform
from pipeline.stages.probe import probe_sizes

VALID = SynthSpec(classes=8, train_per_class=24, val_per_class=12, min_side=80, max_side=96,
                  fine_cycles=(28.0, 32.0), fine_amplitude=(0.12, 0.2),
                  nuisance_cycles=(6.0, 20.0), nuisance_amplitude=(0.03, 0.12),
                  jpeg_quality=92, seed=3)
GATE = {"max_model_error_share": 0.8, "max_input_error": 0.1}


def eval_features(spec: SynthSpec, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Probe features of a split's eval inputs at ``size`` (uncompressed renders)."""
    per_class = spec.train_per_class if split == "train" else spec.val_per_class
    transform = eval_transform(size, crop=0.875)
    images, labels = [], []
    for label in range(spec.classes):
        for index in range(per_class):
            pixels = torch.from_numpy(sample(spec, split, label, index)).permute(2, 0, 1)
            images.append(transform(pixels.contiguous()))
            labels.append(label)
    return spectral_features(torch.stack(images)), torch.tensor(labels)


def rows_of(spec: SynthSpec):
    data = {size: [eval_features(spec, s, size) for s in ("train", "val")] for size in (32, 64)}
    features = {size: (d[0][0], d[1][0]) for size, d in data.items()}
    labels = (data[32][0][1], data[32][1][1])
    return probe_rows(features, labels, {32: MODEL_ROLE, 64: INPUT_ROLE},
                      {"fine cue": (fine_cue_of, len(FINE_CUES))})


def test_features_are_fixed_and_shaped():
    images = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a, b = spectral_features(images), spectral_features(images.clone())
    assert a.shape == (5, 8 * 4 + 3) and torch.equal(a, b)


def test_probe_reads_a_separable_cue_and_not_noise():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=gen, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    x[:, 0] += 2 * y - 1  # a margin between the classes
    assert probe_error((x[:100], y[:100]), (x[100:], y[100:]), 2) == 0
    noise = torch.randint(0, 2, (200,), generator=gen)
    assert probe_error((x[:100], noise[:100]), (x[100:], noise[100:]), 2) > 0.3
    assert majority_error(torch.tensor([0, 0, 0, 1]), 2) == 0.25
    fit = fit_probe(x[:100], y[:100], 2)
    assert fit.predict(x[:3]).shape == (3,)


def test_the_default_benchmark_passes_the_gate():
    rows = rows_of(VALID)
    by_size = {r.size: r for r in rows}
    assert by_size[32].share > 0.8 and by_size[64].error < 0.1
    assert gate_problems(rows, **GATE) == []


def test_gate_fails_when_the_fine_cue_survives_the_model_size():
    """A coarse 'fine' texture (8 to 12 cycles, below 32 px's Nyquist) is still there after
    the default resize: the benchmark could not decide anything."""
    rows = rows_of(dataclasses.replace(VALID, fine_cycles=(8.0, 12.0),
                                       nuisance_cycles=(20.0, 30.0)))
    problems = gate_problems(rows, **GATE)
    assert len(problems) == 1
    assert "survives the default pipeline at 32 px" in problems[0]
    assert "max_model_error_share" in problems[0]


def test_gate_fails_when_the_cue_is_missing_at_the_input_size():
    rows = rows_of(dataclasses.replace(VALID, fine_amplitude=(0.0, 0.0)))
    problems = gate_problems(rows, **GATE)
    assert any("not readable at the resizer's input size 64 px" in p for p in problems)


def attenuated_spec(params) -> SynthSpec:
    """params.yaml's second regime (synthetic.attenuated over synthetic.imagenet), as small
    as VALID."""
    changed = {k: tuple(v) for k, v in params["synthetic"]["attenuated"].items()}
    return dataclasses.replace(VALID, **changed)


def test_the_second_regime_passes_its_gate_and_fails_the_first(params):
    """params.yaml's attenuated set: its fine cue readable at 32 px yet weaker there than at
    64 px (its gate passes), so it is not the first regime (that gate fails on it); and the
    first regime's set is no second regime (nothing readable at 32 px)."""
    gate = params["probe"]["attenuated"]
    rows = rows_of(attenuated_spec(params))
    by_size = {r.size: r for r in rows}
    assert by_size[32].share < gate["max_model_error_share"]
    assert by_size[32].error - by_size[64].error > gate["min_model_loss"]
    assert attenuated_problems(rows, **gate, max_input_error=0.1) == []
    assert "survives the default pipeline at 32 px" in gate_problems(rows, **GATE)[0]
    first = attenuated_problems(rows_of(VALID), **gate, max_input_error=0.1)
    assert len(first) == 1 and "not readable at the model size 32 px" in first[0]


@pytest.mark.parametrize("share, input_error, expected", [
    (0.3, 0.05, []), (0.9, 0.05, ["not readable at the model size"]),
    (0.05, 0.03, ["not attenuated at the model size"]),
    (0.3, 0.2, ["not readable at the resizer's input size", "not attenuated at the model size"])])
def test_second_regime_gate_thresholds(share, input_error, expected):
    """The fine cue's share of chance at 32 px and its error at 64 px against the gate
    (at most 0.5 of chance, at least 3 points above 64 px's, at most 10% at 64 px)."""
    rows = [ProbeRow("fine cue", 32, MODEL_ROLE, share * 0.75, 0.75, 10, 10),
            ProbeRow("fine cue", 64, INPUT_ROLE, input_error, 0.75, 10, 10),
            ProbeRow("class", 32, MODEL_ROLE, 0.9, 0.9, 10, 10)]
    problems = attenuated_problems(rows, max_model_error_share=0.5, min_model_loss=0.03,
                                   max_input_error=0.1)
    assert len(problems) == len(expected)
    assert all(part in line for part, line in zip(expected, problems))


def test_probe_sizes_follow_the_runs():
    params = {"classification": {"baselines": {"default": {"input_size": 32}},
                                 "learned": {"a": {"input_size": 64}},
                                 "joint": {"b": {"input_size": 96}}}}
    assert probe_sizes(params) == {32: MODEL_ROLE, 64: INPUT_ROLE, 96: INPUT_ROLE}


@pytest.mark.parametrize("share, error, expected", [(0.9, 0.05, 0), (0.5, 0.05, 1),
                                                    (0.9, 0.3, 1), (0.5, 0.3, 2)])
def test_gate_thresholds(share, error, expected):
    from pipeline.data.probe import ProbeRow
    rows = [ProbeRow("fine cue", 32, MODEL_ROLE, share * 0.75, 0.75, 10, 10),
            ProbeRow("fine cue", 64, INPUT_ROLE, error, 0.75, 10, 10),
            ProbeRow("class", 32, MODEL_ROLE, 0.0, 0.9, 10, 10)]
    assert len(gate_problems(rows, **GATE)) == expected

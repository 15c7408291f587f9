"""The IQA set's validity probe: a ridge read-out finds a linear target and not noise, and the
gate fails an IQA set whose fine quality survives the default pipeline or is missing at the
resizer's input size."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline.data.probe import (INPUT_ROLE, MODEL_ROLE, QualityRow, quality_gate_problems,
                                 quality_rows, ridge_srcc, spectral_features)
from pipeline.data.synth_ava import TRUTH_FILE, SynthAvaSpec, generate
from pipeline.loaders.transforms import eval_transform
from pipeline.stages.probe import probe_sizes

VALID = SynthAvaSpec(train_images=160, test_images=60, min_side=96, max_side=192,
                     votes=(78, 549), contrast=(0.3, 1.0), detail_cycles=(32.0, 36.0),
                     detail_amplitude=0.12, fine_weight=0.5, jpeg_quality=(88, 95),
                     tag0_fraction=0.25, seed=5)
GATE = {"max_model_srcc": 0.3, "min_input_srcc": 0.7}


def rows_of(spec: SynthAvaSpec, tmp_path) -> list[QualityRow]:
    """Probe rows of a generated set's eval inputs (bicubic, as the IQA default) at 32/64 px."""
    generate(spec, tmp_path)
    truth = pd.read_csv(tmp_path / TRUTH_FILE)
    features, targets = {}, {}
    for size in (32, 64):
        transform = eval_transform(size, crop=0.875, interpolation="bicubic")
        parts = []
        for split in ("train", "test"):
            chosen = truth[truth["split"] == split]
            images = [transform(torch.from_numpy(np.asarray(Image.open(io.BytesIO(
                (tmp_path / "images" / f"{i}.jpg").read_bytes())).convert("RGB")))
                .permute(2, 0, 1).contiguous()) for i in chosen["image_id"]]
            parts.append(spectral_features(torch.stack(images).float() / 255))
        features[size] = tuple(parts)
    for name, column in (("fine quality", "fine_quality"), ("coarse quality", "coarse_quality")):
        targets[name] = tuple(torch.tensor(truth.loc[truth["split"] == s, column].to_numpy())
                              for s in ("train", "test"))
    return quality_rows(features, targets, {32: MODEL_ROLE, 64: INPUT_ROLE})


def test_ridge_reads_a_linear_target_and_not_noise():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=gen, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0, 0, 0.5, 0], dtype=torch.float64)
    noise = torch.randn(200, generator=gen, dtype=torch.float64)
    assert ridge_srcc((x[:150], y[:150]), (x[150:], y[150:])) > 0.99
    assert abs(ridge_srcc((x[:150], noise[:150]), (x[150:], noise[150:]))) < 0.35


def test_the_default_iqa_set_passes_the_gate(tmp_path):
    rows = rows_of(VALID, tmp_path)
    by = {(r.target, r.size): r.srcc for r in rows}
    assert by["fine quality", 32] < 0.3 < 0.7 < by["fine quality", 64]
    assert by["coarse quality", 32] > 0.3 and by["coarse quality", 64] > 0.3
    assert quality_gate_problems(rows, **GATE) == []


def test_gate_fails_when_the_detail_survives_the_model_size(tmp_path):
    """Detail at 8 to 12 cycles, below 32 px's Nyquist: the default pipeline keeps it."""
    rows = rows_of(dataclasses.replace(VALID, detail_cycles=(8.0, 12.0)), tmp_path)
    problems = quality_gate_problems(rows, **GATE)
    assert len(problems) == 1 and "survives the default pipeline at 32 px" in problems[0]
    assert "probe.max_model_srcc" in problems[0]


def test_gate_fails_when_the_detail_is_missing_at_the_input_size(tmp_path):
    rows = rows_of(dataclasses.replace(VALID, detail_amplitude=0.0), tmp_path)
    problems = quality_gate_problems(rows, **GATE)
    assert any("not readable at the resizer's input size 64 px" in p for p in problems)


@pytest.mark.parametrize("model, inputs, expected", [(0.1, 0.9, 0), (0.5, 0.9, 1),
                                                      (0.1, 0.5, 1), (0.5, 0.5, 2)])
def test_gate_thresholds(model, inputs, expected):
    rows = [QualityRow("fine quality", 32, MODEL_ROLE, model, 10, 10),
            QualityRow("fine quality", 64, INPUT_ROLE, inputs, 10, 10),
            QualityRow("mean score", 32, MODEL_ROLE, 0.9, 10, 10)]
    assert len(quality_gate_problems(rows, **GATE)) == expected


def test_probe_sizes_follow_the_iqa_runs():
    params = {"iqa": {"baselines": {"default": {"input_size": 32}},
                      "learned": {"a": {"input_size": 64}}, "joint": {}}}
    assert probe_sizes(params, "iqa") == {32: MODEL_ROLE, 64: INPUT_ROLE}

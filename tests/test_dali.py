"""The DALI loaders: same images, order and sharding as the torch loader; the CPU default
(DALI decode + torchvision resize) bit for bit the torch loader's batches, the all-DALI
pipeline within a stated tolerance; deterministic, AVA targets, and a training epoch through
them. CPU here; the GPU tests run where torch sees a GPU."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline.loaders import LoaderSpec, build_loader
from pipeline.loaders.common import AVA_COLUMNS, batches_per_rank
from pipeline.loaders.dali_loader import build_dali_loader
from pipeline.loaders.torch_loader import read_rgb
from pipeline.params.runs import Run
from tests.conftest import deep_merge
from tests.test_loaders import SHARDINGS

pytest.importorskip("nvidia.dali", reason="DALI is not installed (nvidia-dali-cuda130)")
pytest.importorskip("nvidia.dali.plugin.pytorch", reason="DALI's PyTorch plugin is missing")

NO_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")
#: Where the DALI loaders run on a CPU: the all-DALI pipeline, and DALI decode + torch resize.
CPU_PLACES = ["cpu", "hybrid"]


def spec(train: bool, **kw) -> LoaderSpec:
    return LoaderSpec(**{"size": 24, "batch_size": 4, "workers": 1, "train": train, "seed": 1,
                         "scale": (0.35, 1.0), **kw})


def images_of(loader) -> tuple[torch.Tensor, torch.Tensor]:
    batches = list(loader)
    return torch.cat([x.cpu() for x, _ in batches]), torch.cat([t for _, t in batches])


def levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| of two uint8 batches, in 8-bit levels."""
    return (a.int() - b.int()).abs().float()


def test_dali_cpu_decodes_like_pil(photos):
    """Both are libjpeg-turbo with the same settings: the decoded pixels are identical."""
    from nvidia.dali import fn, pipeline_def, types

    files = photos["path"].tolist()

    @pipeline_def(batch_size=len(files), num_threads=1, device_id=None)
    def decode():
        jpegs, _ = fn.readers.file(files=files)
        return fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)

    pipe = decode()
    pipe.build()
    (out,) = pipe.run()
    for k, path in enumerate(files):
        assert np.array_equal(np.asarray(out.at(k)), read_rgb(path).permute(1, 2, 0).numpy())


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [16, 56, 224])
def test_hybrid_is_the_torch_loader_bit_for_bit(photos, train, interpolation, size):
    """DALI decode (the crop's window when training) + torchvision's resize: the same crop
    boxes, flips, decoded pixels and kernel as the reference, so the same bytes; the EXIF-
    rotated photo included (its window is taken in upright coordinates, as the reference's)."""
    s = spec(train, size=size, interpolation=interpolation, batch_size=3, workers=2)
    reference, ref_targets = images_of(build_loader("torch", photos, s))
    hybrid, targets = images_of(build_dali_loader(photos, s, device="hybrid"))
    assert hybrid.dtype == torch.uint8 and hybrid.shape == reference.shape
    assert torch.equal(targets, ref_targets) and torch.equal(hybrid, reference)


# Eval equivalence, the all-DALI pipeline on CPU vs torchvision, in 8-bit levels.
# Same by construction: decoded pixels (test above), EXIF orientation, resized size (shorter
# side round(size/crop), longer side truncated), crop corner (halves rounded up), sample
# positions, and the passes (columns, then rows, rounded to uint8 between them:
# dali_loader.resize_separable). What differs is the weights' arithmetic: torchvision's uint8
# path (PIL's algorithm) uses fixed-point weights, DALI floats, so a result near .5 rounds to
# the neighbouring level. Measured on these photos and on hard-edged 4:4:4 / 4:2:2 / 4:2:0
# JPEGs upscaled to 224 px and downscaled to 16-64 px: max 1 level at 37 px and above (2 for
# bilinear at 224 px on the 64 x 300 image), up to 4 for bicubic at 16 px (a 20x downscale's
# wide filter sums more rounded weights), mean <= 0.04. With one DALI resize (a float
# intermediate, so the cubic kernel's overshoot at a saturated edge is not clipped between
# the passes as the reference clips it) bicubic was 17 levels off on the hard edges.
TOLERANCE = {"bilinear": (2.0, 0.05), "bicubic": (4.0, 0.05)}


def assert_within_tolerance(manifest, interpolation: str, size: int, crop: float) -> None:
    """The all-DALI CPU eval batches within :data:`TOLERANCE` of the torch loader's."""
    s = spec(False, size=size, crop=crop, interpolation=interpolation, batch_size=8)
    reference, ref_targets = images_of(build_loader("torch", manifest, s))
    dali, targets = images_of(build_dali_loader(manifest, s, device="cpu"))
    assert dali.shape == reference.shape == (len(manifest), 3, size, size)
    assert torch.equal(targets, ref_targets)
    diff = levels(dali, reference)
    max_levels, mean_levels = TOLERANCE[interpolation]
    assert diff.max() <= max_levels and diff.mean() <= mean_levels, (
        f"max {diff.max():.2f}, mean {diff.mean():.3f} levels")


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size,crop", [(16, 0.875), (56, 0.875), (37, 0.7), (224, 0.875)])
def test_eval_matches_torchvision(photos, interpolation, size, crop):
    assert_within_tolerance(photos, interpolation, size, crop)


@pytest.fixture(scope="module")
def hard_edges(tmp_path_factory) -> pd.DataFrame:
    """Small JPEGs of saturated rectangles (0 and 255 per channel) on black, stored 4:4:4,
    4:2:2 and 4:2:0 in turn: the edges where a cubic kernel overshoots most."""
    folder = tmp_path_factory.mktemp("hard_edges")
    rng = np.random.default_rng(0)
    paths = []
    for index, (height, width) in enumerate([(60, 80), (97, 130), (120, 90), (75, 75),
                                             (41, 63), (64, 150), (150, 200)]):
        pixels = np.zeros((height, width, 3), np.uint8)
        for _ in range(12):
            top, left = rng.integers(0, height), rng.integers(0, width)
            tall, wide = rng.integers(2, height // 3 + 3), rng.integers(2, width // 3 + 3)
            pixels[top:top + tall, left:left + wide] = rng.choice([0, 255], 3)
        path = folder / f"{index}.jpg"
        Image.fromarray(pixels).save(path, quality=95, subsampling=index % 3)
        paths.append(str(path))
    return pd.DataFrame({"path": paths, "label": range(len(paths))})


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [16, 64, 224])
def test_eval_matches_torchvision_on_hard_edges(hard_edges, interpolation, size):
    """Upscaled (224 px from 41-150 px) and downscaled, at every chroma subsampling."""
    assert_within_tolerance(hard_edges, interpolation, size, 0.875)


@pytest.mark.parametrize("place", CPU_PLACES)
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("n,world,batch", SHARDINGS[:5])
def test_same_rows_and_batches_as_torch(small, n, world, batch, train, place):
    """Per rank: the torch loader's rows in the torch loader's order and batches; eval covers
    every image exactly once over all ranks, and all ranks yield the same number of batches."""
    manifest = small.iloc[:n]
    seen = []
    for rank in range(world):
        s = spec(train, batch_size=batch, shard=(rank, world), size=16)
        dali = [t.tolist() for _, t in build_dali_loader(manifest, s, device=place)]
        assert dali == [t.tolist() for _, t in build_loader("torch", manifest, s)]
        assert len(dali) == batches_per_rank(n, world, batch, train)
        seen += [r for rows in dali for r in rows]
    if not train:
        assert sorted(seen) == list(range(n))


@pytest.mark.parametrize("place", CPU_PLACES)
def test_train_batches_are_deterministic(small, place):
    first, rows = images_of(build_dali_loader(small, spec(True), device=place))
    again, rows_again = images_of(build_dali_loader(small, spec(True), device=place))
    other, _ = images_of(build_dali_loader(small, spec(True, seed=2), device=place))
    assert first.shape == (8, 3, 24, 24) and torch.equal(rows, rows_again)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.dtype == torch.uint8 and first.float().std() > 5


def test_eval_loader_gives_the_same_pass_every_time(small):
    """A DALI eval loader gives the same pass every time; an abandoned pass does not leak into
    the next one (the all-DALI loader keeps its pipeline between passes, the hybrid builds one
    per pass)."""
    loader = build_loader("dali", small, spec(False))
    a, b = images_of(loader), images_of(loader)
    assert len(loader) == 3 and torch.equal(a[0], b[0]) and a[1].tolist() == list(range(10))
    next(iter(loader))  # abandoned after one batch
    c = images_of(loader)
    assert torch.equal(a[0], c[0]) and torch.equal(a[1], c[1])


@pytest.mark.parametrize("place", CPU_PLACES)
def test_ava_histograms_travel_with_their_images(small, place):
    votes = np.arange(1, 11) * (np.arange(len(small))[:, None] + 1) % 7 + 1  # distinct rows
    ava = small.drop(columns="label").assign(**dict(zip(AVA_COLUMNS, votes.T)))
    _, targets = images_of(build_dali_loader(ava, spec(True, shard=(0, 1)), device=place))
    expected = torch.tensor(votes / votes.sum(1, keepdims=True), dtype=torch.float32)
    order = torch.cat([t for _, t in build_loader("torch", ava, spec(True))])
    assert targets.dtype == torch.float32 and targets.shape == (8, 10)
    assert torch.allclose(targets, order)  # same rows, same order as the torch loader
    assert all(any(torch.allclose(t, e) for e in expected) for t in targets)


def test_one_training_epoch_through_dali(small, tiny_params):
    from pipeline.training.runner import Inits, train_run

    params = deep_merge(tiny_params, {"loader": {"kind": "dali", "workers": 1, "batch_size": 4}})
    manifests = {"train": small.assign(label=small["label"] % 4),
                 "val": small.iloc[:6].assign(label=small["label"].iloc[:6] % 4)}
    run = Run("classification", "baseline", "resnet_tiny", "default", "bilinear", 16, 16,
              epochs=1, lr=0.05, seed=0)
    result = train_run(run, params, manifests, 4, Inits(), torch.device("cpu"))
    assert len(result.history) == 1 and math.isfinite(result.history[0]["train_loss"])
    assert result.metrics["test_images"] == 6 and result.metrics["loader"] == "dali"


def test_one_iqa_epoch_through_dali(small, tiny_params):
    """An IQA run reads its own split names (train, test) and rates with EMD on DALI batches."""
    from pipeline.training.runner import Inits, train_run

    params = deep_merge(tiny_params, {"loader": {"kind": "dali", "workers": 1, "batch_size": 4}})
    votes = np.arange(1, 11) * (np.arange(len(small))[:, None] + 1) % 7 + 1
    ava = small.drop(columns="label").assign(**dict(zip(AVA_COLUMNS, votes.T)))
    run = Run("iqa", "baseline", "resnet_tiny", "default", "bicubic", 16, 16, epochs=1,
              lr=0.005, seed=0)
    result = train_run(run, params, {"train": ava, "test": ava.iloc[:6]}, 10, Inits(),
                       torch.device("cpu"))
    assert len(result.history) == 1 and math.isfinite(result.history[0]["train_loss"])
    assert math.isfinite(result.history[0]["val_srcc_mean"])
    assert result.metrics["test_images"] == 6 and result.metrics["task"] == "iqa"
    assert 0 <= result.metrics["emd"] == result.metrics["test_loss"]


@pytest.mark.gpu
@NO_GPU
def test_gpu_eval_close_to_cpu(photos):
    """nvJPEG (GPU) and libjpeg-turbo differ in IDCT and chroma upsampling by a few levels;
    the geometry is the same, so the two stay close."""
    s = spec(False, size=56, batch_size=8)
    cpu, cpu_targets = images_of(build_dali_loader(photos, s, device="cpu"))
    gpu_loader = build_dali_loader(photos, s, device="gpu")
    first, _ = next(iter(gpu_loader))
    assert first.is_cuda
    gpu, gpu_targets = images_of(gpu_loader)
    assert torch.equal(cpu_targets, gpu_targets) and levels(gpu, cpu).mean() < 2.0


@pytest.mark.gpu
@NO_GPU
def test_gpu_train_batches(small):
    loader = build_dali_loader(small, spec(True), device="gpu")
    batches = list(loader)
    assert len(batches) == 2 and all(x.is_cuda and x.shape == (4, 3, 24, 24) for x, _ in batches)
    again = list(build_dali_loader(small, spec(True), device="gpu"))
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(batches, again))

"""Loader registry, targets, sharding and the torchvision reference loader (no DALI needed)."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

import pipeline.loaders as loaders
from pipeline.core.errors import ConfigError
from pipeline.loaders import LOADERS, LoaderSpec, build_loader, register_loader, resolve_kind
from pipeline.loaders.common import AVA_COLUMNS, batches_per_rank, manifest_targets, resolve_shard
from pipeline.loaders.torch_loader import ShardBatchSampler
from pipeline.loaders.transforms import (IMAGENET_MEAN, IMAGENET_STD, centre_crop_anchor,
                                         eval_resized_hw, normalize)
from tests.conftest import ROOT

#: (n images, world size, batch size): even, uneven and smaller-than-a-batch shards.
SHARDINGS = [(9, 1, 4), (9, 2, 4), (8, 2, 4), (10, 3, 3), (10, 3, 2), (5, 4, 2), (3, 4, 2)]


def write_images(folder, shapes, seed=0) -> list[str]:
    """Small noisy JPEGs of the given (height, width); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (height, width) in enumerate(shapes):
        coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), float)
        img += rng.normal(0, 10, img.shape)
        path = folder / f"{i:03d}.jpg"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def write_photos(folder) -> pd.DataFrame:
    """A manifest of landscape, portrait, square, odd/even and extreme-aspect JPEGs, one of
    them stored sideways with an EXIF orientation tag (every loader must turn it upright)."""
    shapes = [(375, 500), (500, 333), (257, 256), (301, 97), (64, 300), (41, 63), (150, 150),
              (199, 131)]
    paths = write_images(folder, shapes, seed=3)
    with Image.open(paths[1]) as img:
        sideways = img.transpose(Image.Transpose.ROTATE_90)  # EXIF 6 turns it back upright
        exif = Image.Exif()
        exif[0x0112] = 6
        sideways.save(paths[1], quality=90, exif=exif.tobytes())
    return pd.DataFrame({"path": paths, "label": range(len(paths))})


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> pd.DataFrame:
    """Nine images of assorted sizes; label = row, so targets show which rows came."""
    shapes = [(40, 56), (56, 40), (48, 48), (41, 63), (60, 45), (44, 50), (52, 42), (40, 40),
              (63, 47)]
    paths = write_images(tmp_path_factory.mktemp("images"), shapes)
    return pd.DataFrame({"path": paths, "label": range(len(paths))})


def spec(train: bool, **kw) -> LoaderSpec:
    return LoaderSpec(**{"size": 24, "batch_size": 4, "workers": 0, "train": train, "seed": 1,
                         "scale": (0.35, 1.0), **kw})


def test_importing_loaders_does_not_import_dali():
    """nvidia.dali is imported inside functions only (a subprocess check costs ~10 s here)."""
    for path in sorted((ROOT / "pipeline" / "loaders").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.startswith("nvidia") for n in names), f"{path.name} imports {names}"
    assert {"torch", "dali"} <= set(LOADERS)


def test_auto_prefers_dali_and_falls_back_to_torch(monkeypatch):
    monkeypatch.setitem(loaders.OPTIONAL, "dali", lambda: None)
    assert resolve_kind("auto") == "dali" and resolve_kind("dali") == "dali"
    monkeypatch.setitem(loaders.OPTIONAL, "dali", lambda: "ImportError: no nvidia.dali")
    assert resolve_kind("auto") == "torch" and resolve_kind("torch") == "torch"
    with pytest.raises(ConfigError, match="cannot be used here.*ImportError.*torch or auto"):
        resolve_kind("dali")
    with pytest.raises(ConfigError, match="'pil' is not a loader; available: dali, torch"):
        resolve_kind("pil")


def test_register_loader(monkeypatch, manifest):
    monkeypatch.setitem(LOADERS, "fake", lambda m, s: [("images", len(m))])
    register_loader("fake", lambda m, s: [("registered", s.size)])
    assert list(build_loader("fake", manifest, spec(False))) == [("registered", 24)]


def test_manifest_targets():
    labels = manifest_targets(pd.DataFrame({"path": ["a", "b"], "label": [3, 1]}))
    assert labels.dtype == torch.int64 and labels.tolist() == [3, 1]
    votes = pd.DataFrame({"path": ["a", "b"], **{c: [k + 1, 0] for k, c in
                                                  enumerate(AVA_COLUMNS)}})
    votes.loc[1, "p5"] = 4
    hist = manifest_targets(votes)
    assert hist.dtype == torch.float32 and hist.shape == (2, 10)
    assert torch.allclose(hist.sum(1), torch.ones(2)) and hist[1, 4] == 1
    with pytest.raises(ValueError, match="no votes"):
        manifest_targets(votes.assign(**{c: 0 for c in AVA_COLUMNS}))
    with pytest.raises(ValueError, match="neither a 'label' column"):
        manifest_targets(pd.DataFrame({"path": ["a"]}))


@pytest.mark.parametrize("height,width,shorter", [(375, 500, 256), (500, 333, 256), (41, 63, 27),
                                                  (64, 64, 73), (97, 301, 9), (300, 64, 56)])
def test_eval_size_rule_is_torchvision(height, width, shorter):
    resized = TF.resize(torch.zeros(3, height, width, dtype=torch.uint8), shorter, antialias=True)
    assert tuple(resized.shape[1:]) == eval_resized_hw(height, width, shorter)


def test_centre_crop_rounds_halves_up_like_dali():
    # DALI: anchor = roundf(0.5 * (length - crop)); torchvision's CenterCrop rounds half to even.
    assert [centre_crop_anchor(n, 4) for n in range(4, 12)] == [0, 1, 1, 2, 2, 3, 3, 4]


@pytest.mark.parametrize("n,world,batch", SHARDINGS)
def test_eval_shards_cover_every_image_once(n, world, batch):
    rows, counts = [], set()
    for rank in range(world):
        sampler = ShardBatchSampler(n, spec(False, batch_size=batch, shard=(rank, world)))
        rows += [r for b in sampler for r in b]
        assert len(sampler) <= batches_per_rank(n, world, batch, train=False)
        counts.add(batches_per_rank(n, world, batch, train=False))
    assert sorted(rows) == list(range(n)) and len(counts) == 1


@pytest.mark.parametrize("n,world,batch", SHARDINGS)
def test_train_shards_have_equal_full_batches(n, world, batch):
    per_rank = []
    for rank in range(world):
        batches = list(ShardBatchSampler(n, spec(True, batch_size=batch, shard=(rank, world))))
        assert all(len(b) == batch for b in batches)
        per_rank.append(batches)
    assert len({len(b) for b in per_rank}) == 1
    assert len(per_rank[0]) == batches_per_rank(n, world, batch, train=True)
    real = [set(r for b in batches for r in b) for batches in per_rank]
    assert all(not (a & b) for i, a in enumerate(real) for b in real[i + 1:])  # disjoint


def test_shard_from_torchrun_environment(monkeypatch):
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert resolve_shard(spec(False)) == (2, 3)
    assert resolve_shard(spec(False, shard=(0, 1))) == (0, 1)
    with pytest.raises(ValueError, match="rank 3 of world size 3"):
        resolve_shard(spec(False, shard=(3, 3)))


def test_torch_eval_batches(manifest):
    batches = list(build_loader("torch", manifest, spec(False)))
    assert [len(t) for _, t in batches] == [4, 4, 1]  # the last partial batch is kept
    images = torch.cat([b for b, _ in batches])
    assert images.dtype == torch.uint8 and images.shape == (9, 3, 24, 24)
    assert torch.cat([t for _, t in batches]).tolist() == list(range(9))
    # ImageNet normalisation: pixel 0 maps to -mean/std, so values lie in about [-2.2, 2.7].
    floats = normalize(images)
    assert -2.2 <= floats.min() and floats.max() <= 2.7 and floats.std() > 0.1


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_normalize_is_torchvisions_bit_for_bit(layout):
    """The loaders hand over uint8; normalising afterwards gives exactly what the transforms'
    former ToDtype + Normalize steps gave, per image, into a given buffer or a new one."""
    images = torch.randint(0, 256, (5, 3, 17, 23), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    images = images.contiguous(memory_format=layout)
    expected = v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)(
        v2.ToDtype(torch.float32, scale=True)(images))
    buffer = torch.full(images.shape, float("nan"))
    assert torch.equal(normalize(images), expected)
    assert normalize(images, out=buffer) is buffer and torch.equal(buffer, expected)
    assert normalize(expected) is expected  # float batches pass through


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")
def test_normalize_on_the_gpu_matches_the_cpu(manifest):
    """uint8 batches travel to the GPU and are normalised there (the training loop's path):
    the same floats as on the CPU."""
    from pipeline.training.device import Accel

    images, targets = next(iter(build_loader("torch", manifest, spec(False))))
    accel = Accel(torch.device("cuda"), channels_last=True)
    on_gpu, gpu_targets = accel.batch(images, targets)
    assert on_gpu.is_cuda and on_gpu.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(on_gpu.cpu(), normalize(images)) and torch.equal(gpu_targets.cpu(),
                                                                          targets)


def test_cpu_batches_are_normalised_into_one_buffer(manifest):
    """On the CPU the loop's batches are normalised into one reused float buffer."""
    from pipeline.training.device import Accel

    accel = Accel(torch.device("cpu"))
    batches = list(build_loader("torch", manifest, spec(False)))
    first, _ = accel.batch(*batches[0])
    assert torch.equal(first, normalize(batches[0][0]))
    second, _ = accel.batch(*batches[1])
    assert second.data_ptr() == first.data_ptr()  # same shape: the same buffer
    assert torch.equal(second, normalize(batches[1][0]))
    last, _ = accel.batch(*batches[2])  # the partial batch gets its own
    assert last.shape[0] == 1 and torch.equal(last, normalize(batches[2][0]))


def test_torch_train_is_seeded_per_sample(manifest):
    """Same spec: same batches, with or without worker processes; another seed differs; the
    caller's RNG state and thread count are left as they were."""
    rng, threads = torch.random.get_rng_state(), torch.get_num_threads()
    one = [(x, t) for x, t in build_loader("torch", manifest, spec(True))]
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert torch.get_num_threads() == threads
    two = [(x, t) for x, t in build_loader("torch", manifest, spec(True, workers=2))]
    assert len(one) == 2 and all(len(t) == 4 for _, t in one)  # last partial batch dropped
    assert all(torch.equal(a, b) and torch.equal(s, t) for (a, s), (b, t) in zip(one, two))
    other = [x for x, _ in build_loader("torch", manifest, spec(True, seed=2))]
    assert not torch.equal(torch.cat([x for x, _ in one]), torch.cat(other))


def test_torch_sharded_eval_pads_with_empty_batches(manifest):
    rank0 = list(build_loader("torch", manifest, spec(False, shard=(0, 2))))
    rank1 = list(build_loader("torch", manifest, spec(False, shard=(1, 2))))
    assert [t.tolist() for _, t in rank0] == [[0, 1, 2, 3], []]
    assert [t.tolist() for _, t in rank1] == [[4, 5, 6, 7], [8]]
    assert rank0[1][0].shape == (0, 3, 24, 24) and rank0[1][1].dtype == torch.int64
    assert rank0[1][0].dtype == rank0[0][0].dtype == torch.uint8


def test_torch_loader_ava_targets(manifest):
    ava = manifest.drop(columns="label").assign(**{c: k + 1 for k, c in enumerate(AVA_COLUMNS)})
    images, targets = next(iter(build_loader("torch", ava, spec(False))))
    assert images.shape == (4, 3, 24, 24) and targets.shape == (4, 10)
    assert targets.dtype == torch.float32 and torch.allclose(targets.sum(1), torch.ones(4))

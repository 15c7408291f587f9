"""Decode once (pipeline.loaders.decoded): the reference loader's batches bit for bit from
images decoded to one array file, and the file written, checked and skipped as documented."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.core.errors import DatasetError
from pipeline.loaders import DECODED, LoaderSpec, build_loader, loader_name
from pipeline.loaders.common import AVA_COLUMNS
from pipeline.loaders.decoded import (DecodedLoader, decode_all, decoded_nbytes, decoded_path,
                                      read_decoded, write_decoded)
from pipeline.loaders.torch_loader import read_rgb
from tests.test_loaders import SHARDINGS


def spec(train: bool, **kw) -> LoaderSpec:
    return LoaderSpec(**{"size": 24, "batch_size": 4, "workers": 2, "train": train, "seed": 1,
                         "scale": (0.35, 1.0), **kw})


def batches_of(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.contiguous(), t) for x, t in loader]


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [16, 56, 224])
def test_decoded_is_the_torch_loader_bit_for_bit(photos, train, interpolation, size):
    """Same crop boxes, flips, pixels and kernel as the reference, so the same bytes, batch by
    batch; the EXIF-rotated photo included (decoded upright, as the reference reads it)."""
    s = spec(train, size=size, interpolation=interpolation, batch_size=3)
    images = decode_all(photos["path"].tolist())
    reference = batches_of(build_loader("torch", photos, s))
    decoded = batches_of(DecodedLoader(photos, s, images))
    assert len(decoded) == len(reference)
    for (x, t), (rx, rt) in zip(decoded, reference):
        assert x.dtype == torch.uint8 and torch.equal(t, rt) and torch.equal(x, rx)


@pytest.mark.parametrize("n,world,batch", SHARDINGS)
@pytest.mark.parametrize("train", [True, False])
def test_same_rows_and_batches_as_torch_in_every_shard(small, n, world, batch, train):
    frame = small.iloc[:n]
    images = decode_all(frame["path"].tolist())
    for rank in range(world):
        s = spec(train, batch_size=batch, shard=(rank, world))
        reference = batches_of(build_loader("torch", frame, s))
        decoded = batches_of(DecodedLoader(frame, s, images))
        assert [t.tolist() for _, t in decoded] == [t.tolist() for _, t in reference]
        assert all(torch.equal(x, rx) for (x, _), (rx, _) in zip(decoded, reference))


def test_decoded_pixels_are_the_reference_decode(photos):
    images = decode_all(photos["path"].tolist())
    for row, path in enumerate(photos["path"]):
        assert torch.equal(images.image(row), read_rgb(path))


def test_ava_histograms_travel_with_their_images(small):
    votes = np.arange(len(small) * 10, dtype=float).reshape(len(small), 10) + 1
    frame = pd.concat([small[["path"]], pd.DataFrame(votes, columns=AVA_COLUMNS)], axis=1)
    s = spec(False, batch_size=3)
    reference = batches_of(build_loader("torch", frame, s))
    decoded = batches_of(DecodedLoader(frame, s, decode_all(frame["path"].tolist())))
    assert all(torch.equal(t, rt) and torch.equal(x, rx)
               for (x, t), (rx, rt) in zip(decoded, reference))


def with_sizes(frame: pd.DataFrame) -> pd.DataFrame:
    sizes = [read_rgb(p).shape for p in frame["path"]]
    return frame.assign(width=[s[2] for s in sizes], height=[s[1] for s in sizes])


def test_write_and_read_back(tmp_path, small):
    frame = with_sizes(small)
    written = write_decoded(tmp_path, tmp_path, {"train": frame, "classes": pd.DataFrame(
        {"wnid": ["a"]})}, max_mb=1)
    assert written == ["train"] and not decoded_path(tmp_path, "classes").exists()
    images = read_decoded(tmp_path, "train", frame)
    assert images is not None and len(images) == len(frame)
    assert images.pixels.nbytes == decoded_nbytes(frame)
    assert read_decoded(tmp_path, "val", frame) is None  # no file: the loader decodes from disk


def test_a_split_over_the_cap_is_not_decoded(tmp_path, small):
    frame = with_sizes(small)
    cap = (decoded_nbytes(frame) - 1) / 1e6
    assert write_decoded(tmp_path, tmp_path, {"train": frame}, max_mb=cap) == []
    assert write_decoded(tmp_path, tmp_path, {"train": frame}, max_mb=0) == []
    assert not decoded_path(tmp_path, "train").exists()


def test_a_file_that_does_not_match_its_manifest_is_refused(tmp_path, small):
    frame = with_sizes(small)
    write_decoded(tmp_path, tmp_path, {"train": frame}, max_mb=1)
    with pytest.raises(DatasetError, match="does not list the images"):
        read_decoded(tmp_path, "train", frame.iloc[::-1])


def test_images_of_a_folder_being_written_are_read_from_where_they_are(tmp_path, small):
    """A stage writes its folder under a temporary name: paths name the final folder."""
    final = tmp_path / "final"
    frame = small.assign(path=[str(final / p.split("/")[-1]) for p in small["path"]])
    write_dir = tmp_path / "writing"
    write_dir.mkdir()
    for src, dst in zip(small["path"], frame["path"]):
        (write_dir / dst.split("/")[-1]).write_bytes(open(src, "rb").read())
    images = decode_all(frame["path"].tolist(), write_dir, final)
    assert all(torch.equal(images.image(i), read_rgb(p)) for i, p in enumerate(small["path"]))


@pytest.mark.parametrize("kind", ["auto", "torch"])
def test_a_cpu_loader_with_decoded_images_uses_them(small, kind):
    images = decode_all(small["path"].tolist())
    if torch.cuda.is_available():
        pytest.skip("with a GPU, DALI decodes and resizes there")
    assert loader_name(kind, images) == DECODED
    assert isinstance(build_loader(kind, small, spec(True), images), DecodedLoader)
    assert loader_name("torch") == "torch"  # nothing decoded: the kind's own loader


@pytest.mark.parametrize("scale", [(0.6, 0.9), (0.08, 1.0), (0.99, 1.0)])
def test_crop_windows_are_the_reference_draws(scale):
    """Every sample's box and flip equal the reference's RandomResizedCrop + flip draws from
    the seeded global generator, including the fallbacks (extreme aspects, a scale near 1)."""
    from pipeline.loaders.common import sample_seed, seeded_sample
    from pipeline.loaders.decoded import CropDraws
    from pipeline.loaders.transforms import random_resized_crop

    s = spec(True, scale=scale, seed=7)
    crop, draws = random_resized_crop(s.size, scale), CropDraws(s)
    fallbacks = 0
    for row, (height, width) in enumerate([(h, w) for h in (9, 40, 97, 301) for w in (8, 41, 96,
                                                                                       500)]):
        with seeded_sample(s.seed, row):
            box = crop.make_params([torch.empty((), dtype=torch.uint8).expand(3, height, width)])
            flip = bool(torch.rand(1) < 0.5)
        ours = draws(sample_seed(s.seed, row), height, width)  # one generator, reseeded
        assert ours == ((box["top"], box["left"], box["height"], box["width"]), flip)
        fallbacks += box["top"] == (height - box["height"]) // 2 and \
            box["left"] == (width - box["width"]) // 2
    assert fallbacks > 0


def test_eval_passes_repeat_the_first_and_cannot_be_changed_through_a_batch(small):
    loader = DecodedLoader(small, spec(False, batch_size=3), decode_all(small["path"].tolist()))
    first = batches_of(loader)
    for images, _ in loader:
        images.zero_()  # a consumer writing into a batch
    again = batches_of(loader)
    assert all(torch.equal(x, y) and torch.equal(t, u) for (x, t), (y, u) in zip(first, again))
    assert len(again) == len(first) == len(loader)

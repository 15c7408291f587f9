"""The CPU loader: DALI decodes (only the crop's window when training), torchvision resizes.

Without a GPU, DALI's own resize costs more than the JPEG decode in front of it (the
``dali-cpu`` rows of ``results/bench/loaders.csv``). This loader keeps DALI for what it does
well on the CPU, decoding with libjpeg-turbo in its own threads, and, when training, decoding
only the random crop's window (ROI decoding skips the rows and most of the columns outside it).
Each decoded image is then resized by torchvision's uint8 antialiased kernel (the reference
loader's own call) in a small thread pool and written into a preallocated uint8 batch. The
batch is channels-last, the resize's own layout, so filling a slot is a plain copy (into an
NCHW batch it is a transpose, which cost 0.39 ms of the 2.4 ms per 448-px image).

Same samples as the torchvision reference loader, by construction: the same order and shards
(:class:`~pipeline.loaders.torch_loader.ShardBatchSampler`), the same crop boxes and flips
(drawn with the reference's own ``RandomResizedCrop`` from torch's generator seeded per
sample), the same decoder (libjpeg-turbo in both; a ROI decode gives the window's pixels of
the full decode) and the same resize kernel. Batches therefore equal the reference's bit for
bit (tests/test_dali.py checks it).

Eval decodes the whole image: torch's resize has no sub-pixel region of interest, so resizing
a decoded window instead of the whole image would move the sampling grid by a fraction of a
pixel and leave the reference's output.

Python drives the pipeline (``fn.external_source``: a batch's encoded bytes and crop windows),
so no DALI reader needs to agree with the sampler about order, sharding or padding.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from pipeline.loaders.common import (LoaderSpec, batches_per_rank, empty_batch,
                                     manifest_targets, resolve_shard, seeded_sample)
from pipeline.loaders.torch_loader import ShardBatchSampler
from pipeline.loaders.transforms import INTERPOLATIONS, eval_transform, random_resized_crop

log = logging.getLogger(__name__)

#: EXIF orientation tag, and the orientations that swap width and height.
ORIENTATION, TRANSPOSED = 0x0112, (5, 6, 7, 8)

Window = tuple[int, int, int, int]  # top, left, height, width


def upright_size(data: bytes) -> tuple[int, int]:
    """(height, width) of an encoded image as decoders return it (EXIF orientation applied),
    read from its header."""
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        if img.getexif().get(ORIENTATION, 1) in TRANSPOSED:
            return width, height
    return height, width


class BatchSource:
    """``fn.external_source``'s callback: batch ``k``'s encoded images (and, when training,
    their crop windows), read from the manifest's rows; remembers each batch's flips."""

    def __init__(self, paths: list[str], batches: list[list[int]], spec: LoaderSpec):
        self.paths, self.batches, self.spec = paths, batches, spec
        self.crop = random_resized_crop(spec.size, spec.scale, spec.interpolation)
        self.flips: dict[int, list[bool]] = {}

    def window(self, data: bytes, row: int) -> tuple[Window, bool]:
        """The reference's crop box and flip for manifest row ``row``."""
        height, width = upright_size(data)
        with seeded_sample(self.spec.seed, row):
            shape = torch.empty((), dtype=torch.uint8).expand(3, height, width)
            box = self.crop.make_params([shape])
            flip = self.spec.flip and bool(torch.rand(1) < 0.5)
        return (box["top"], box["left"], box["height"], box["width"]), flip

    def __call__(self, info) -> list[np.ndarray] | tuple[list[np.ndarray], ...]:
        if info.iteration >= len(self.batches):
            raise StopIteration
        rows = self.batches[info.iteration]
        encoded = [Path(self.paths[row]).read_bytes() for row in rows]
        arrays = [np.frombuffer(data, dtype=np.uint8) for data in encoded]
        if not self.spec.train:
            return arrays
        windows = [self.window(data, row) for data, row in zip(encoded, rows)]
        self.flips[info.iteration] = [flip for _, flip in windows]
        starts = [np.array([left, top], np.int32) for (top, left, _, _), _ in windows]
        shapes = [np.array([width, height], np.int32) for (_, _, height, width), _ in windows]
        return arrays, starts, shapes


def decode_pipeline(source: BatchSource, spec: LoaderSpec):
    """A CPU pipeline that decodes ``source``'s batches to uint8 HWC RGB: the crop windows
    when training (ROI decoding), whole images otherwise."""
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=spec.batch_size, num_threads=max(1, spec.workers), device_id=None,
                  prefetch_queue_depth=spec.prefetch)
    def graph():
        if spec.train:
            jpegs, start, shape = fn.external_source(source=source, num_outputs=3, batch=True,
                                                     batch_info=True)
            return fn.decoders.image_slice(jpegs, start=start, shape=shape, axis_names="WH",
                                           device="cpu", output_type=types.RGB)
        jpegs = fn.external_source(source=source, batch=True, batch_info=True)
        return fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)

    pipe = graph()
    pipe.build()
    return pipe


def one_thread() -> None:
    """Pool threads resize one image each: no intra-op threads under them."""
    torch.set_num_threads(1)


class HybridLoader:
    """Iterable of uint8 ``(images, targets)`` batches on the CPU: DALI decode, torch resize."""

    def __init__(self, manifest: pd.DataFrame, spec: LoaderSpec):
        self.spec = spec
        self.paths = manifest["path"].tolist()
        self.targets = manifest_targets(manifest)
        self.sampler = ShardBatchSampler(len(manifest), spec)
        _, world = resolve_shard(spec)
        self.batches = batches_per_rank(len(manifest), world, spec.batch_size, spec.train)
        interpolation = INTERPOLATIONS[spec.interpolation]
        if spec.train:
            self.resize: Callable[[torch.Tensor], torch.Tensor] = lambda image: TF.resize(
                image, [spec.size, spec.size], interpolation=interpolation, antialias=True)
        else:
            self.resize = eval_transform(spec.size, crop=spec.crop,
                                         interpolation=spec.interpolation)

    def __len__(self) -> int:
        return self.batches

    def finish(self, decoded, flips: list[bool] | None, images: torch.Tensor, i: int) -> None:
        """Resize (and flip) decoded sample ``i`` into slot ``i`` of the batch."""
        image = self.resize(torch.from_numpy(np.asarray(decoded[i])).permute(2, 0, 1))
        if flips is not None and flips[i]:
            image = TF.horizontal_flip(image)
        images[i].copy_(image)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = list(self.sampler)
        yielded = 0
        if batches:
            source = BatchSource(self.paths, batches, self.spec)
            pipe = decode_pipeline(source, self.spec)
            size = self.spec.size
            with ThreadPoolExecutor(max(1, self.spec.workers), initializer=one_thread) as pool:
                for k, rows in enumerate(batches):
                    (decoded,) = pipe.run()
                    images = torch.empty(len(rows), 3, size, size, dtype=torch.uint8,
                                         memory_format=torch.channels_last)
                    flips = source.flips.pop(k, None)
                    list(pool.map(lambda i: self.finish(decoded, flips, images, i),
                                  range(len(rows))))
                    yielded += 1
                    yield images, self.targets[rows]
        for _ in range(self.batches - yielded):  # eval: this rank's shard ended early
            yield empty_batch(self.spec.size, self.targets)


def build_hybrid_loader(manifest: pd.DataFrame, spec: LoaderSpec) -> HybridLoader:
    """DALI's CPU decoder and torchvision's resize; needs ``nvidia-dali``."""
    return HybridLoader(manifest, spec)

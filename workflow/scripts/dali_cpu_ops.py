"""Where DALI's CPU loader spends its time: the train pipeline cut after each operator.

Renders the loader benchmark's ImageNet-like image set (``bench.photo`` in params.yaml, the same
JPEGs as ``results/bench/loaders.csv``'s ``photo`` rows) and runs DALI on the CPU
(``device_id=None``) with the benchmark's batch size and threads, stopping after: reading;
decoding the whole image; decoding the random-resized-crop region (what the train loader
does); + resizing it to S x S with each interpolation DALI offers; + crop_mirror_normalize
(the whole train pipeline). For comparison it times torch's uint8 bilinear resize (one
thread, channels-last) of a typical crop to the same size. Prints images/s and CPU ms per
image; numbers only, nothing written.

    python workflow/scripts/dali_cpu_ops.py --size 448
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.cli import cpu_seconds  # run from the repository root, as the usage line says

log = logging.getLogger("dali_cpu_ops")


def time_pipeline(build: Callable[[], object], images: int, batch_size: int) -> tuple[float, float]:
    """(images/s, CPU ms per image) over whole batches, after one warm-up batch."""
    pipe = build()
    pipe.build()
    pipe.run()
    batches = max(1, images // batch_size)
    start, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(batches):
        pipe.run()
    wall, used = time.perf_counter() - start, cpu_seconds() - cpu
    return batches * batch_size / wall, 1000 * used / (batches * batch_size)


def stages(files: list[str], size: int, batch_size: int, threads: int, scale: list[float]):
    """Name -> pipeline factory, one per cut of the train pipeline."""
    from nvidia.dali import fn, pipeline_def, types

    def cut(last: str, interp=types.INTERP_LINEAR):
        @pipeline_def(batch_size=batch_size, num_threads=threads, device_id=None, seed=1,
                      prefetch_queue_depth=2)
        def graph():
            jpegs, _ = fn.readers.file(files=files, random_shuffle=False)
            if last == "read":
                return jpegs
            if last == "decode":
                return fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
            images = fn.decoders.image_random_crop(
                jpegs, device="cpu", output_type=types.RGB, random_area=scale,
                random_aspect_ratio=[3 / 4, 4 / 3], num_attempts=10)
            if last == "crop":
                return images
            images = fn.resize(images, size=[size, size], interp_type=interp, antialias=True)
            if last == "resize":
                return images
            return fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="CHW",
                                            mirror=fn.random.coin_flip(probability=0.5),
                                            mean=[124, 116, 104], std=[58, 57, 57])
        return graph

    return {"read": cut("read"), "decode (whole image)": cut("decode"),
            "decode (random crop)": cut("crop"),
            "+ resize (nearest)": cut("resize", types.INTERP_NN),
            "+ resize (linear)": cut("resize", types.INTERP_LINEAR),
            "+ resize (cubic)": cut("resize", types.INTERP_CUBIC),
            "+ normalise (the train loader)": cut("normalise")}


def torch_resize_ms(size: int, crop: int, repeats: int = 200) -> float:
    """ms per image of torch's uint8 antialiased bilinear resize, crop x crop -> size x size."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    image = torch.randint(0, 256, (1, 3, crop, crop), dtype=torch.uint8)
    image = image.contiguous(memory_format=torch.channels_last)
    F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)
    start = time.perf_counter()
    for _ in range(repeats):
        F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)
    return 1000 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=448, help="output size (default 448)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from pipeline.bench.loaders import BenchConfig, write_image_set
    from pipeline.params.config import load_params

    cfg = BenchConfig.from_params(load_params(args.params))
    with tempfile.TemporaryDirectory() as scratch:
        manifest = write_image_set("photo", cfg, Path(scratch))
        files = [str(Path(p).resolve()) for p in manifest["path"]]
        for name, build in stages(files, args.size, cfg.batch_size, cfg.workers,
                                  list(cfg.train_scale)).items():
            rate, cpu_ms = time_pipeline(build, len(files), cfg.batch_size)
            log.info("%-32s %8.1f images/s %7.2f CPU ms/image", name, rate, cpu_ms)
    # the mean random-crop area of the mid-sized image: the typical region the resize reads
    area = sum(cfg.train_scale) / 2 * cfg.long_side * sum(cfg.short_side) / 2
    crop = int(area ** 0.5)
    log.info("torch uint8 bilinear resize %d -> %d px, one thread: %.2f ms/image", crop,
             args.size, torch_resize_ms(args.size, crop))


if __name__ == "__main__":
    main()

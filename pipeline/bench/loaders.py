"""Loader benchmark: every available loader on the same JPEGs and output size, in one run.

For each image set (generated here, deterministically) and output size, each loader makes full
passes in train and eval mode, with a new loader for every pass (as a run builds its train
loader every epoch). Loaders: ``torch`` (the torchvision reference), ``dali-hybrid`` (DALI
decodes, torchvision resizes: the CPU default), ``dali-cpu`` (the all-DALI pipeline on the CPU,
the CPU default before it), ``decoded`` (crop and resize from images decoded once, as runs
on the CPU do where their split was decoded once: the one-off decode is not timed) and
``dali-gpu`` when there is a GPU. Every loader hands over uint8
batches; what normalising them costs a run (per image into a reused float batch, on the CPU) is
its own row per size (``mode`` normalize), the same for every loader. Reported per row:
images/s and process CPU time per image over whole passes (this process and its reaped
children: DALI's threads and torch's workers), and the same files' single-thread decode rate
as the floor (PIL, and torchvision's libjpeg-turbo ``decode_jpeg``; the faster of the two is
"one core's decode rate"). Ratios: each loader's over torch's (same set, size and mode), and
over two cores' decode rate, both as images/s and as CPU time (the latter barely moves when
other work shares the machine; the load average is recorded per row). The loaders' passes
are interleaved and the fastest is kept.

Per-pass costs are included, as a run pays them every epoch: torch forks its workers, a DALI
pipeline is built, and a DALI train pipeline computes ``prefetch`` batches past the end of its
pass (the reader wraps around) before it is shut down; ``bench.images`` sets how far they are
amortised.

Image sets: ``synthetic`` renders the embedded benchmark's images (sizes and content from
``synthetic.imagenet``); ``photo`` renders textured images with real ImageNet JPEGs'
statistics (``bench.photo``, from a 1,000-image sample of the train set, one per class): long
side ``long_side``, short side drawn from ``short_side`` (mean 0.20 Mpx), one in four portrait;
chroma subsampling drawn per image from ``subsampling`` (4:4:4 76 %, 4:2:0 20 %, 4:2:2 for the
4:2:2 and 4:4:0 rest: Pillow writes no 4:4:0, which keeps as many chroma samples), an sRGB ICC
profile in ``icc_share`` of them (28.6 %) and grayscale in ``grayscale_share`` (2.3 %), quality
``jpeg_quality``. Each row of the results records its set's mean size and these shares.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from pipeline.cli import cpu_seconds
from pipeline.core.errors import ConfigError
from pipeline.data.synth_imagenet import SynthSpec, image_size, render, spec_from_params
from pipeline.loaders import LoaderSpec, build_loader, dali_import_error, normalize
from pipeline.loaders.decoded import DecodedImages, DecodedLoader, decode_all
from pipeline.report.bench_table import MACHINE, cpu_model

log = logging.getLogger(__name__)

IMAGE_SETS = ("synthetic", "photo")
LoaderFactory = Callable[[pd.DataFrame, LoaderSpec], Iterable]


@dataclass(frozen=True)
class BenchConfig:
    """What to measure; mirrors ``bench`` in params.yaml."""

    images: int
    batch_size: int
    workers: int
    repeats: int
    modes: tuple[str, ...]
    sizes: dict[str, tuple[int, ...]]
    long_side: int
    short_side: tuple[int, int]
    jpeg_quality: int
    subsampling: dict[str, float]
    icc_share: float
    grayscale_share: float
    train_scale: tuple[float, float]
    eval_crop: float
    seed: int
    synthetic: SynthSpec

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> BenchConfig:
        """The benchmark of ``params['bench']``; synthetic images as in ``synthetic.imagenet``,
        crop settings as in ``loader``."""
        bench, synth = params["bench"], dict(params["synthetic"]["imagenet"])
        photo = bench["photo"]
        low, high = photo["short_side"]
        if not low <= high <= photo["long_side"]:
            raise ConfigError(f"bench.photo.short_side = {[low, high]} with long_side = "
                              f"{photo['long_side']}: need short_side[0] <= short_side[1] <= "
                              f"long_side")
        total = sum(photo["subsampling"].values())
        if abs(total - 1) > 1e-6:
            raise ConfigError(f"bench.photo.subsampling's shares add up to {total:g}: make "
                              f"them add up to 1 (e.g. yuv444 0.76, yuv420 0.20, yuv422 0.04)")
        return cls(images=bench["images"], batch_size=bench["batch_size"],
                   workers=bench["workers"], repeats=bench["repeats"],
                   modes=tuple(bench["modes"]),
                   sizes={k: tuple(v) for k, v in bench["sizes"].items()},
                   long_side=photo["long_side"], short_side=tuple(photo["short_side"]),
                   jpeg_quality=photo["jpeg_quality"],
                   subsampling=dict(photo["subsampling"]), icc_share=photo["icc_share"],
                   grayscale_share=photo["grayscale_share"],
                   train_scale=tuple(params["loader"]["train_scale"]),
                   eval_crop=params["loader"]["eval_crop"], seed=params["seed"],
                   synthetic=spec_from_params(synth, params["seed"]))


# --- images ----------------------------------------------------------------------------------

def photo_pixels(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A textured colour image, uint8 (height, width, 3): colour fields at three scales plus
    sensor-like noise, so that its JPEG has a photo's entropy (and decode cost)."""
    img = np.zeros((height, width, 3), np.float32)
    for cells, amplitude in ((4, 1.0), (16, 0.5), (64, 0.25)):
        grid = rng.uniform(0, 255, size=(cells * height // max(height, width) + 2,
                                         cells * width // max(height, width) + 2, 3))
        field = Image.fromarray(grid.astype(np.uint8)).resize((width, height), Image.BICUBIC)
        img += amplitude * (np.asarray(field, np.float32) / 127.5 - 1)
    img = 128 + 60 * img + rng.normal(0, 16, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@functools.cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile (littleCMS's), as embedded in the photos that carry one."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


#: Chroma subsampling by its params key (colon-free: YAML 1.1 reads 4:4:4 as a number).
SUBSAMPLING = {"yuv444": "4:4:4", "yuv422": "4:2:2", "yuv420": "4:2:0"}


@dataclass(frozen=True)
class PhotoFormat:
    """How one generated photo is stored: chroma subsampling, ICC profile, grayscale."""

    subsampling: str
    icc: bool
    grayscale: bool

    @classmethod
    def draw(cls, rng: np.random.Generator, cfg: BenchConfig) -> PhotoFormat:
        """One photo's format, drawn with the shares of ``cfg`` (real ImageNet's)."""
        names = sorted(cfg.subsampling)
        shares = np.array([cfg.subsampling[n] for n in names])
        grayscale = bool(rng.random() < cfg.grayscale_share)
        key = names[int(rng.choice(len(names), p=shares / shares.sum()))]
        return cls(subsampling=SUBSAMPLING[key],
                   icc=bool(rng.random() < cfg.icc_share), grayscale=grayscale)

    def save_options(self) -> dict[str, Any]:
        """Pillow's JPEG options for this format."""
        options: dict[str, Any] = {"subsampling": self.subsampling}
        if self.icc:
            options["icc_profile"] = srgb_profile()
        return options


def photo_mix(manifest: pd.DataFrame) -> dict[str, float]:
    """An image set's shares of 4:4:4 chroma, ICC profiles and grayscale (photo rows only;
    empty for a set without them)."""
    if "subsampling" not in manifest:
        return {}
    colour = ~manifest["grayscale"]
    return {"share_444": round(float((manifest["subsampling"][colour] == "4:4:4").mean()), 3),
            "share_icc": round(float(manifest["icc"].mean()), 3),
            "share_gray": round(float(manifest["grayscale"].mean()), 3)}


def write_image_set(name: str, cfg: BenchConfig, out_dir: Path) -> pd.DataFrame:
    """Write ``cfg.images`` JPEGs of image set ``name``; their manifest (path, label, ...).

    Every image is a pure function of (seed, set, index), so reruns write the same bytes.
    """
    if name not in IMAGE_SETS:
        raise ValueError(f"unknown image set {name!r}; allowed: {', '.join(IMAGE_SETS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    synth = cfg.synthetic
    rows = []
    for index in tqdm(range(cfg.images), desc=f"bench images ({name})", unit="img",
                      mininterval=5, leave=False):
        rng = np.random.default_rng([cfg.seed, IMAGE_SETS.index(name), index])
        label = index % synth.classes
        if name == "synthetic":
            height, width = image_size(rng, synth.min_side, synth.max_side)
            pixels = render(label, synth, height, width, rng)
            quality = synth.jpeg_quality
        else:
            short = int(rng.integers(cfg.short_side[0], cfg.short_side[1] + 1))
            portrait = rng.random() < 0.25
            height, width = (cfg.long_side, short) if portrait else (short, cfg.long_side)
            pixels = photo_pixels(rng, height, width)
            quality = cfg.jpeg_quality
        path = out_dir / f"{name}_{index:05d}.jpg"
        image, extra, options = Image.fromarray(pixels), {}, {}
        if name == "photo":
            form = PhotoFormat.draw(rng, cfg)
            image = image.convert("L") if form.grayscale else image
            extra, options = vars(form), form.save_options()
        image.save(path, format="JPEG", quality=quality, **options)
        rows.append({"path": str(path), "label": label, "width": width, "height": height,
                     "bytes": path.stat().st_size, **extra})
    return pd.DataFrame(rows)


# --- measurements ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Pass:
    """One timed pass: images, steady-state rate (first batch to last), CPU per image."""

    images: int
    wall_s: float
    startup_s: float
    images_per_s: float
    cpu_s_per_image: float


def time_pass(loader: Iterable) -> Pass:
    """Iterate a loader once; rate and CPU over the whole pass (start-up included: it is paid
    every epoch, and a rate that started at the first batch would credit each loader with the
    batches it prefetched before it)."""
    cpu0, start = cpu_seconds(), time.perf_counter()
    first_at, seen = None, 0
    for images, _ in loader:
        seen += len(images)
        if first_at is None:
            first_at = time.perf_counter()
    end = time.perf_counter()
    cpu = cpu_seconds() - cpu0
    if seen == 0 or first_at is None:
        raise ValueError("the loader yielded no images; raise bench.images above batch_size")
    return Pass(seen, end - start, first_at - start, seen / (end - start), cpu / seen)


def best_passes(makers: dict[str, Callable[[int], Iterable]], repeats: int) -> dict[str, Pass]:
    """Each variant's fastest of ``repeats`` timed passes, after one untimed warm-up pass each.

    Passes are interleaved (a, b, a, b, ...) so that whatever else runs on the machine meets
    every variant alike; the fastest pass is the one least disturbed.
    """
    for make in makers.values():
        for _ in make(-1):
            pass
    best: dict[str, Pass] = {}
    for rep in range(repeats):
        for name, make in makers.items():
            run = time_pass(make(rep))
            if name not in best or run.images_per_s > best[name].images_per_s:
                best[name] = run
    return best


def _decode_pil(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as img:
        img.load()  # the images here are RGB JPEGs: decoding is all there is to do


def _decode_torchvision(data: bytes) -> None:
    import torchvision.io

    torchvision.io.decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8),
                               mode=torchvision.io.ImageReadMode.RGB)


DECODERS: dict[str, Callable[[bytes], None]] = {"decode-pil": _decode_pil,
                                                "decode-torchvision": _decode_torchvision}


def one_core_best(work: Callable[[], None], count: int, repeats: int) -> Pass:
    """The fastest of ``repeats`` runs of ``work`` (``count`` images each) on one torch
    thread: what one core does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = [timed(work, count) for _ in range(repeats)]
    finally:
        torch.set_num_threads(threads)
    return max(runs, key=lambda run: run.images_per_s)


def timed(work: Callable[[], None], count: int) -> Pass:
    """Wall and process CPU time of one run of ``work`` over ``count`` images."""
    cpu0, start = time.process_time(), time.perf_counter()
    work()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    return Pass(count, wall, 0.0, count / wall, cpu / count)


def decode_rate(paths: list[str], decoder: Callable[[bytes], None], repeats: int) -> Pass:
    """One core's decode rate of ``paths`` (file read included), best of ``repeats``."""
    def decode_all() -> None:
        for path in paths:
            with open(path, "rb") as fh:
                decoder(fh.read())

    with warnings.catch_warnings():
        # torchvision 0.29 deprecates its decoders (for TorchCodec), warning on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        return one_core_best(decode_all, len(paths), repeats)


def normalize_cost(size: int, batch_size: int, repeats: int) -> Pass:
    """CPU time per image of :func:`~pipeline.loaders.normalize` on one thread, on a uint8
    batch as the hybrid loader lays it out (channels-last) into a reused float batch, as the
    CPU training loop does; best of ``repeats`` after one warm-up."""
    images = torch.randint(0, 256, (batch_size, 3, size, size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    images = images.contiguous(memory_format=torch.channels_last)
    out = torch.empty(images.shape)
    normalize(images, out=out)
    return one_core_best(lambda: normalize(images, out=out), batch_size, repeats)


@functools.lru_cache(maxsize=2)
def decoded_once(paths: tuple[str, ...]) -> DecodedImages:
    """An image set decoded once (as the stage writing its manifests does: not timed)."""
    return decode_all(list(paths))


def decoded_loader(manifest: pd.DataFrame, spec: LoaderSpec) -> DecodedLoader:
    """The decode-once loader over an image set decoded beforehand."""
    return DecodedLoader(manifest, spec, decoded_once(tuple(manifest["path"])))


def loader_variants() -> dict[str, LoaderFactory]:
    """Loaders this machine can run: torch and decode-once always; DALI's CPU variants when it
    is importable; DALI on the GPU too when a GPU is present."""
    variants: dict[str, LoaderFactory] = {"torch": lambda m, s: build_loader("torch", m, s),
                                          "decoded": decoded_loader}
    if dali_import_error() is None:
        from pipeline.loaders.dali_loader import build_dali_loader, gpu_present

        places = ["hybrid", "cpu"] + (["gpu"] if gpu_present() else [])
        for place in places:
            variants[f"dali-{place}"] = (
                lambda m, s, place=place: build_dali_loader(m, s, device=place))
    return variants


def machine() -> dict[str, Any]:
    """Where the numbers come from: CPUs, GPU, library versions."""
    import PIL
    import PIL.features
    import torchvision

    try:
        import nvidia.dali
        dali = nvidia.dali.__version__
    except Exception:  # noqa: BLE001 (any import failure means "not available")
        dali = "none"
    values = (os.cpu_count(), len(os.sched_getaffinity(0)), cpu_model(),
              torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
              torch.__version__, torchvision.__version__, dali, PIL.__version__,
              PIL.features.version_feature("libjpeg_turbo") or "none",
              platform.python_version())
    return dict(zip(MACHINE, values, strict=True))


# --- the benchmark ---------------------------------------------------------------------------

def loader_spec(cfg: BenchConfig, size: int, mode: str, seed: int) -> LoaderSpec:
    """The spec every loader gets for one (size, mode)."""
    return LoaderSpec(size=size, batch_size=cfg.batch_size, workers=cfg.workers,
                      train=mode == "train", scale=cfg.train_scale, crop=cfg.eval_crop,
                      seed=seed, shard=(0, 1))


def _row(image_set: str, manifest: pd.DataFrame, size: int | None, mode: str, loader: str,
         result: Pass, workers: int | None, batch_size: int | None) -> dict[str, Any]:
    return {"image_set": image_set, "images": result.images,
            "mean_kb": round(manifest["bytes"].mean() / 1024, 1),
            "mean_px": int((manifest["width"] * manifest["height"]).mean()),
            **photo_mix(manifest),
            "size": size, "mode": mode, "loader": loader, "workers": workers,
            "batch_size": batch_size, "images_per_s": round(result.images_per_s, 1),
            "cpu_ms_per_image": round(1000 * result.cpu_s_per_image, 3),
            "startup_s": round(result.startup_s, 3), "wall_s": round(result.wall_s, 3),
            "load_1min": round(os.getloadavg()[0], 2)}


def passes(factory: LoaderFactory, manifest: pd.DataFrame, cfg: BenchConfig, size: int,
           mode: str) -> Callable[[int], Iterable]:
    """A new loader for pass ``rep`` (-1: warm-up), seeded by it, as a run builds its train
    loader every epoch. (A run keeps one eval loader; a DALI one then starts each pass with
    the batches it prefetched at the end of the last, which a fresh loader has to compute:
    the eval rows are, if anything, slightly unfair to DALI.)"""
    return lambda rep: factory(manifest, loader_spec(cfg, size, mode, rep + 1))


def run_bench(cfg: BenchConfig, work_dir: Path,
              variants: dict[str, LoaderFactory] | None = None) -> pd.DataFrame:
    """Generate the image sets under ``work_dir`` and measure every variant on them.

    One row per (image set, size, mode, loader), plus one per decoder and image set and one
    for normalisation per size.
    """
    variants = loader_variants() if variants is None else variants
    rows = []
    for image_set, sizes in cfg.sizes.items():
        manifest = write_image_set(image_set, cfg, work_dir / image_set)
        paths = manifest["path"].tolist()
        for name, decoder in DECODERS.items():
            result = decode_rate(paths, decoder, cfg.repeats)
            log.info("%s %s: %.0f images/s on one core", image_set, name, result.images_per_s)
            rows.append(_row(image_set, manifest, None, "decode", name, result, 0, 1))
        for size in sizes:
            result = normalize_cost(size, cfg.batch_size, cfg.repeats)
            rows.append(_row(image_set, manifest, size, "normalize", "normalize", result, 0,
                             cfg.batch_size))
            for mode in cfg.modes:
                makers = {name: passes(factory, manifest, cfg, size, mode)
                          for name, factory in variants.items()}
                for name, result in best_passes(makers, cfg.repeats).items():
                    log.info("%s %d px %s %s: %.0f images/s, %.2f ms CPU/image", image_set,
                             size, mode, name, result.images_per_s,
                             1000 * result.cpu_s_per_image)
                    rows.append(_row(image_set, manifest, size, mode, name, result,
                                     cfg.workers, cfg.batch_size))
    frame = pd.DataFrame(rows).astype({"size": "Int64"})
    return add_ratios(frame)


def add_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    """Ratios of each loader row to torch's row (same set, size, mode) and to the image set's
    faster one-core decoder.

    ``vs_torch`` and ``vs_2core_decode`` compare images/s (wall clock, so they also reflect
    how well a loader keeps the cores busy, and whatever else ran on the machine);
    ``cpu_vs_torch`` and ``cpu_vs_decode`` compare CPU time per image (torch's or the
    decoder's over the loader's), which other load barely moves. On an otherwise idle machine a
    loader that keeps both cores busy has ``vs_2core_decode`` = ``cpu_vs_decode``.
    """
    frame = frame.copy()
    decoders = frame[frame["mode"] == "decode"].groupby("image_set")
    decode_rate, decode_cpu = decoders["images_per_s"].max(), decoders["cpu_ms_per_image"].min()
    loaders = ~frame["mode"].isin(["decode", "normalize"])
    keys = pd.MultiIndex.from_frame(frame[["image_set", "size", "mode"]])
    torch_rows = frame[frame["loader"] == "torch"].set_index(["image_set", "size", "mode"])
    torch_rate = torch_rows["images_per_s"].reindex(keys).to_numpy()
    torch_cpu = torch_rows["cpu_ms_per_image"].reindex(keys).to_numpy()
    rate, cpu = frame["images_per_s"].to_numpy(), frame["cpu_ms_per_image"].to_numpy()
    frame["vs_torch"] = np.where(loaders, rate / torch_rate, np.nan).round(3)
    frame["vs_2core_decode"] = np.where(
        loaders, rate / (2 * frame["image_set"].map(decode_rate).to_numpy()), np.nan).round(3)
    frame["cpu_vs_torch"] = np.where(loaders, torch_cpu / cpu, np.nan).round(3)
    frame["cpu_vs_decode"] = np.where(
        loaders, frame["image_set"].map(decode_cpu).to_numpy() / cpu, np.nan).round(3)
    return frame

"""Where a training process computes and in which precision: the CPU in fp32, or one GPU
with mixed precision; images and weights channels-last on both.

These are resources, not params: they never enter ``params.yaml`` or a result's identity
(the engines do not rerun a stage when they change). Environment switches:

``PIPELINE_REQUIRE_GPU=1``
    Stop with :class:`DeviceError` when no GPU is usable, instead of training on the CPU.
    A GPU allocation (``CUDA_VISIBLE_DEVICES``, SLURM's ``SLURM_JOB_GPUS`` and friends) that
    torch cannot use stops the run the same way.
``PIPELINE_PRECISION=auto|fp32|bf16|fp16``
    ``auto`` (default): bf16 autocast on GPUs that support it (Ampere and later), else fp16
    autocast with a GradScaler. The CPU always computes in fp32.
``PIPELINE_DETERMINISTIC=1``
    Ask the GPU for deterministic kernels (see below).

Determinism
-----------
On the CPU a rerun is byte-identical (``train.cpu_threads`` fixes the reduction order;
``tests/test_determinism.py``). On a GPU it is not, by default:

* cuDNN autotuning (``cudnn.benchmark``, on here because the input size is fixed) times
  several convolution algorithms at the first call and keeps the fastest; the winner can
  change from run to run, and the algorithms sum in different orders.
* Several cuDNN backward algorithms (weight and data gradients) split the reduction across
  thread blocks and combine the parts with atomic adds, whose order is not fixed.
* The backward of bilinear interpolation (``upsample_bilinear2d_backward`` and its antialiased
  variant: the learned resizer's feature resize) and of scatter/index_add accumulate with
  ``atomicAdd``; CUDA has no deterministic kernel for them.
* cuBLAS may pick split-K reductions on several streams unless ``CUBLAS_WORKSPACE_CONFIG`` is
  set before its first call.
* With several GPUs, NCCL's reduction order is fixed for one topology and GPU count; another
  GPU count changes the per-GPU batches, the reduction tree and the BatchNorm statistics, so
  results are comparable but not identical across GPU counts.
* Mixed precision is itself deterministic, but rounds differently from fp32, and fp16's
  GradScaler skips the steps whose gradients overflow.

``PIPELINE_DETERMINISTIC=1`` turns on ``torch.use_deterministic_algorithms`` (warn-only),
``cudnn.deterministic``, turns off ``cudnn.benchmark`` and sets
``CUBLAS_WORKSPACE_CONFIG=:4096:8``. The cost: no autotuning and only deterministic
convolution algorithms (often slower, by a margin that depends on the model and the GPU:
measure it), and a little more cuBLAS workspace memory. Kernels without a deterministic
implementation (the interpolation backward above) only warn, since erroring would stop
every learned-resizer run; so learned-resizer runs stay non-deterministic on a GPU even then.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from pipeline.core.errors import DeviceError
from pipeline.loaders.transforms import normalize

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: Variables through which a scheduler hands out GPUs: lists of device ids...
GPU_LIST_VARS = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS")
#: ... and counts (``[type:]count``).
GPU_COUNT_VARS = ("SLURM_GPUS_ON_NODE", "SLURM_GPUS", "SLURM_GPUS_PER_NODE")
#: Device lists that mean "no GPU" (-1 hides every device; SGE writes NoDevFiles).
NO_GPU_LISTS = ("", "-1", "none", "nodevfiles", "void")


@dataclass(frozen=True)
class Accel:
    """How one process computes: its device, the autocast dtype (``None``: fp32) and whether
    images and weights use the channels-last memory layout.

    Channels-last is the default on every device: cuDNN's tensor-core kernels want it, and so
    do oneDNN's CPU convolutions. Measured on 2 AMD EPYC (Zen 4) cores, one thread, a training
    step at batch 64 (fp32): resnet_tiny 1.31x at 32 px and 1.46x at 64 px, the learned
    64 -> 32 resizer in front of it 1.36x, MobileNetV3-small-0.5 at 64 px 1.85x the
    contiguous layout's images/s (results/bench/loop.csv has the project's loop in it)."""

    device: torch.device
    amp: torch.dtype | None = None
    channels_last: bool = True
    buffers: dict[torch.Size, torch.Tensor] = field(default_factory=dict, compare=False,
                                                    repr=False)

    @property
    def precision(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision region for forward passes (a no-op in fp32)."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A loss scaler for fp16 (whose small gradients underflow); ``None`` otherwise."""
        if self.amp != torch.float16:
            return None
        return torch.amp.GradScaler(self.device.type)

    def input_buffer(self, images: torch.Tensor) -> torch.Tensor | None:
        """The float batch that CPU uint8 ``images`` are normalised into, kept for the next
        batch of the same shape (``None`` on a GPU, or for float images)."""
        if images.dtype != torch.uint8 or images.device.type != "cpu":
            return None
        buffer = self.buffers.get(images.shape)
        if buffer is None:
            self.buffers.clear()
            buffer = self.buffers[images.shape] = torch.empty(images.shape,
                                                              memory_format=self.layout(images))
        return buffer

    def layout(self, images: torch.Tensor) -> torch.memory_format:
        """The memory layout of a batch: channels-last for image batches ``(B, C, H, W)``
        when this process uses it, else the default."""
        if self.channels_last and images.ndim == 4:
            return torch.channels_last
        return torch.contiguous_format

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device (in place) in this layout."""
        if self.channels_last:
            return model.to(self.device, memory_format=torch.channels_last)
        return model.to(self.device)

    def batch(self, images: torch.Tensor,
              targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A loader's (uint8) batch on the device, normalised, in this layout.

        On the CPU the normalised images are written into one reused buffer, so a batch is
        valid until the next call (the training and evaluation loops are done with a batch
        before they ask for the next).
        """
        non_blocking = self.device.type == "cuda"
        images = images.to(self.device, non_blocking=non_blocking)
        images = normalize(images, out=self.input_buffer(images))
        images = images.contiguous(memory_format=self.layout(images))
        return images, targets.to(self.device, non_blocking=non_blocking)


def as_accel(device: torch.device | Accel) -> Accel:
    """``device`` itself, or fp32 and channels-last on a plain ``torch.device``."""
    return device if isinstance(device, Accel) else Accel(torch.device(device))


def gpu_request(env: Mapping[str, str] = os.environ) -> str | None:
    """Why the environment says this process should have a GPU (``None``: it does not)."""
    if env.get("PIPELINE_REQUIRE_GPU", "").strip().lower() not in ("", "0", "false", "no"):
        return f"PIPELINE_REQUIRE_GPU={env['PIPELINE_REQUIRE_GPU']}"
    for name in GPU_LIST_VARS:
        value = env.get(name)
        if value is not None and value.strip().lower() not in NO_GPU_LISTS:
            return f"{name}={value}"
    for name in GPU_COUNT_VARS:
        value = env.get(name)
        if value is not None and value.strip().rsplit(":", 1)[-1] not in ("", "0"):
            return f"{name}={value}"
    return None


def why_no_gpu() -> str:
    """A diagnosis of why torch sees no GPU."""
    if torch.version.cuda is None:
        return (f"this torch ({torch.__version__}) is a CPU-only build; install the CUDA build "
                f"pinned in uv.lock (uv sync)")
    return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable device: "
            f"check `nvidia-smi` on this node, the driver version, and that the GPU request "
            f"(SLURM --gpus, CUDA_VISIBLE_DEVICES) names existing devices")


def check_gpu(env: Mapping[str, str] = os.environ) -> None:
    """Raise :class:`DeviceError` when a GPU was asked for but torch cannot use one."""
    reason = gpu_request(env)
    if reason is not None and not torch.cuda.is_available():
        raise DeviceError(
            f"a GPU was asked for ({reason}) but none is usable: {why_no_gpu()}. Run on a GPU "
            f"node, or unset {reason.split('=')[0]} to train on the CPU")


def gpu_count() -> int:
    """GPUs this process may use (those ``CUDA_VISIBLE_DEVICES`` leaves visible)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def precision_request(env: Mapping[str, str] = os.environ) -> str:
    """``PIPELINE_PRECISION``, checked."""
    value = env.get("PIPELINE_PRECISION", "auto").strip().lower() or "auto"
    if value not in PRECISIONS:
        raise DeviceError(f"PIPELINE_PRECISION={env['PIPELINE_PRECISION']!r} is not a precision; "
                          f"allowed: {', '.join(PRECISIONS)} (or unset it for auto)")
    return value


def amp_dtype(request: str, bf16_supported: bool) -> torch.dtype | None:
    """Autocast dtype on a GPU for a precision request."""
    if request == "fp32":
        return None
    if request == "fp16" or (request == "auto" and not bf16_supported):
        return torch.float16
    if not bf16_supported:
        raise DeviceError("PIPELINE_PRECISION=bf16 but this GPU has no bf16 support (it needs "
                          "compute capability 8.0 or later); use fp16 or auto")
    return torch.bfloat16


def deterministic_requested(env: Mapping[str, str] = os.environ) -> bool:
    """``PIPELINE_DETERMINISTIC`` set to a true value."""
    return env.get("PIPELINE_DETERMINISTIC", "").strip().lower() not in ("", "0", "false", "no")


def configure_gpu_kernels(deterministic: bool) -> None:
    """Autotuned kernels, or deterministic ones (see the module docstring for the costs)."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


def select_accel(local_rank: int = 0) -> Accel:
    """This process's device and precision: GPU ``local_rank`` with mixed precision when there
    is a GPU, the CPU in fp32 otherwise; channels-last on both."""
    check_gpu()
    request = precision_request()
    if not torch.cuda.is_available():
        if request not in ("auto", "fp32"):
            log.warning("PIPELINE_PRECISION=%s ignored: the CPU trains in fp32", request)
        return Accel(torch.device("cpu"), channels_last=True)
    if local_rank >= torch.cuda.device_count():
        raise DeviceError(f"process {local_rank} needs GPU {local_rank}, but only "
                          f"{torch.cuda.device_count()} are visible; lower PIPELINE_NPROC or make "
                          f"more GPUs visible (CUDA_VISIBLE_DEVICES, SLURM --gpus)")
    configure_gpu_kernels(deterministic_requested())  # before cuBLAS reads its workspace setting
    torch.cuda.set_device(local_rank)
    # native bf16 only (Ampere and later): older GPUs emulate it, slower than fp16
    amp = amp_dtype(request, torch.cuda.is_bf16_supported(including_emulation=False))
    accel = Accel(torch.device("cuda", local_rank), amp, channels_last=True)
    log.info("device %s (%s), %s autocast, channels-last%s", accel.device,
             torch.cuda.get_device_name(local_rank), accel.precision,
             ", deterministic kernels" if deterministic_requested() else "")
    return accel


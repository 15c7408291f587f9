"""Model registry: a resizer (registered by name) in front of any timm backbone.

Importing this package registers the project's own backbones into timm (``resnet_tiny``,
``bninception``), so ``timm.create_model`` builds them like any other model.
"""

from __future__ import annotations

from collections.abc import Callable

import timm
import torch
import torch.nn.functional as F
from torch import nn

import pipeline.models.bninception  # noqa: F401  (registers "bninception" into timm)
import pipeline.models.tiny  # noqa: F401  (registers "resnet_tiny" into timm)
from pipeline.models.band_energy import BandEnergyResizer
from pipeline.models.muller import MullerResizer
from pipeline.models.resizer import LearnedResizer
from pipeline.params.runs import ResizerSpec

ResizerFactory = Callable[[ResizerSpec], nn.Module]

RESIZERS: dict[str, ResizerFactory] = {}
#: Registered resizers with parameters of their own to train (not usable as fixed modes).
TRAINABLE: set[str] = set()
#: Resizers the data loaders can apply themselves, and the loaders' kernel for each (the
#: ``interpolation`` of :class:`~pipeline.loaders.LoaderSpec`).
LOADER_KERNELS: dict[str, str] = {}
#: The loaders' kernel for a run whose resizer they cannot apply: they bring images to the
#: input size with it, and the model's resizer does the rest.
PLAIN_KERNEL = "bilinear"


def register_resizer(name: str, trainable: bool = False, loader_kernel: str | None = None
                     ) -> Callable[[ResizerFactory], ResizerFactory]:
    """Decorator: make a resizer constructible by name from params.yaml (the factory builds it
    from a :class:`~pipeline.params.runs.ResizerSpec`); ``trainable`` when it
    has parameters to learn (the learned families), else it is a fixed resizer;
    ``loader_kernel``: the data loaders' kernel that is this resizer, when they can apply it
    (a fixed mode whose input and model sizes are equal needs one: the model then resizes
    nothing)."""
    def wrap(factory: ResizerFactory) -> ResizerFactory:
        RESIZERS[name] = factory
        if trainable:
            TRAINABLE.add(name)
        if loader_kernel is not None:
            LOADER_KERNELS[name] = loader_kernel
        return factory
    return wrap


def loader_kernel(resizer: str) -> str:
    """The kernel the data loaders resize with for a run of ``resizer``: its own where they
    can apply it, else :data:`PLAIN_KERNEL`."""
    return LOADER_KERNELS.get(resizer, PLAIN_KERNEL)


class FixedResizer(nn.Module):
    """A linear resizer to ``output_size``; the identity when the input already has that size.
    ``antialias=False`` is the learned resizer's skip path (plain bilinear sampling)."""

    def __init__(self, output_size: int, mode: str, antialias: bool = True):
        super().__init__()
        self.output_size = (output_size, output_size)
        self.mode = mode
        self.antialias = antialias

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 3, h, w)
        if tuple(x.shape[-2:]) == self.output_size:
            return x
        return F.interpolate(x, size=self.output_size, mode=self.mode, align_corners=False,
                             antialias=self.antialias)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, mode={self.mode}, antialias={self.antialias}"


@register_resizer("bilinear", loader_kernel="bilinear")
def bilinear(spec: ResizerSpec) -> nn.Module:
    """The default resizer: bilinear (antialiased, as in the data pipeline)."""
    return FixedResizer(spec.output_size, "bilinear")


@register_resizer("bicubic", loader_kernel="bicubic")
def bicubic(spec: ResizerSpec) -> nn.Module:
    """The IQA default resizer."""
    return FixedResizer(spec.output_size, "bicubic")


@register_resizer("bilinear_noaa")
def bilinear_noaa(spec: ResizerSpec) -> nn.Module:
    """Bilinear without antialiasing: what the learned resizer's skip alone does."""
    return FixedResizer(spec.output_size, "bilinear", antialias=False)


@register_resizer("band_energy")
def band_energy(spec: ResizerSpec) -> nn.Module:
    """A hand-built carrier of fine detail (:class:`BandEnergyResizer`)."""
    return BandEnergyResizer(spec.output_size)


@register_resizer("learned", trainable=True)
def learned(spec: ResizerSpec) -> nn.Module:
    """The paper's learned resizer with r residual blocks and n filters; its knobs
    ``zero_init`` and ``bound`` (params.yaml's ``resizer``)."""
    knobs = dict(spec.knobs)
    if spec.r is None or spec.n is None or not {"zero_init", "bound"} <= set(knobs):
        raise ValueError(f"the learned resizer needs r, n (params.yaml's top-level r, n) and the "
                         f"knobs zero_init, bound (its resizer section), got r={spec.r}, "
                         f"n={spec.n}, knobs {sorted(knobs)}")
    return LearnedResizer(spec.output_size, n=spec.n, r=spec.r, zero_init=knobs["zero_init"],
                          bound=knobs["bound"])


@register_resizer("muller", trainable=True)
def muller(spec: ResizerSpec) -> nn.Module:
    """MULLER, the authors' 4-parameter successor (:class:`MullerResizer`); starts as
    bilinear without antialiasing."""
    return MullerResizer(spec.output_size)


class ResizerNet(nn.Module):
    """``backbone(resizer(x))``: the one way resizers and backbones compose. ``stats``, for a
    backbone with published weights trained on other input statistics than ImageNet's, maps
    the resizer's output to them (:class:`pipeline.models.weights.InputStats`)."""

    def __init__(self, resizer: nn.Module, backbone: nn.Module, stats: nn.Module | None = None):
        super().__init__()
        self.resizer = resizer
        self.backbone = backbone
        self.stats = stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resizer(x)
        return self.backbone(x if self.stats is None else self.stats(x))


def build_resizer(spec: ResizerSpec) -> nn.Module:
    """The registered resizer ``spec`` names, built from it; ValueError naming the registered
    ones otherwise."""
    if spec.name not in RESIZERS:
        raise ValueError(f"unknown resizer {spec.name!r}; registered: "
                         f"{', '.join(sorted(RESIZERS))}")
    return RESIZERS[spec.name](spec)


#: Standard deviation of a fresh classifier's weights (torchvision's ResNet/MobileNetV2 recipe).
CLASSIFIER_INIT_STD = 0.01


def init_classifier(backbone: nn.Module) -> None:
    """Weights N(0, 0.01) and zero bias for a backbone's linear classifier.

    timm's MobileNet/EfficientNet family scales the classifier's init by 1/sqrt(classes),
    which suits 1,000 classes; with the embedded benchmark's 12 it gives logits of std ~10
    and a first-epoch loss of 5 to 10 (ln 12 = 2.48 is a uniform guess), from which SGD at the
    paper's lr never recovered. Independent of the class count, this init starts every
    backbone at a near-uniform guess.
    """
    head = backbone.get_classifier() if hasattr(backbone, "get_classifier") else None
    if isinstance(head, nn.Linear):
        nn.init.normal_(head.weight, std=CLASSIFIER_INIT_STD)
        nn.init.zeros_(head.bias)


def build_backbone(name: str, num_classes: int) -> nn.Module:
    """Any timm model by name (randomly initialised: no weights are downloaded), its
    classifier initialised by :func:`init_classifier`."""
    if not timm.is_model(name):
        raise ValueError(f"unknown backbone {name!r}: not in timm's registry (see "
                         f"timm.list_models()); the project adds resnet_tiny and bninception")
    backbone = timm.create_model(name, pretrained=False, num_classes=num_classes)
    init_classifier(backbone)
    return backbone


def build_model(backbone: str, resizer: ResizerSpec, num_classes: int, *,
                published: bool = False) -> ResizerNet:
    """Resizer then backbone, as a run in params.yaml describes them (the resizer:
    :attr:`pipeline.params.runs.Run.resizer_spec`), freshly initialised; ``published``: the
    backbone's runs start from published weights, so it sees its inputs with their statistics
    (the weights themselves are loaded by the run that starts from them,
    :func:`pipeline.models.weights.load_published`)."""
    from pipeline.models.weights import input_stats

    return ResizerNet(build_resizer(resizer),
                      build_backbone(backbone, num_classes),
                      input_stats(backbone) if published else None)


def check_models(params: dict, source: str = "params.yaml", *, weights: bool = False,
                 num_classes: int | None = None) -> None:
    """ConfigError naming every backbone timm cannot build, every fixed resizer that is not
    in :data:`RESIZERS` and every learned mode's ``kind`` that is not in :data:`TRAINABLE`
    (the registries are the lists; the schema keeps none); with ``weights`` (the plan), also
    every backbone's published weights that cannot be had or do not fit (``num_classes``:
    the ImageNet set's, when known), which reads every weights file."""
    from pipeline.core.errors import ConfigError
    from pipeline.models.weights import weights_problems
    from pipeline.params.runs import SECTIONS, TASKS, family_modes, is_fixed

    problems = [f"classification.backbones: {name!r} is not a timm model; allowed: any name in "
                f"timm.list_models() (e.g. resnet50, densenet121, mobilenetv2_100, "
                f"efficientnet_b0) or the project's bninception, resnet_tiny"
                for name in params["classification"]["backbones"] if not timm.is_model(name)]
    fixed = sorted(set(RESIZERS) - TRAINABLE)
    specs = [(task, SECTIONS[family], mode, spec) for task in TASKS
             for family, modes in family_modes(params, task).items()
             for mode, spec in modes.items()]
    problems += [f"{task}.{section}.{mode}.resizer = {spec['resizer']!r} is not a registered "
                 f"fixed resizer; allowed: {', '.join(fixed)}"
                 for task, section, mode, spec in specs
                 if is_fixed(spec) and spec["resizer"] not in fixed]
    problems += [f"{task}.{section}.{mode}.kind = {spec['kind']!r} is not a registered "
                 f"trainable resizer; allowed: {', '.join(sorted(TRAINABLE))}"
                 for task, section, mode, spec in specs
                 if not is_fixed(spec) and spec.get("kind", "learned") not in TRAINABLE]
    problems += [f"{task}.{section}.{mode}.resizer = {spec['resizer']!r} runs inside the model, "
                 f"which resizes nothing when input_size = model_size "
                 f"({spec['input_size']}): the run would train on the loader's "
                 f"{PLAIN_KERNEL} resize; give it a smaller model_size, or use a resizer the "
                 f"loaders apply: {', '.join(sorted(LOADER_KERNELS))}"
                 for task, section, mode, spec in specs
                 if is_fixed(spec) and spec["resizer"] in fixed
                 and spec["resizer"] not in LOADER_KERNELS
                 and spec.get("model_size", spec["input_size"]) == spec["input_size"]]
    if weights and not problems:  # the weights are checked against backbones that exist
        problems += weights_problems(params, num_classes)
    if problems:
        raise ConfigError(f"invalid configuration in {source}:\n  " + "\n  ".join(problems))

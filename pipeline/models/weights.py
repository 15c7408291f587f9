"""Published weights for a backbone: timm's from the hub, or a local file; checked up front.

``classification.weights`` in params.yaml maps a backbone to where its weights come from:

- ``scratch`` (or not listed): random initialisation, trained by the pipeline (the paper's
  route);
- ``timm``: timm's published ImageNet weights for the name (a tag such as
  ``resnet50.a1_in1k`` in the backbone's name picks one), fetched from the Hugging Face hub
  by timm;
- the path of a weights file (a state dict: ``.pth``, ``.pt``, ``.bin`` or ``.safetensors``),
  or of a folder holding ``model.safetensors`` or ``pytorch_model.bin`` (a downloaded hub
  snapshot): loaded by timm as published weights (``pretrained_cfg_overlay=dict(file=...)``,
  so timm's own key remapping applies) for machines without the hub.

The weights keep the input statistics they were trained with: :class:`InputStats` maps the
pipeline's ImageNet-normalised images to the weights' own mean and std between the resizer
and the backbone. What the configuration overrides (the resize interpolation, the eval crop,
the resolution) is said by :func:`overrides`, at plan time and in every run's metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from pipeline.core.errors import ConfigError
from pipeline.loaders.transforms import IMAGENET_MEAN, IMAGENET_STD
from pipeline.models.bninception import MODEL_NAME as BNINCEPTION_NAME
from pipeline.models.tiny import NAME as TINY_NAME
from pipeline.params.runs import SNAPSHOT_FILES, TIMM, published_weights, weights_file

log = logging.getLogger(__name__)

#: The project's own backbones (registered into timm without published weights): a file is
#: loaded into them as a plain state dict.
PROJECT_BACKBONES = frozenset({TINY_NAME, BNINCEPTION_NAME})
#: How many offending keys an error names.
SHOWN = 3


def _where(backbone: str, source: str) -> str:
    return f"classification.weights.{backbone} = {source!r}"


def read_weights(backbone: str, source: str) -> dict[str, torch.Tensor]:
    """The state dict of a path-valued source; ConfigError naming the file when it is
    missing or unreadable."""
    path = weights_file(source)
    if not path.is_file():
        what = (f"holds neither {' nor '.join(SNAPSHOT_FILES)}" if Path(source).is_dir()
                else "does not exist")
        raise ConfigError(f"{_where(backbone, source)}: {path} {what}; give a state dict "
                          f"(.pth, .pt, .bin, .safetensors), timm, or scratch")
    try:
        state = timm.models.load_state_dict(str(path), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader error is the file's fault
        raise ConfigError(f"{_where(backbone, source)}: {path} is not a readable state dict "
                          f"({type(exc).__name__}: {exc})") from None
    return state


def classifier_key(model: nn.Module) -> str:
    """The state-dict name of the model's classifier weight (timm's ``classifier``)."""
    return f"{model.pretrained_cfg['classifier']}.weight"


def _as_published(backbone: str, path: Path, classes: int) -> nn.Module:
    """``backbone`` for ``classes`` classes with the file's weights, as a run loads them:
    through timm's published-weights path (its per-model key remapping included), or, for
    the project's own backbones (which timm has no weights for), a strict state-dict load."""
    if backbone in PROJECT_BACKBONES:
        model = timm.create_model(backbone, pretrained=False, num_classes=classes)
        model.load_state_dict(timm.models.load_state_dict(str(path), weights_only=True),
                              strict=True)
        return model
    return timm.create_model(backbone, pretrained=True, num_classes=classes,
                             pretrained_cfg_overlay=dict(file=str(path), num_classes=classes))


def mismatch(backbone: str, state: Mapping[str, torch.Tensor], classes: int) -> str:
    """How a state dict's keys and shapes differ from ``backbone``'s, in a few words."""
    expected = timm.create_model(backbone, pretrained=False, num_classes=classes).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
              for k in sorted(set(expected) & set(state))
              if tuple(expected[k].shape) != tuple(state[k].shape)]
    return "; ".join(f"{len(keys)} {what} (e.g. {', '.join(keys[:SHOWN])})"
                     for keys, what in ((missing, "missing keys"),
                                        (unexpected, "unexpected keys"),
                                        (shapes, "keys of other shapes")) if keys)


def file_problems(backbone: str, source: str, num_classes: int | None) -> list[str]:
    """Why a weights file does not fit ``backbone`` (it does not load as the run would load
    it; a class count other than ``num_classes``, when that is known), as lines naming the
    file; empty when it fits."""
    state = read_weights(backbone, source)
    path = weights_file(source)
    head = classifier_key(timm.create_model(backbone, pretrained=False))
    if head not in state:
        return [f"{_where(backbone, source)}: {path} has no {head} (the classifier of "
                f"{backbone}); it is not a {backbone} checkpoint"]
    classes = state[head].shape[0]
    try:
        _as_published(backbone, path, classes)
    except Exception as exc:  # noqa: BLE001 - what the load says is the file's problem
        return [f"{_where(backbone, source)}: {path} does not fit {backbone} (is it another "
                f"architecture's?): {mismatch(backbone, state, classes) or exc}"]
    if num_classes is not None and classes != num_classes:
        return [f"{_where(backbone, source)}: {path} has a {classes}-class classifier but the "
                f"ImageNet set here has {num_classes} classes; use weights trained on these "
                f"classes"]
    return []


def timm_problems(backbone: str, num_classes: int | None) -> list[str]:
    """Why timm cannot give published weights for ``backbone`` (none published, or for
    another number of classes); empty when it can."""
    if backbone not in timm.list_models(pretrained=True) and not timm.list_pretrained(
            f"{backbone}.*"):
        near = timm.list_pretrained(f"{backbone.split('.')[0]}*")[:5]
        return [f"{_where(backbone, TIMM)}: timm publishes no weights for {backbone!r}"
                f"{'; published: ' + ', '.join(near) if near else ''} (name one as the "
                f"backbone, or give a weights file's path)"]
    classes = timm.create_model(backbone, pretrained=False).pretrained_cfg.get("num_classes")
    if num_classes is not None and classes != num_classes:
        return [f"{_where(backbone, TIMM)}: timm's published weights for {backbone} have "
                f"{classes} classes but the ImageNet set here has {num_classes}; use weights "
                f"trained on these classes (a file), or scratch"]
    return []


def weights_problems(params: Mapping[str, Any], num_classes: int | None) -> list[str]:
    """Problem lines for every backbone's published weights (what the plan checks before any
    stage runs); ``num_classes``: the ImageNet set's class count when known."""
    problems = []
    for backbone in params["classification"]["backbones"]:
        source = published_weights(params, backbone)
        if source is None:
            continue
        try:
            problems += (timm_problems(backbone, num_classes) if source == TIMM
                         else file_problems(backbone, source, num_classes))
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def check_source(backbone: str, source: str, num_classes: int) -> None:
    """ConfigError naming the source when ``backbone``'s published weights cannot be had or
    do not fit ``num_classes`` classes (what a run checks before it starts)."""
    problems = (timm_problems(backbone, num_classes) if source == TIMM
                else file_problems(backbone, source, num_classes))
    if problems:
        raise ConfigError("\n".join(problems))


def load_published(backbone: str, source: str, num_classes: int) -> nn.Module:
    """``backbone`` with its published weights (``source``: ``timm`` or a path), for
    ``num_classes`` classes; ConfigError naming the source when they cannot be loaded."""
    check_source(backbone, source, num_classes)
    if source == TIMM:
        try:
            return timm.create_model(backbone, pretrained=True, num_classes=num_classes)
        except Exception as exc:  # noqa: BLE001 - the hub or the cache failed
            raise ConfigError(
                f"{_where(backbone, TIMM)}: could not fetch timm's published weights "
                f"({type(exc).__name__}: {exc}). Without the hub, download them once and set "
                f"classification.weights.{backbone} to the file's path") from None
    return _as_published(backbone, weights_file(source), num_classes)


def expected_preprocessing(backbone: str) -> dict[str, Any]:
    """What the published weights of ``backbone`` were trained and evaluated with (timm's
    pretrained config): mean, std, interpolation, crop_pct, input_size."""
    found = timm.models.get_pretrained_cfg(backbone)
    cfg = found.to_dict() if found is not None else (  # resnet_tiny sets its own
        timm.create_model(backbone, pretrained=False).pretrained_cfg)
    return {key: cfg.get(key) for key in ("mean", "std", "interpolation", "crop_pct",
                                          "input_size")}


def overrides(params: Mapping[str, Any], backbone: str) -> list[str]:
    """Where the configuration departs from what ``backbone``'s published weights expect, a
    line each (empty for scratch): the statistics are adopted, the rest is the experiment's."""
    if published_weights(params, backbone) is None:
        return []
    cfg = expected_preprocessing(backbone)
    default = params["classification"]["baselines"]["default"]
    crop, size = params["loader"]["eval_crop"], default["input_size"]
    lines = []
    if (tuple(cfg["mean"]), tuple(cfg["std"])) != (IMAGENET_MEAN, IMAGENET_STD):
        lines.append(f"mean/std {tuple(cfg['mean'])}/{tuple(cfg['std'])} adopted (mapped "
                     f"from the pipeline's ImageNet statistics in front of the backbone)")
    if cfg["interpolation"] and cfg["interpolation"] != default["resizer"]:
        lines.append(f"interpolation: the weights were evaluated with {cfg['interpolation']}, "
                     f"classification.baselines.default.resizer is {default['resizer']}")
    if cfg["crop_pct"] and abs(cfg["crop_pct"] - crop) > 1e-9:
        lines.append(f"eval crop: the weights' crop_pct is {cfg['crop_pct']}, "
                     f"loader.eval_crop is {crop}")
    if cfg["input_size"] and cfg["input_size"][-1] != size:
        lines.append(f"resolution: the weights were trained at {cfg['input_size'][-1]} px, "
                     f"the default runs at {size} px")
    return [f"{backbone} ({published_weights(params, backbone)}): {line}" for line in lines]


class InputStats(nn.Module):
    """Per-channel affine map from ImageNet-normalised images to the normalisation a
    backbone's published weights expect: ``(x * std_in + mean_in - mean) / std``. Its
    buffers are not saved (they follow from the configuration), so checkpoints keep the
    same keys."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        scale = torch.tensor(IMAGENET_STD) / torch.tensor(std)
        shift = (torch.tensor(IMAGENET_MEAN) - torch.tensor(mean)) / torch.tensor(std)
        self.register_buffer("scale", scale.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def input_stats(backbone: str) -> InputStats | None:
    """The map to ``backbone``'s published statistics; None where they are ImageNet's."""
    cfg = expected_preprocessing(backbone)
    if (tuple(cfg["mean"]), tuple(cfg["std"])) == (IMAGENET_MEAN, IMAGENET_STD):
        return None
    return InputStats(tuple(cfg["mean"]), tuple(cfg["std"]))

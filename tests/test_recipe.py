"""The recipe knobs that make training train: lr scaled to the batch, warm-up, clipping,
per-backbone overrides, the resizer's own lr and weight decay, and the classifier's init."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from pipeline.models import CLASSIFIER_INIT_STD, build_backbone, build_model
from pipeline.params.config import ConfigError, validate
from pipeline.params.runs import all_runs, get_run, scaled_lr, schedule
from pipeline.training.loop import (is_resizer_param, lr_factor, make_optimizer, make_scheduler,
                                    norm_groups, step)
from pipeline.training.runner import recipe_for
from tests.conftest import make_recipe, resizer_spec


@pytest.mark.parametrize("batch, reference, expected", [(64, 256, 0.0125), (256, 256, 0.05),
                                                        (512, 256, 0.1), (32, 128, 0.0125)])
def test_linear_lr_scaling_rule(params, batch, reference, expected):
    params["loader"]["batch_size"], params["train"]["reference_batch"] = batch, reference
    assert math.isclose(scaled_lr(params, 0.05), expected)
    assert math.isclose(schedule(params, "resnet_tiny", "scratch")["lr"], expected)
    run = get_run(params, "classification", "resnet_tiny", "default", params["seeds"][0])
    assert math.isclose(run.lr, expected)


def test_backbone_override_replaces_its_schedule_only(params):
    other = params["classification"]["backbones"][1]  # the default's second backbone
    params["train"]["overrides"] = {other: {"scratch": {"lr": 0.02, "epochs": 3}}}
    validate(params)
    scale = params["loader"]["batch_size"] / params["train"]["reference_batch"]
    mine = schedule(params, other, "scratch")
    assert mine == {"lr": 0.02 * scale, "epochs": 3}
    assert schedule(params, "resnet_tiny", "scratch")["lr"] == 0.05 * scale
    assert schedule(params, other, "finetune")["lr"] == 0.005 * scale


def test_override_of_an_unknown_backbone_is_refused(params):
    params["train"]["overrides"] = {"resnet_huge": {"scratch": {"lr": 0.1}}}
    with pytest.raises(ConfigError, match="train.overrides names \\['resnet_huge'\\]"):
        validate(params)


def test_warmup_then_step_decay():
    recipe = make_recipe(epochs=10, lr=1.0, warmup_epochs=2, lr_decay=0.5, lr_decay_epochs=2)
    assert [round(lr_factor(e, recipe), 4) for e in range(6)] == [0.3333, 0.6667, 0.5, 0.5,
                                                                  0.25, 0.25]
    assert lr_factor(0, make_recipe(epochs=1, lr=1.0)) == 1.0  # no warm-up: the paper's schedule
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, recipe)
    scheduler = make_scheduler(optimizer, recipe)
    seen = []
    for _ in range(3):
        seen.append(round(optimizer.param_groups[0]["lr"], 4))
        optimizer.step()
        scheduler.step()
    assert seen == [0.3333, 0.6667, 0.5]


def test_resizer_gets_its_own_lr_and_weight_decay():
    model = build_model("resnet_tiny", resizer_spec("learned", 16, 1, 4), 3)
    recipe = make_recipe(epochs=1, lr=0.1, weight_decay=1e-4, resizer_lr_mult=0.1,
                    resizer_weight_decay=0.0)
    groups = make_optimizer(model, recipe).param_groups
    resizer_ids = {id(p) for p in model.resizer.parameters()}
    for group in groups:
        in_resizer = {id(p) in resizer_ids for p in group["params"]}
        assert len(in_resizer) == 1
        if in_resizer.pop():
            assert math.isclose(group["lr"], 0.01) and group["weight_decay"] == 0.0
        else:
            assert group["lr"] == 0.1 and group["weight_decay"] in (1e-4, 0.0)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_recipe_for_reads_the_knobs(params):
    run = next(r for r in all_runs(params) if r.family == "joint")
    recipe = recipe_for(run, params["train"])
    knobs = {**params["resizer"], **params["classification"]["joint"][run.mode]["resizer"]}
    assert recipe.resizer_lr_mult == knobs["lr_mult"]
    assert recipe.resizer_weight_decay == knobs["weight_decay"]
    assert recipe.grad_clip == params["train"]["grad_clip"]
    assert recipe.warmup_epochs == params["train"]["warmup_epochs"]
    assert run.init is None and run.epochs == params["classification"]["joint"][run.mode]["epochs"]


def test_clipping_bounds_the_update_and_reports_norms():
    torch.manual_seed(0)
    model = build_model("resnet_tiny", resizer_spec("learned", 16, 1, 4), 3)
    x, y = torch.randn(4, 3, 32, 32) * 100, torch.tensor([0, 1, 2, 0])
    recipe = make_recipe(epochs=1, lr=1.0, momentum=0.0, weight_decay=0.0, grad_clip=0.5)
    optimizer = make_optimizer(model, recipe)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    grads: dict[bool, list[torch.Tensor]] = {False: [], True: []}  # before clipping, float64

    def keep(resizer: bool):
        return lambda grad: grads[resizer].append(grad.detach().double().flatten())

    for name, param in model.named_parameters():
        param.register_hook(keep(is_resizer_param(name)))
    norms = step(norm_groups(model), loss, optimizer, recipe.grad_clip, None)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    expected = [torch.linalg.vector_norm(torch.cat(grads[group])) for group in (False, True)]
    assert norms.shape == (2,) and torch.allclose(norms, torch.stack(expected))
    assert torch.linalg.vector_norm(after - before) <= 0.5 + 1e-4 < float(norms.norm())


@pytest.mark.parametrize("name", ["resnet_tiny", "mobilenetv2_050"])
def test_classifier_starts_near_a_uniform_guess(name):
    """timm's MobileNet init would give logits of std ~10 for 12 classes."""
    torch.manual_seed(0)
    backbone = build_backbone(name, 12)
    head = backbone.get_classifier()
    assert abs(float(head.weight.detach().std()) - CLASSIFIER_INIT_STD) < 0.002
    assert float(head.bias.detach().abs().max()) == 0
    backbone.eval()
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(backbone(torch.randn(8, 3, 32, 32)),
                                                 torch.zeros(8, dtype=torch.long))
    assert abs(float(loss) - math.log(12)) < 0.5


def test_schema_refuses_a_bad_knob(params):
    bad = copy.deepcopy(params)
    bad["resizer"]["bound"] = -1
    with pytest.raises(ConfigError, match="resizer.bound"):
        validate(bad)
    bad = copy.deepcopy(params)
    bad["iqa"]["joint"] = {"x": {"input_size": 64}}
    with pytest.raises(ConfigError, match="the joint family is classification only"):
        validate(bad)

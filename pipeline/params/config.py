"""Load and validate ``params.yaml``: the one configuration both engines read.

The schema in ``workflow/schemas/params.schema.yaml`` (JSON Schema 2020-12) is the contract;
Snakemake's ``validate()`` uses the same file. On top of the schema, :func:`check_semantics`
checks what a schema cannot say (cross-field rules, paths that must exist). Every failure is a
:class:`ConfigError` whose message names the key, the value and what is allowed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from pipeline.core.errors import ConfigError
from pipeline.params.runs import check_runs

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "params.schema.yaml"
DEFAULT_PARAMS = Path("params.yaml")

#: Where the synth stages write; a root equal to one of these need not exist yet.
SYNTHETIC_IMAGENET_DIR = "data/synthetic/imagenet"
SYNTHETIC_AVA_DIR = "data/synthetic/ava"
#: The embedded benchmark's second regime (``synthetic.attenuated``), the ``attenuated`` task's.
SYNTHETIC_ATTENUATED_DIR = "data/synthetic/attenuated"

@functools.cache
def load_schema() -> dict[str, Any]:
    """The params schema as a dict."""
    with SCHEMA_PATH.open() as fh:
        return yaml.safe_load(fh)


def _key_path(path: Iterator[Any]) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "<top level>"


def _allowed(error: jsonschema.ValidationError) -> str:
    """Say what the failing schema keyword allows, in words."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return f"allowed keys here: {', '.join(allowed)}" if allowed else "no extra keys allowed"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "type"):
        bounds = [f"{k}={schema[k]}" for k in ("minimum", "exclusiveMinimum", "maximum",
                                               "exclusiveMaximum") if k in schema]
        typ = schema.get("type", "")
        return f"allowed: {typ} {' '.join(bounds)}".strip()
    if kind == "enum":
        return f"allowed values: {', '.join(map(str, error.validator_value))}"
    if kind == "required":
        return "add the missing key (see params.yaml in the repository for an example)"
    if kind == "pattern":
        return f"must match the pattern {error.validator_value}"
    return f"schema rule {kind}={error.validator_value!r}"


def format_error(error: jsonschema.ValidationError, source: str) -> str:
    """One readable line per schema violation."""
    key = _key_path(error.absolute_path)
    if error.validator == "anyOf" and error.context:
        # the form the value comes closest to (e.g. a fixed mode with a stray key)
        return format_error(jsonschema.exceptions.best_match(error.context), source)
    if error.validator == "additionalProperties":
        # keys as YAML read them: an unquoted 4:4:4 is the integer 14644
        extra = sorted(map(str, set(error.instance) - set(error.schema.get("properties", {}))))
        key = ".".join(filter(None, [key if error.absolute_path else "", extra[0] if extra else ""]))
        return f"{source}: unknown key '{key}'; {_allowed(error)}"
    if error.validator == "required":
        return f"{source}: {key}: {error.message}; {_allowed(error)}"
    return f"{source}: {key} = {error.instance!r} is invalid ({error.message}); {_allowed(error)}"


def validate_schema(params: Mapping[str, Any], source: str = "params.yaml") -> None:
    """Raise :class:`ConfigError` listing every schema violation."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = "\n  ".join(format_error(e, source) for e in errors)
        raise ConfigError(f"invalid configuration:\n  {lines}")


def check_semantics(params: Mapping[str, Any], source: str = "params.yaml") -> None:
    """Cross-field rules and paths the schema cannot express. Backbone names are checked
    against timm's registry by :func:`pipeline.models.check_models` (the ``plan`` stage and
    every model-building stage), so that this module never imports torch."""
    problems: list[str] = []
    for name in ("imagenet", "ava"):
        synth = params["synthetic"][name]
        if synth["min_side"] > synth["max_side"]:
            problems.append(f"synthetic.{name}.min_side = {synth['min_side']} exceeds max_side = "
                            f"{synth['max_side']}; allowed: min_side <= max_side")
    for key in ("synthetic.imagenet.fine_cycles", "synthetic.imagenet.fine_amplitude",
                "synthetic.imagenet.nuisance_cycles", "synthetic.imagenet.nuisance_amplitude",
                "synthetic.ava.votes", "synthetic.ava.jpeg_quality", "synthetic.ava.contrast",
                "synthetic.ava.detail_cycles", "loader.train_scale"):
        low, high = lookup(params, key)
        if low > high:
            problems.append(f"{key} = {[low, high]}: the first value must not exceed the second")
    problems += check_runs(params)
    problems += missing_data(params["data"])
    if problems:
        raise ConfigError(f"invalid configuration in {source}:\n  " + "\n  ".join(problems))


#: The official ImageNet archives (pipeline.data.archives reads their names and MD5s from
#: torchvision, which this module never imports; tests/test_imagenet_data.py checks they agree).
IMAGENET_ARCHIVES = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar",
                     "ILSVRC2012_devkit_t12.tar.gz")


def _has_entries(folder: Path) -> bool:
    return folder.is_dir() and next(folder.iterdir(), None) is not None


def imagenet_layout_problem(root: Path, layout: str) -> str | None:
    """Why ``root`` cannot hold ImageNet in ``layout`` (cheap: no file is read), or None."""
    tree = all(_has_entries(root / split) for split in ("train", "val"))
    archives = all((root / name).is_file() and (root / name).stat().st_size > 0
                   for name in IMAGENET_ARCHIVES)
    if layout == "tree" and not tree:
        return (f"data.imagenet.root = {str(root)!r} has no extracted tree (layout: tree needs "
                f"non-empty train/ and val/ folders of <wnid>/*.JPEG)")
    if layout == "archives" and not archives:
        missing = [n for n in IMAGENET_ARCHIVES if not (root / n).is_file()
                   or (root / n).stat().st_size == 0]
        return (f"data.imagenet.root = {str(root)!r} lacks {', '.join(missing)} (missing or "
                f"empty; layout: archives needs all of {', '.join(IMAGENET_ARCHIVES)})")
    if layout == "auto" and not (tree or archives):
        what = "is empty" if not _has_entries(root) else "holds neither layout"
        return (f"data.imagenet.root = {str(root)!r} {what}: put ImageNet there as an extracted "
                f"tree (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) or as the official archives "
                f"({', '.join(IMAGENET_ARCHIVES)})")
    return None


def missing_data(data: Mapping[str, Any]) -> list[str]:
    """A problem line per dataset root that is not written by a synth stage and does not exist,
    is empty, or does not hold the layout asked for (checked before any stage runs, so no stage
    starts, and no output is removed, for data that cannot be prepared)."""
    problems = []
    imagenet, ava = data["imagenet"], data["ava"]
    if imagenet["root"] != SYNTHETIC_IMAGENET_DIR and not Path(imagenet["root"]).is_dir():
        problems.append(
            f"data.imagenet.root = {imagenet['root']!r} does not exist; point it at a folder with "
            f"{', '.join(IMAGENET_ARCHIVES[:2])} and {IMAGENET_ARCHIVES[2]}, or "
            f"at an extracted tree (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG), or set it to "
            f"{SYNTHETIC_IMAGENET_DIR!r} for the embedded synthetic benchmark")
    elif imagenet["root"] != SYNTHETIC_IMAGENET_DIR:
        problem = imagenet_layout_problem(Path(imagenet["root"]), imagenet["layout"])
        problems += [problem] if problem else []
    extract_to, root = Path(imagenet["extract_to"]).resolve(), Path(imagenet["root"]).resolve()
    if extract_to == root or root in extract_to.parents:
        problems.append(f"data.imagenet.extract_to = {imagenet['extract_to']!r} lies inside "
                        f"data.imagenet.root; extract somewhere else (the dataset stays untouched)")
    if ava["root"] != SYNTHETIC_AVA_DIR and not Path(ava["root"]).is_dir():
        problems.append(
            f"data.ava.root = {ava['root']!r} does not exist; point it at a folder with AVA.txt and "
            f"images/<id>.jpg (optionally aesthetics_image_lists/generic_*.jpgl), or set it to "
            f"{SYNTHETIC_AVA_DIR!r} for the embedded synthetic IQA set")
    elif ava["root"] != SYNTHETIC_AVA_DIR:
        root = Path(ava["root"])
        table = root / "AVA.txt"
        if not (table.is_file() and table.stat().st_size > 0 and _has_entries(root / "images")):
            problems.append(f"data.ava.root = {ava['root']!r} does not hold AVA: it needs a "
                            f"non-empty AVA.txt and images/<id>.jpg")
    return problems


def validate(params: Mapping[str, Any], source: str = "params.yaml") -> dict[str, Any]:
    """Schema plus semantic checks; returns the params unchanged when valid."""
    if not isinstance(params, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got "
                          f"{type(params).__name__}")
    validate_schema(params, source)
    check_semantics(params, source)
    return dict(params)


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read and validate a params file; raise :class:`ConfigError` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; run from the repository root or pass --params")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return validate(params, str(path))


def lookup(params: Mapping[str, Any], dotted: str) -> Any:
    """Value at a dotted key such as ``classification.learned.learned``."""
    node: Any = params
    for part in dotted.split("."):
        node = node[part]
    return node

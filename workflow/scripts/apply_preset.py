"""Apply a params preset: deep-merge ``workflow/presets/<name>.yaml`` into params.yaml, in one step.

    python workflow/scripts/apply_preset.py paper [published] [--params params.yaml]
        [--set data.imagenet.root=/mnt/imagenet ...] [--dry-run]

Several presets are merged in the order given (``paper published``: the paper's grid from
timm's published weights).

Mappings are merged key by key; lists and plain values replace those of params.yaml. ``--set``
overrides one dotted key after the preset (values parsed as YAML). The result is validated with
``pipeline.params.config.validate`` (schema and semantic checks, ImageNet root included) and the AVA root
is checked, all BEFORE anything is written: on any problem params.yaml is left untouched, the
script prints what to change (where to put the data) and exits 2. params.yaml keeps its comments
and block style (ruamel.yaml round trip).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.core.errors import ConfigError  # noqa: E402
from pipeline.core.io import write_text  # noqa: E402
from pipeline.params.config import SYNTHETIC_AVA_DIR, validate  # noqa: E402

PRESETS = ROOT / "workflow" / "presets"


def round_trip() -> YAML:
    """A YAML that reproduces params.yaml byte for byte (block style, comments)."""
    rt = YAML()
    rt.indent(mapping=2, sequence=2, offset=0)
    rt.preserve_quotes = True
    return rt


def last_entry(node: Any) -> tuple[Any, Any] | None:
    """(container, key) of the innermost last entry of a non-empty round-trip list or mapping:
    where ruamel keeps the comment lines that follow the node."""
    if isinstance(node, CommentedSeq) and node:
        key = len(node) - 1
    elif isinstance(node, CommentedMap) and node:
        key = list(node)[-1]
    else:
        return None
    return last_entry(node[key]) or (node, key)


def with_trailing_comment(old: Any, new: Any) -> Any:
    """``new`` as round-trip YAML carrying the comment lines that followed ``old``.

    ruamel attaches a comment that follows a list or mapping (say, the one introducing the next
    section) to the node's last entry, so replacing the node would drop it. Lost only when
    ``new`` is empty and has no entry to carry it.
    """
    source = last_entry(old)
    comment = source and source[0].ca.items.get(source[1])
    if not comment or not isinstance(new, (Sequence, Mapping)) or isinstance(new, str):
        return new
    buf = io.StringIO()
    round_trip().dump({"v": new}, buf)
    node = round_trip().load(buf.getvalue())["v"]
    target = last_entry(node)
    if target is None:
        return new
    target[0].ca.items[target[1]] = comment
    return node


def deep_merge(base: Any, overlay: Mapping[str, Any]) -> Any:
    """``overlay`` merged into ``base`` in place (mappings key by key, all else replaced,
    keeping the comments that followed what was replaced)."""
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            deep_merge(base[key], value)
        else:
            base[key] = with_trailing_comment(base.get(key), value)
    return base


def set_dotted(params: Any, assignment: str) -> None:
    """Apply one ``key.sub=value`` override (value parsed as YAML)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {assignment!r}: expected dotted.key=value")
    *parents, last = key.split(".")
    node = params
    for part in parents:
        if not isinstance(node.get(part), Mapping):
            raise ConfigError(f"--set {key}: '{part}' is not a section of params.yaml")
        node = node[part]
    node[last] = yaml.safe_load(raw)


def dataset_hints(name: str, params: Mapping[str, Any]) -> str:
    """Where the preset expects each dataset, and how to point it elsewhere."""
    imagenet, ava = params["data"]["imagenet"]["root"], params["data"]["ava"]["root"]
    return (f"preset '{name}' expects ImageNet at {imagenet} (ILSVRC2012_img_train.tar, "
            f"ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz, or an extracted "
            f"train/<wnid>/, val/<wnid>/ tree) and AVA at {ava} (AVA.txt, images/<id>.jpg, "
            f"aesthetics_image_lists/generic_ls_train.jpgl and generic_test.jpgl); put the data "
            f"there, or pass --set data.imagenet.root=/your/imagenet --set data.ava.root=/your/ava")


def check_data_roots(params: Mapping[str, Any]) -> list[str]:
    """Problems with dataset roots that config.validate does not check."""
    root = params["data"]["ava"]["root"]
    if root != SYNTHETIC_AVA_DIR and not Path(root).is_dir():
        return [f"data.ava.root = {root!r} does not exist"]
    return []


def apply_preset(names: str | Sequence[str], params_path: Path, overrides: Sequence[str] = ()
                 ) -> str:
    """The new params.yaml text with the presets ``names`` merged in order; ConfigError
    (params.yaml untouched) when it would be invalid."""
    names = [names] if isinstance(names, str) else list(names)
    rt = round_trip()
    params = rt.load(params_path.read_text())
    for name in names:
        preset_path = PRESETS / f"{name}.yaml"
        if not preset_path.is_file():
            known = ", ".join(sorted(p.stem for p in PRESETS.glob("*.yaml")))
            raise ConfigError(f"no preset '{name}' in {PRESETS}; available: {known}")
        deep_merge(params, yaml.safe_load(preset_path.read_text()) or {})
    name = " + ".join(names)
    for assignment in overrides:
        set_dotted(params, assignment)
    buf = io.StringIO()
    rt.dump(params, buf)
    text = buf.getvalue()
    plain = yaml.safe_load(text)
    problems = []
    try:
        validate(plain, f"{params_path} + preset {name}")
    except ConfigError as exc:
        problems.append(str(exc))
    problems += check_data_roots(plain)
    if problems:
        raise ConfigError("\n".join(problems) + "\n" + dataset_hints(name, plain)
                          + f"\n{params_path} was not changed")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset", nargs="+",
                        help="names of files in workflow/presets/ (without .yaml), merged in "
                             "order")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a dotted key after the preset")
    parser.add_argument("--dry-run", action="store_true", help="print the result, write nothing")
    args = parser.parse_args(argv)
    try:
        text = apply_preset(args.preset, args.params, args.overrides)
    except ConfigError as exc:
        print(f"apply_preset: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        sys.stdout.write(text)
    else:
        write_text(args.params, text)
        print(f"applied preset '{' + '.join(args.preset)}' to {args.params}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

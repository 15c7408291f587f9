"""What code a stage runs, and a hash of it that changes only when its behaviour can.

A stage's code is the import closure of its module inside the ``pipeline`` package, found by
reading the source (``ast``), never by importing it: every ``import``, at module level or inside
a function, counts, and so does every parent package's ``__init__``. The hash compares meaning,
not text: formatting, comments, docstrings, argparse help texts, progress-bar labels and log
message templates do not change it, so rewording them reruns nothing.

It does not depend on where the code lives either: files are hashed by content, not path, and
each import of a module of the package names the module's own content (:func:`identity`)
instead of its dotted path, so moving or renaming modules (and fixing their imports) reruns
nothing; what a stage imports, and from which file, still counts.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

PACKAGE = "pipeline"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Keyword arguments whose value is prose for people (argparse, tqdm), never behaviour.
PROSE_KEYWORDS = frozenset({"help", "description", "epilog", "desc"})
#: ``log.info("...", ...)``: the template is prose; its arguments still count.
LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
LOGGERS = frozenset({"log", "logger", "logging"})


def module_file(module: str, root: Path = REPO_ROOT) -> Path | None:
    """Source file of a module of the package (``None`` outside it or when absent)."""
    if module.split(".")[0] != PACKAGE:
        return None
    base = root.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _with_parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def imports_of(module: str, path: Path) -> set[str]:
    """Every module ``path`` may import (names from ``from x import y`` included, as they
    may be submodules), with their parent packages."""
    return set(_imports_of(module, path, path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=None)
def _imports_of(module: str, path: Path, mtime_ns: int) -> frozenset[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, _package_of(module, path))
            names |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return frozenset(parent for name in names if name for parent in _with_parents(name))


def closure(modules: list[str], root: Path = REPO_ROOT) -> dict[str, Path]:
    """Module name -> file of everything ``modules`` import inside the package, transitively."""
    found: dict[str, Path] = {}
    todo = [parent for module in modules for parent in _with_parents(module)]
    while todo:
        module = todo.pop()
        path = None if module in found else module_file(module, root)
        if path is not None:
            found[module] = path
            todo.extend(imports_of(module, path))
    return dict(sorted(found.items()))


class _Meaning(ast.NodeTransformer):
    """Drop what cannot change behaviour: docstrings and prose arguments."""

    def _body(self, node: ast.AST) -> ast.AST:
        body = node.body  # type: ignore[attr-defined]
        first = body[0] if body else None
        if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        return self.generic_visit(node)

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _body

    def visit_Call(self, node: ast.Call) -> ast.AST:
        node.keywords = [k for k in node.keywords if k.arg not in PROSE_KEYWORDS]
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in LOG_METHODS
                and isinstance(func.value, ast.Name) and func.value.id in LOGGERS and node.args):
            node.args = [ast.Constant(""), *node.args[1:]]
        return self.generic_visit(node)


def _dump(node: object) -> str:
    """A canonical text of a syntax tree: no positions, and empty fields left out so that
    Python versions which add new empty fields dump the same code alike."""
    if isinstance(node, ast.AST):
        fields = [f"{name}={_dump(value)}" for name, value in ast.iter_fields(node)
                  if value is not None and value != [] and name != "type_comment"]
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return f"[{','.join(_dump(item) for item in node)}]"
    return repr(node)


#: What an import of a module of the package names in a file's :func:`local_meaning`.
INTERNAL = "<pipeline>"
#: The meaning of a file without behaviour (an ``__init__`` holding only a docstring).
EMPTY = "Module(body=[Pass()])"


class _Wiring(ast.NodeTransformer):
    """Replace the dotted path of every import of a module of the package by ``name(path)``
    (relative imports resolved first; ``from x import y`` names ``x`` and ``x.y``, which may be
    a submodule); imports from outside the package stay as they are."""

    def __init__(self, module: str, path: Path, name: Callable[[str], str]):
        self.package, self.name = _package_of(module, path), name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        base = _absolute(node, self.package)
        if base.split(".")[0] == PACKAGE:
            named = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            node.module, node.level = "|".join(map(self.name, named)), 0
        return node

    def visit_Import(self, node: ast.Import) -> ast.AST:
        for alias in node.names:
            if alias.name.split(".")[0] == PACKAGE:
                alias.name = self.name(alias.name)
        return node


@functools.lru_cache(maxsize=None)
def _template(module: str, path: Path, mtime_ns: int) -> tuple[str, tuple[str, ...]]:
    """The file's meaning with the k-th module its imports of the package name reading
    ``@import<k>@``, and those modules, in order (parsed once per file version)."""
    targets: list[str] = []

    def mark(name: str) -> str:
        targets.append(name)
        return f"@import{len(targets) - 1}@"

    tree = _Meaning().visit(ast.parse(path.read_text(), str(path)))
    return _dump(_Wiring(module, path, mark).visit(tree)), tuple(targets)


def _meaning_text(module: str, path: Path, name: Callable[[str], str]) -> str:
    text, targets = _template(module, path, path.stat().st_mtime_ns)
    for k, target in enumerate(targets):
        text = text.replace(f"@import{k}@", name(target), 1)
    return text


@functools.lru_cache(maxsize=None)
def _local(module: str, path: Path, mtime_ns: int) -> str:
    return _meaning_text(module, path, lambda _: INTERNAL)


def local_meaning(module: str, path: Path) -> str:
    """The canonical text of one source file's behaviour, every import of the package's
    modules reading :data:`INTERNAL` (so it holds nothing of where any module lives)."""
    return _local(module, path, path.stat().st_mtime_ns)


def identity(module: str, root: Path = REPO_ROOT) -> str:
    """What a module of the package is, independent of where it lives: a hash of its
    :func:`local_meaning` (:data:`INTERNAL` for a name that is no module: a package without
    ``__init__``, or a function or class imported from a module)."""
    path = module_file(module, root)
    if path is None:
        return INTERNAL
    return hashlib.sha256(local_meaning(module, path).encode()).hexdigest()[:16]


def meaning(module: str, path: Path, root: Path = REPO_ROOT) -> str:
    """The canonical text of one source file's behaviour, each import of the package's
    modules naming the imported module's :func:`identity`."""
    return _meaning_text(module, path, lambda name: identity(name, root))


def code_hash(modules: list[str], root: Path = REPO_ROOT) -> str:
    """sha256 of the :func:`meaning` of every file with behaviour in the closure of
    ``modules``, in sorted order: not of their paths, so a pure move changes nothing."""
    texts = sorted(meaning(module, path, root) for module, path in closure(modules, root).items())
    digest = hashlib.sha256()
    for text in texts:
        if text != EMPTY:
            digest.update(f"{text}\n".encode())
    return digest.hexdigest()

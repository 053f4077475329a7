"""Adapters from outside queueprof: installed plugins (entry points) and ``module:attr``.

A plugin is an ordinary distribution that declares, in its own ``pyproject.toml``::

    [project.entry-points."queueprof.adapters"]
    jobtable = "jobtable_queueprof:CONTENDERS"

The object an entry point or a ``module:attr`` reference names is a :class:`Contender`, a
sequence of them (one queue with several settings), or a callable taking no argument that
returns either. Each contender's ``name`` is what ``--param contenders=`` accepts; its spec's
``CodePath``s must name functions that exist (checked when it is loaded, so a typo fails the
run before anything is measured instead of turning the profile into "other").
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import metadata
from pathlib import Path

from ..errors import AdapterContractError, AdapterReferenceError
from .base import AdapterSpec, Contender

ENTRY_POINT_GROUP = "queueprof.adapters"
"""The entry-point group queueprof looks plugins up in."""


def find_contenders(reference: str) -> tuple[Contender, ...]:
    """The contenders ``reference`` names: ``module:attr``, or an installed plugin's
    contender name (CodePaths not verified: the checker reports them one by one)."""
    if ":" in reference:
        return load_reference(reference, verify=False)
    plugins = installed_plugins()
    if reference not in plugins:
        raise AdapterReferenceError(
            f"{reference!r} is neither module:attr nor an installed plugin's contender "
            f"(installed: {', '.join(plugins) or 'none'}, entry-point group "
            f"{ENTRY_POINT_GROUP!r})" + "".join(f"; {b}" for b in broken_plugins())
        )
    return (plugins[reference],)


def load_reference(reference: str, *, verify: bool = True) -> tuple[Contender, ...]:
    """The contenders ``module:attr`` names (``attr`` may be dotted), CodePaths verified
    unless ``verify`` is false.

    The module is imported as Python imports it (``sys.path``, so ``PYTHONPATH`` or an
    installed package); raises :class:`AdapterReferenceError` naming what is wrong.
    """
    module_name, colon, attribute = reference.partition(":")
    if not colon or not module_name or not attribute:
        raise AdapterReferenceError(
            f"--adapter {reference!r}: write module:attribute, e.g. my_queue.bench:CONTENDER "
            f"(the module must be importable; an installed plugin's name also works)"
        )
    try:
        found: object = _import_here_too(module_name)
    except ImportError as error:
        raise AdapterReferenceError(
            f"--adapter {reference!r}: cannot import {module_name!r} ({error}); install the "
            "package that provides it, or run from its folder or put that on PYTHONPATH"
        ) from None
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise AdapterReferenceError(
                f"--adapter {reference!r}: {module_name} has no attribute {attribute!r}"
            ) from None
    contenders = as_contenders(found, f"--adapter {reference!r}")
    return verified(contenders) if verify else contenders


def _import_here_too(module_name: str) -> object:
    """``module_name`` imported as Python imports it, else from the current folder: the
    ``queueprof`` command, unlike ``python -m``, does not put that folder on ``sys.path``,
    so a ``jobs.py`` beside the user would not be found. The folder goes last, so it never
    shadows an installed package."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        here = str(Path.cwd())
        top = module_name.partition(".")[0]
        if error.name != top or here in sys.path or not _defines(Path(here), top):
            raise
        sys.path.append(here)
        return importlib.import_module(module_name)


def _defines(folder: Path, top: str) -> bool:
    """True when ``folder`` holds module or package ``top``."""
    return (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file()


def as_contenders(found: object, source: str) -> tuple[Contender, ...]:
    """``found`` (a Contender, a sequence of them, or a callable returning either) as a tuple."""
    if callable(found) and not isinstance(found, Contender):
        try:
            found = found()
        except TypeError as error:
            raise AdapterReferenceError(
                f"{source} is a function that cannot be called without arguments ({error}); "
                "name a function taking none, a Contender or a sequence of them"
            ) from None
    if isinstance(found, Mapping):
        found = tuple(found.values())
    if isinstance(found, Contender):
        return (found,)
    if isinstance(found, Iterable) and not isinstance(found, str | bytes):
        items = tuple(found)
        if items and all(isinstance(item, Contender) for item in items):
            return items
    raise AdapterReferenceError(
        f"{source} is a {type(found).__name__}, not an adapter: name a "
        "workloads.adapters.Contender, a sequence of them, or a function returning either"
    )


def installed_plugins() -> Mapping[str, Contender]:
    """Every contender of every installed plugin that loads, by name (loaded once per
    process). A plugin that does not load is left out, and :func:`broken_plugins` says why:
    one broken package must not stop comparisons that do not use it."""
    return _scan_plugins()[0]


def broken_plugins() -> Sequence[str]:
    """Why each installed plugin that does not load does not (empty when all load)."""
    return _scan_plugins()[1]


@cache
def _scan_plugins() -> tuple[Mapping[str, Contender], Sequence[str]]:
    found: dict[str, Contender] = {}
    broken: list[str] = []
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {entry.name!r} ({entry.value}) of {_distribution(entry)}"
        try:
            contenders = as_contenders(entry.load(), where)
        except (ImportError, AttributeError, AdapterReferenceError) as error:
            broken.append(f"{where} does not load ({error}); fix or uninstall that package")
            continue
        for contender in contenders:
            if contender.name in found:
                raise AdapterReferenceError(
                    f"{where}: contender {contender.name!r} is already provided by another "
                    "plugin; give each contender a name of its own"
                )
            found[contender.name] = contender
    return found, tuple(broken)


def _distribution(entry: metadata.EntryPoint) -> str:
    dist = entry.dist
    return f"the {dist.name!r} package" if dist is not None else "an installed package"


def verified(contenders: Sequence[Contender]) -> tuple[Contender, ...]:
    """``contenders`` after checking every CodePath of theirs resolves; else the mismatches."""
    # A spec whose library is missing is left to its load(), which names the package.
    problems = [p for c in contenders if c.spec.available() for p in code_path_problems(c.spec)]
    if problems:
        raise AdapterContractError(
            "the adapter's CodePaths do not match its code, so `analyze` would count that time "
            "as 'other':\n  " + "\n  ".join(problems)
        )
    return tuple(contenders)


def code_path_problems(spec: AdapterSpec, roots: Sequence[Path] = ()) -> list[str]:
    """What in ``spec.code_paths`` names no real function: one line per mismatch.

    Files are looked up under ``roots`` first (a profiled program's folder), then as
    :func:`find_source` does."""
    problems = []
    for path in spec.code_paths:
        source = find_source(path.file, spec.module, roots)
        if source is None:
            problems.append(
                f"{spec.name}: CodePath({path.op!r}, {path.file!r}, ...): no file ends with "
                f"{path.file!r} on sys.path or in {spec.module!r}'s package"
            )
            continue
        defined = defined_functions(source)
        for name in path.functions:
            if name not in defined:
                near = _nearest(name, defined)
                problems.append(
                    f"{spec.name}: CodePath({path.op!r}, {path.file!r}): {source} defines no "
                    f"function {name!r}" + (f" (did you mean {near!r}?)" if near else "")
                )
    return problems


def find_source(suffix: str, module: str, first: Sequence[Path] = ()) -> Path | None:
    """The file whose path ends with ``suffix``: under ``first``, a ``sys.path`` entry or
    the module's package folder (and its parents, for suffixes that start above it)."""
    roots: list[Path] = [*first, *(Path(entry or ".") for entry in sys.path)]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        for location in [*(spec.submodule_search_locations or ()), spec.origin or ""]:
            if location:
                roots.extend(Path(location).resolve().parents)
    for root in roots:
        candidate = root / suffix
        if candidate.is_file():
            return candidate
    return None


def defined_functions(source: Path) -> frozenset[str]:
    """Every function and method name defined in ``source`` (at any depth)."""
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )


def _nearest(name: str, names: Iterable[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(name, sorted(names), n=1)
    return close[0] if close else None


__all__ = [
    "ENTRY_POINT_GROUP",
    "as_contenders",
    "broken_plugins",
    "code_path_problems",
    "find_contenders",
    "installed_plugins",
    "load_reference",
    "verified",
]

"""Loads user strategies named in the config as ``module:Class`` with params, and hashes their code.

A strategy module is looked up in the config file's own folder first, then among installed
packages: never in the state directory (state is written by the daemon; code must come from where
the operator put it). The loaded class is instantiated with the config's ``params`` as keyword
arguments; parameters whose annotation is ``int``, ``float``, ``str`` or ``bool`` are type-checked
first, so ``{"window": "forty"}`` is one clear error instead of a failure deep inside a backtest.
Every failure is a :class:`~aistock_actors.errors.StrategyError` naming the strategy.

:func:`strategy_fingerprint` is the sha256 of the module's source file, the class path and the
params: recorded with a candidate's artifacts, like a model's hash, so a changed strategy file is
a different candidate.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

from aistock_actors.core.strategy.protocol import Strategy, missing_methods
from aistock_actors.errors import StrategyError

_CHECKED_TYPES: dict[type, tuple[type, ...]] = {
    int: (int,),
    float: (int, float),
    str: (str,),
    bool: (bool,),
}
"""Annotation -> accepted value types (an int is a valid float; a bool is not an int here)."""


def split_path(path: str) -> tuple[str, str]:
    """``"pkg.module:Class"`` -> ``("pkg.module", "Class")``; :class:`StrategyError` if not."""
    module, sep, cls = path.partition(":")
    if not sep or not module or not cls or not all(
        part.isidentifier() for part in (*module.split("."), *cls.split("."))
    ):
        raise StrategyError(f"strategy {path!r}: expected 'module:Class' (dotted names)")
    return module, cls


def _import_from(module: str, folder: Path | None, state_dir: Path | None) -> ModuleType:
    """Import ``module`` from ``folder`` (``folder/module.py`` or a package there) if it is there,
    else as an installed module; refuse a module whose file lies inside ``state_dir``."""
    found = None
    if folder is not None:
        base = folder.joinpath(*module.split("."))
        found = next(
            (f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()), None
        )
    if found is None:
        loaded = importlib.import_module(module)
        origin = getattr(loaded, "__file__", None)
    else:
        origin = str(found)
    inside_state = (
        state_dir is not None
        and origin is not None
        and Path(origin).resolve().is_relative_to(state_dir.resolve())
    )
    if inside_state:
        raise ImportError(f"{origin} is inside the state directory: no code is loaded from state")
    if found is None:
        return loaded
    # A config-folder module is (re)loaded from its file under a name unique to that path.
    name = "aistock_user_strategy_" + hashlib.sha256(str(found).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, found)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {found}")
    user = importlib.util.module_from_spec(spec)
    sys.modules[name] = user  # dataclasses and type hints resolve through sys.modules
    try:
        spec.loader.exec_module(user)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _pickle_by_value(user)
    return user


def _pickle_by_value(module: ModuleType) -> None:
    """Let the job runner's workers (loky, dask: both pickle with ``cloudpickle``, which joblib
    requires) receive the module's classes by value: the module's name exists only in this
    process, so pickling by reference would fail there."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)


def _type_hints(cls: type) -> dict[str, Any]:
    """The constructor's and the class's resolvable annotations (unresolvable ones are skipped:
    those params are then not type-checked)."""
    hints: dict[str, Any] = {}
    for source in (cls, vars(cls).get("__init__")):
        if source is None:
            continue
        try:
            hints.update(typing.get_type_hints(source))
        except Exception:  # an annotation that cannot be resolved is not checked
            continue
    return hints


def _check_params(path: str, cls: type, params: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError) as exc:
        raise StrategyError(f"strategy {path!r}: cannot read its parameters ({exc})") from exc
    hints = _type_hints(cls)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    for key, value in params.items():
        if key not in signature.parameters and not accepts_any:
            known = sorted(signature.parameters)
            raise StrategyError(f"strategy {path!r}: unknown param {key!r} (known: {known})")
        expected = hints.get(key)
        allowed = _CHECKED_TYPES.get(expected) if isinstance(expected, type) else None
        if allowed is None or not isinstance(expected, type):
            continue
        if not isinstance(value, allowed) or (expected is not bool and isinstance(value, bool)):
            raise StrategyError(
                f"strategy {path!r}: param {key!r} must be {expected.__name__}, "
                f"got {type(value).__name__} {value!r}"
            )


def load_strategy(
    path: str,
    params: dict[str, Any] | None = None,
    *,
    config_dir: Path | None = None,
    state_dir: Path | None = None,
) -> Strategy:
    """Import ``path`` (``module:Class``), check it is a strategy, instantiate it with ``params``.

    Raises :class:`StrategyError` naming ``path`` when the module does not import, the class is
    missing or lacks a method, a param is unknown or of the wrong type, or the constructor fails.
    """
    module_name, class_name = split_path(path)
    try:
        module = _import_from(module_name, config_dir, state_dir)
    except Exception as exc:  # any error raised while importing user code: name it
        raise StrategyError(f"strategy {path!r}: module does not import: {exc!r}") from exc
    target: Any = module
    for part in class_name.split("."):
        target = getattr(target, part, None)
    if not isinstance(target, type):
        raise StrategyError(
            f"strategy {path!r}: module {module_name!r} has no class {class_name!r}"
        )
    missing = missing_methods(target)
    if missing:
        raise StrategyError(f"strategy {path!r}: class {class_name} lacks method(s) {missing}")
    values = dict(params or {})
    _check_params(path, target, values)
    try:
        strategy = target(**values)
    except Exception as exc:  # the user's constructor may raise anything
        raise StrategyError(f"strategy {path!r}: constructor raised {exc!r}") from exc
    if not isinstance(getattr(strategy, "horizon", None), int):
        raise StrategyError(f"strategy {path!r}: needs an int attribute 'horizon'")
    if not isinstance(getattr(strategy, "name", None), str):
        raise StrategyError(f"strategy {path!r}: needs a str attribute 'name'")
    return typing.cast(Strategy, strategy)


def strategy_fingerprint(strategy: object, path: str, params: dict[str, Any] | None) -> str:
    """sha256 of the strategy class's source file, ``path`` and ``params`` (canonical JSON)."""
    digest = hashlib.sha256(path.encode())
    digest.update(json.dumps(params or {}, sort_keys=True, default=repr).encode())
    source = inspect.getsourcefile(type(strategy))
    if source is not None:
        digest.update(Path(source).read_bytes())
    return digest.hexdigest()

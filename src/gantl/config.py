"""Config machinery shared by every command.

Each area defines its options as a dataclass next to the code that uses them (so a
module and its knobs change together); this module turns TOML files and ``key=value``
overrides into those dataclasses, validates types, allowed values and ranges, and
writes the resolved config back as TOML so ``--config run/config.toml`` repeats a run.

Field metadata understood here (use :func:`option` to set it):
``choices`` (allowed values), ``min``/``max`` (inclusive bounds), ``help``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from gantl.errors import ConfigError

T = TypeVar("T")


def option(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
           help: str = "", choices: typing.Sequence[Any] | None = None,
           min: float | None = None, max: float | None = None) -> Any:
    """A dataclass field carrying validation metadata (choices, bounds, help text)."""
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None,
            "min": min, "max": max}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (from TOML or a CLI string) to ``tp`` or raise a ConfigError naming ``key``."""
    optional, inner = _is_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null", "")):
        if optional:
            return None
        raise ConfigError(f"config key '{key}' must not be empty; give a {_type_name(inner)}")
    tp = inner
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a table of options, got {value!r}")
        return from_dict(tp, value, prefix=key)
    if origin in (list, tuple):
        (elem,) = get_args(tp)[:1] or (Any,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        items = [_coerce(v, elem, f"{key}[{i}]") for i, v in enumerate(value)]  # floats checked finite there
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a table, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"config key '{key}' must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}") from None
        if not math.isfinite(as_float):  # int(inf) raises OverflowError, int(nan) ValueError
            raise ConfigError(f"config key '{key}' must be a finite integer, got {value!r}")
        if as_float != int(as_float):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return int(as_float)
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}") from None
        _check_finite(number, key)
        return number
    if tp is str:
        return str(value)
    if tp is Path:
        return Path(value)
    return value


def _check_finite(value: float, key: str) -> None:
    """Refuse nan and +-inf: no option means anything at them, and bounds checks let nan through.

    ``nan < min`` and ``nan > max`` are both false, so ``--kimg nan`` passed every bound and crashed
    the training loop (after creating a run dir); ``inf`` passed ``min=0`` with no ``max``.
    """
    if not math.isfinite(value):
        raise ConfigError(f"config key '{key}' is {value}; give a finite number")


def _check_field(f: dataclasses.Field, value: Any, key: str) -> None:
    choices = f.metadata.get("choices")
    if choices is not None and value is not None:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v not in choices:
                allowed = ", ".join(str(c) for c in choices)
                raise ConfigError(f"config key '{key}' has value {v!r}; allowed values: {allowed}")
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _check_finite(value, key)
        if lo is not None and value < lo:
            raise ConfigError(f"config key '{key}' is {value}, below the minimum {lo}")
        if hi is not None and value > hi:
            raise ConfigError(f"config key '{key}' is {value}, above the maximum {hi}")


def from_dict(cls: type[T], data: dict[str, Any], *, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (possibly nested) dict, refusing unknown keys."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k.replace("-", "_") not in fields]
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"unknown config key '{key}'; known keys: {', '.join(sorted(fields))}")
    kwargs = {}
    for raw_key, value in data.items():
        name = raw_key.replace("-", "_")
        key = f"{prefix}.{name}" if prefix else name
        coerced = _coerce(value, hints[name], key)
        _check_field(fields[name], coerced, key)
        kwargs[name] = coerced
    try:
        obj = cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"config for '{prefix or cls.__name__}' is incomplete: {exc}") from None
    validate(obj, prefix=prefix)
    return obj


def validate(obj: Any, *, prefix: str = "") -> None:
    """Check every field's choices and bounds (defaults included), recursing into nested configs."""
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, prefix=key)
        else:
            _check_field(f, value, key)
    post = getattr(obj, "check", None)
    if callable(post):
        post()


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain dict of a config (Paths as strings, None dropped since TOML has no null)."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not None}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, Path):
            return str(v)
        return v

    return clean(dataclasses.asdict(obj))


def parse_override(text: str) -> tuple[str, str]:
    """Split ``a.b=value`` into its dotted key and raw value."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value (e.g. train.batch=16)")
    key, value = text.split("=", 1)
    return key.strip().replace("-", "_"), value.strip()


def apply_overrides(obj: T, overrides: typing.Iterable[str] | dict[str, Any]) -> T:
    """Return a copy of ``obj`` with dotted-key overrides applied and validated."""
    data = to_dict(obj)
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    for key, value in items:
        key = key.replace("-", "_")
        parts = key.split(".")
        node = data
        cls: Any = type(obj)
        for i, part in enumerate(parts):
            names = {f.name for f in dataclasses.fields(cls)}
            if part not in names:
                where = ".".join(parts[: i + 1])
                raise ConfigError(f"unknown config key '{where}'; known keys: {', '.join(sorted(names))}")
            hint = get_type_hints(cls)[part]
            if i < len(parts) - 1:
                _, inner = _is_optional(hint)
                if not dataclasses.is_dataclass(inner):
                    raise ConfigError(f"config key '{'.'.join(parts[: i + 1])}' has no sub-keys")
                node = node.setdefault(part, {})
                cls = inner
            else:
                node[part] = value
    return from_dict(type(obj), data)


def load_toml(cls: type[T], path: str | Path, overrides: typing.Iterable[str] = ()) -> T:
    """Load ``cls`` from a TOML file, then apply ``overrides``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist; pass an existing .toml file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from None
    return apply_overrides(from_dict(cls, data), list(overrides))


def dump_toml(obj: Any, path: str | Path) -> Path:
    """Write the resolved config as TOML (the file a run can be repeated from)."""
    path = Path(path)
    path.write_text(tomli_w.dumps(to_dict(obj)), encoding="utf-8")
    return path

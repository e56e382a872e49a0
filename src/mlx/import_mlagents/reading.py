"""Reading an ML-Agents config: bytes -> YAML tree, and values coerced as ML-Agents coerces them, with
every failure one line naming the file or the dotted key (ConfigImportError)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlx.config.checks import mapping
from mlx.errors import ConfigImportError


def read_yaml(path: Path) -> Any:
    """Parse one YAML file. A UTF-8 (or UTF-16) byte-order mark, which Windows editors write and which
    breaks ML-Agents on Windows (the first key becomes '\\ufeffbehaviors'), is accepted transparently."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigImportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigImportError(f"{path}: is a directory, not a YAML file") from None
    except OSError as exc:
        raise ConfigImportError(f"{path}: cannot read ({exc.strerror})") from None
    # utf-8-sig strips a UTF-8 BOM if there is one; a UTF-16 BOM means the file is UTF-16
    encoding = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ConfigImportError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from None
    try:
        tree = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(str(p) for p in (exc.problem, exc.context) if p)
        raise ConfigImportError(f"{where}: YAML syntax error: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigImportError(f"{path}: YAML error: {' '.join(str(exc).split())}") from None
    if tree is None:
        raise ConfigImportError(f"{path}: the file is empty")
    return tree


# A coercer turns a YAML value into the typed value or raises with the dotted path.
Coercer = Callable[[Any, str], Any]


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool):
        raise ConfigImportError(f"{path} must be a number (got {value!r})")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):  # YAML 1.1 reads 5.0e5 and 1e-3 as strings; ML-Agents converts them
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigImportError(f"{path} must be a number (got {value!r})")


def INT(value: Any, path: str) -> int:  # noqa: N802 - reads as a type in the schema tables
    number = _number(value, path)
    if isinstance(number, float):
        if not math.isfinite(number) or number != int(number):
            raise ConfigImportError(f"{path} must be a whole number (got {value!r})")
        return int(number)
    return number


def FLOAT(value: Any, path: str) -> float:  # noqa: N802
    return _number(value, path)


def BOOL(value: Any, path: str) -> bool:  # noqa: N802
    if not isinstance(value, bool):
        raise ConfigImportError(f"{path} must be true or false (got {value!r})")
    return value


def STR(value: Any, path: str) -> str:  # noqa: N802
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigImportError(f"{path} must be a string (got {value!r})")
    return str(value)


def STR_LIST(value: Any, path: str) -> list[str]:  # noqa: N802
    if isinstance(value, str):
        return value.split()
    if not isinstance(value, list):
        raise ConfigImportError(f"{path} must be a list of strings (got {value!r})")
    return [STR(v, f"{path}[{i}]") for i, v in enumerate(value)]


def choice(*allowed: str) -> Coercer:
    def check(value: Any, path: str) -> str:
        if value not in allowed:
            raise ConfigImportError(f"{path} must be one of {', '.join(allowed)} (got {value!r})")
        return value

    return check


@dataclass(frozen=True)
class Opt:
    """A key whose value may be null (ML-Agents' Optional[...])."""

    inner: Any


def unknown_key(path: str, key: Any, allowed: Any, what: str | None = None) -> ConfigImportError:
    """One line naming the key's dotted path, the closest allowed key, and the allowed keys (or `what`)."""
    names = sorted(str(a) for a in allowed)
    close = difflib.get_close_matches(str(key), names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    where = f"{path}.{key}" if path else str(key)
    return ConfigImportError(f"unknown key '{where}'{hint}; {what or 'allowed there: ' + ', '.join(names)}")


def check(value: Any, schema: Any, path: str) -> Any:
    """Check and coerce `value` against `schema` (a coercer, an Opt, or a dict of keys)."""
    if isinstance(schema, Opt):
        return None if value is None else check(value, schema.inner, path)
    if isinstance(schema, dict):
        section = mapping(value, path)
        out = {}
        for key, item in section.items():
            if key not in schema:
                raise unknown_key(path, key, schema)
            out[key] = check(item, schema[key], f"{path}.{key}")
        return out
    if value is None:
        raise ConfigImportError(f"{path} must not be empty (null)")
    return schema(value, path)

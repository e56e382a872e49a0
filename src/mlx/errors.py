"""Every error a user can meet and fix, and the one line they see for it.

A user error ends a run with one line on stderr (``mlx: error: ...``) naming the problem and the fix, and
exit code 2; nothing already saved is lost. Bugs are not user errors: they keep their traceback.
Library exceptions (Hydra, OmegaConf) are imported where they are classified, not at import time, so that
``import mlx.errors`` stays cheap for every module that raises.
"""

from __future__ import annotations

import errno
import re
import sys

USAGE_ERROR = 2


class ConfigError(ValueError):
    """A configuration value a user must change; the message names the key and what is allowed."""


class EnvError(RuntimeError):
    """A problem with an environment a user can act on (bad parameter, disconnect, ...)."""


class RunError(RuntimeError):
    """The run cannot start as asked (existing run_id, nothing to resume, ...); says how to fix it."""


class TrackingError(RunError):
    """The tracking store cannot be used at the start of a run (unknown scheme, corrupt or read-only
    store, missing folder, unreachable); the message names tracking.uri (redacted) and the fix."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a NaN loss); the message says what happened and what to try."""


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal (SIGINT, SIGTERM, SIGHUP) after saving; the exit code is 128 + signum."""

    def __init__(self, signum: int, at_once: bool = False) -> None:
        super().__init__(signum)
        self.signum = signum
        self.at_once = at_once  # a second Ctrl-C: stopped where it was, without a save


class ProtocolError(EnvError):
    """A message that breaks the protocol (wrong version, bad shape, unknown behaviour, garbage bytes)."""


class EnvDisconnected(ProtocolError):
    """The env went away (process exited, call cancelled, no message within the timeout)."""


class SideChannelError(EnvError):
    """Side-channel bytes that cannot be read (truncated, garbled, or from an incompatible version)."""


class DemoError(EnvError):
    """A demonstration file or folder that cannot be used; the message names it and the problem."""


class ConfigImportError(ConfigError):
    """The input cannot be imported; the message names the file or key and the fix. A ConfigError, as
    every refusal of mlx's own schema met while importing (e.g. a malformed environment parameter) is."""


class CompareError(ValueError):
    """Bad selection; the message says what matched nothing and what exists."""


class EnvCheckError(AssertionError):
    """The env breaks the mlx env contract; the message says where and how."""


def one_line(message: str) -> str:
    """Fold a multi-line library message into one line, dropping Hydra's search-path listing and
    OmegaConf's debugging details."""
    kept = []
    for line in str(message).splitlines():
        line = line.strip()
        if line.startswith(("Config search path", "provider=")):
            break
        if not line or line.startswith(("full_key:", "object_type=", "reference_type=")):
            continue
        if line.endswith("_schema"):  # ConfigStore schemas are not options a user picks
            continue
        kept.append(line)
    text = " ".join(kept)
    text = re.sub(r"Available options in '([^']+)':", r"; available options in '\1':", text)
    return re.sub(r"\s+", " ", text).replace(" ;", ";")


def one_line_error(exc: BaseException) -> str:
    """An exception as one short line, for logs and status files."""
    return " ".join(str(exc).split())[:300]


def yaml_error(exc: BaseException) -> str | None:
    """A YAML syntax error as one line naming the file and line (None: not one)."""
    import yaml  # lazy: only reached for an error

    if not isinstance(exc, yaml.YAMLError):
        return None
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or one_line(str(exc))
    if mark is None:
        return f"YAML syntax error: {problem}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start is not None and start is not mark:
        problem += f" ({context} at line {start.line + 1})"
    return f"YAML syntax error in {mark.name}, line {mark.line + 1}, column {mark.column + 1}: {problem}; fix the file"


# Sections whose entries the user names (behaviours, parameters): a missing one needs '+' to be added.
OPEN_SECTIONS = ("behaviors", "environment_parameters")


def describe(exc: BaseException) -> str:
    """The one line a user sees for a configuration or run error."""
    # lazy for start-up speed (omegaconf)
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    # A YAML syntax error, raw or wrapped by Hydra (mlx's own errors keep their message, whatever caused them).
    mine = isinstance(exc, (ConfigError, EnvError, RunError, TrainingError))
    for candidate in (exc,) if mine else (exc, exc.__cause__, exc.__context__):
        if candidate is not None and (line := yaml_error(candidate)) is not None:
            return line
    cause = exc
    for candidate in (exc.__cause__, exc.__context__):  # Hydra raises its own error while handling OmegaConf's
        if isinstance(candidate, OmegaConfBaseException) and getattr(candidate, "full_key", None):
            cause = candidate
            break
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and getattr(cause, "full_key", None):
        parent = getattr(cause, "parent_node", None)
        known = sorted(str(k) for k in parent) if parent is not None and hasattr(parent, "keys") else []
        hint = f"; allowed keys there: {', '.join(known)}" if known else ""
        if str(cause.full_key).split(".")[0] in OPEN_SECTIONS:  # entries named by the user: added, not typos
            hint = (
                f"; add it with '+{cause.full_key}...=<value>' ('++' also sets it where the run has it, e.g. on resume)"
            )
        return f"unknown key '{cause.full_key}'{_elsewhere(cause)}{hint}"
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        where = re.match(r"In '([^']+)'", str(exc)) if cause is not exc else None
        text = str(cause).splitlines()[0] + (f" (in config file '{where.group(1)}')" if where else "")
        if "could not be converted to Integer" in text:
            text += "; write a whole number, e.g. 500000 or 5.0e5"
        return f"{cause.full_key}: {text}"
    return one_line(str(exc))


def _elsewhere(cause: BaseException) -> str:
    """' (did you mean trainer.hyperparameters.learning_rate?)' for a key that exists deeper in the config
    (an ML-Agents habit: a bare setting name), or ''."""
    from omegaconf import DictConfig, OmegaConf  # lazy: only reached for an error

    parent = getattr(cause, "parent_node", None)
    name = str(getattr(cause, "full_key", "")).rsplit(".", 1)[-1]
    if not isinstance(parent, DictConfig) or not name:
        return ""
    root = parent._get_root()
    try:
        tree = OmegaConf.to_container(root, resolve=False)
    except Exception:  # noqa: BLE001 - a hint must never hide the error it decorates
        return ""
    found = paths_named(tree, name, unless=str(cause.full_key))
    return did_you_mean(name, found, [str(k) for k in parent])


def paths_named(tree: object, name: str, unless: str, path: str = "", depth: int = 0) -> list[str]:
    """Every dotted path of a config tree (nested dicts) whose last key is ``name``, other than ``unless``
    (Hydra's own settings left out)."""
    if not isinstance(tree, dict) or depth > 6:
        return []
    found = []
    for key, value in tree.items():
        here = f"{path}.{key}" if path else str(key)
        if key == name and here != unless:
            found.append(here)
        if key != "hydra":
            found += paths_named(value, name, unless, here, depth + 1)
    return found


def did_you_mean(name: str, found: list[str], known: list[str]) -> str:
    """The hint after an unknown key: the full paths where the name exists deeper (an ML-Agents habit: a bare
    setting name), else a near name among the keys allowed there, else ''."""
    if not found:  # a misspelling of a key at its own level
        import difflib

        near = difflib.get_close_matches(name, known, n=1)
        return f" (did you mean '{near[0]}'?)" if near else ""
    return f" (did you mean {' or '.join(sorted(found, key=lambda k: (len(k), k))[:3])}?)"


# What the file system says about a place a user chose (results_dir) or its disk, not about mlx.
OS_PROBLEMS = {
    errno.ENOSPC: "free some space (or choose another results_dir)",
    errno.EDQUOT: "free some space (or choose another results_dir)",
    errno.EACCES: "choose a results_dir you can write",
    errno.EPERM: "choose a results_dir you can write",
    errno.EROFS: "choose a results_dir on a writable file system",
    errno.ENOTDIR: "a part of the path is a file: choose another results_dir",
    errno.EEXIST: "a part of the path is a file: choose another results_dir",
    errno.EISDIR: "a folder is in the way: move it or choose another results_dir",
    errno.ENAMETOOLONG: "choose a shorter results_dir or run_id",
    errno.EIO: "the disk reported an I/O error",
}


def is_os_problem(exc: BaseException) -> bool:
    """An OSError about the file system a user can fix (full, read-only, a file in the way), not a bug."""
    return isinstance(exc, OSError) and exc.errno in OS_PROBLEMS


def os_problem(exc: OSError, what: str) -> RunError:
    """The one-line RunError for an OSError met while writing ``what``."""
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in what else ""
    fix = OS_PROBLEMS.get(exc.errno or 0, "check the path and the disk")
    return RunError(f"cannot write {what}{where}: {exc.strerror or exc}; {fix}")


def user_error_types() -> tuple[type[BaseException], ...]:
    """mlx's user errors and the configuration libraries' own (a bad override, a missing group option)."""
    # lazy for start-up speed (hydra)
    import yaml
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    return (
        yaml.YAMLError,  # a syntax error in a config file (conf/experiment/<name>.yaml, a user's own)
        ConfigError,
        EnvError,
        RunError,
        TrainingError,
        HydraException,
        MissingConfigException,
        OverrideParseException,
        OmegaConfBaseException,
    )


def fail(exc: BaseException) -> None:
    """Print the user's one line and exit with USAGE_ERROR."""
    from mlx.tracking.secrets import redact  # a library's message may echo a URI with its password

    print(f"mlx: error: {redact(describe(exc))}", file=sys.stderr)
    sys.exit(USAGE_ERROR)

"""The `sweep:` node of sweeps/<name>.yaml, checked into dataclasses before any trial runs.

Every mistake a user can make here (a misspelt field, a direction that is neither maximize nor minimize,
an empty or malformed search space, a storage URL no database understands) raises ``ConfigError`` with
one line that names the key and what is allowed, so ``python -m mlx -m sweep=...`` exits with code 2.
Search-space keys themselves are checked against the composed config by the sweeper (search.py), which
has Hydra's config loader.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

from mlx.config.sweep import ObjectiveSettings, PrunerSettings, SamplerSettings, SweepSchema
from mlx.errors import ConfigError

DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "cmaes", "random", "gp")
PRUNERS = ("median", "successive_halving", "hyperband", "none")
OBJECTIVES = ("mean_reward", "steps_to_reward")
KINDS = ("float", "int", "categorical")
# The objective decides which way is better; a sweep file that says otherwise is a mistake.
NATURAL_DIRECTION = {"mean_reward": "maximize", "steps_to_reward": "minimize"}
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class SweepSettings:
    study_name: str
    search_space: list[Dimension]
    storage: str = "sqlite:///optuna.db"
    direction: str = "maximize"
    objective: ObjectiveSettings = field(default_factory=ObjectiveSettings)
    n_trials: int = 20  # trials the study holds when done, over every worker and every rerun
    n_jobs: int = 1  # trials launched together by this worker (in parallel with hydra/launcher=joblib)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    pruner: PrunerSettings = field(default_factory=PrunerSettings)
    heartbeat_interval: float = 20.0  # seconds between "still running" marks on this worker's trials
    stale_after: float = 120.0  # a trial of another host not marked for this long is taken as dead


@dataclass(frozen=True)
class Dimension:
    """One searched config key. `key` is the override key as written (it may start with + or ++)."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def name(self) -> str:
        """The Optuna parameter name: the config key without Hydra's add prefix."""
        return self.key.lstrip("+")

    def distribution(self) -> Any:
        # lazy for start-up speed (optuna)
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def candidates(self) -> list[Any]:
        """Values that stand for the whole range when checking that the key composes."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]

    def override(self, value: Any) -> str:
        return f"{self.key}={format_value(value)}"


def format_value(value: Any) -> str:
    """A value as Hydra's override grammar reads it back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if re.fullmatch(r"[A-Za-z0-9_./:+-]+", text) and text.lower() not in ("null", "true", "false"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fail(key: str, message: str) -> ConfigError:
    return ConfigError(f"{key}: {message}")


def _build(cls: type, node: Any, key: str, shorthand: str | None = None) -> Any:
    """A settings dataclass from a mapping (or from a bare string naming its `type`)."""
    if node is None:
        return cls()
    if isinstance(node, str) and shorthand:
        node = {shorthand: node}
    if not isinstance(node, Mapping):
        raise _fail(key, f"expected a mapping (got {node!r})")
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(node) - set(names))
    if unknown:
        raise ConfigError(f"unknown key '{key}.{unknown[0]}'; allowed keys there: {', '.join(names)}")
    return cls(**dict(node))


def _number(value: Any, key: str, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(key, f"expected a finite number (got {value!r})")
    if integer and int(value) != value:
        raise _fail(key, f"expected an integer (got {value!r})")
    return value


def _dimension(key: str, spec: Any, where: str) -> Dimension:
    if isinstance(spec, Sequence) and not isinstance(spec, str):  # shorthand: a list of choices
        spec = {"type": "categorical", "choices": list(spec)}
    if not isinstance(spec, Mapping):
        raise _fail(
            where,
            f"expected {{type: float|int|categorical, ...}} or a list of choices (got {spec!r}); "
            "e.g. {type: float, low: 1.0e-4, high: 1.0e-2, log: true}",
        )
    kind = spec.get("type", "categorical" if "choices" in spec else None)
    if kind not in KINDS:
        raise _fail(f"{where}.type", f"must be one of {', '.join(KINDS)} (got {kind!r})")
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log", "step"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown key '{where}.{unknown[0]}' for type {kind}; allowed keys there: {', '.join(sorted(allowed))}"
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
            raise _fail(f"{where}.choices", f"must be a non-empty list (got {choices!r})")
        for choice in choices:
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                raise _fail(f"{where}.choices", f"choices must be numbers, strings, booleans or null (got {choice!r})")
        return Dimension(key, kind, choices=tuple(choices))
    integer = kind == "int"
    for bound in ("low", "high"):
        if bound not in spec:
            raise _fail(where, f"type {kind} needs low and high")
    low = _number(spec["low"], f"{where}.low", integer)
    high = _number(spec["high"], f"{where}.high", integer)
    if not low < high:
        raise _fail(where, f"low must be below high (got low={low}, high={high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise _fail(f"{where}.log", f"must be true or false (got {log!r})")
    if log and low <= 0:
        raise _fail(where, f"log: true needs low > 0 (got low={low})")
    step = spec.get("step")
    if step is not None:
        step = _number(step, f"{where}.step", integer)
        if step <= 0:
            raise _fail(f"{where}.step", f"must be > 0 (got {step})")
        if log and not (integer and step == 1):
            raise _fail(where, "step and log: true cannot be combined (Optuna samples log ranges continuously)")
    return Dimension(key, kind, low=low, high=high, log=log, step=step)


def _is_spec(node: Any) -> bool:
    if isinstance(node, Sequence) and not isinstance(node, str):
        return True
    return isinstance(node, Mapping) and ("type" in node or "choices" in node)


def parse_search_space(node: Any, where: str = "sweep.search_space") -> list[Dimension]:
    """Flatten the search space: keys may be dotted (`trainer.hyperparameters.beta: {...}`) or nested."""
    if node is None or (isinstance(node, Mapping) and not node):
        raise ConfigError(
            f"{where} is empty: name at least one config key to search, e.g. "
            "trainer.hyperparameters.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}"
        )
    if not isinstance(node, Mapping):
        raise _fail(where, f"expected a mapping of config keys to ranges (got {node!r})")
    dims: list[Dimension] = []

    def walk(tree: Mapping[str, Any], prefix: str) -> None:
        for raw_key, spec in tree.items():
            key = f"{prefix}{raw_key}"
            if _is_spec(spec):
                dims.append(_dimension(key, spec, f"{where}.{key}"))
            elif isinstance(spec, Mapping) and spec:
                walk(spec, f"{key}.")
            else:
                dims.append(_dimension(key, spec, f"{where}.{key}"))  # raises with the expected form

    walk(node, "")
    names = [d.name for d in dims]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise _fail(where, f"'{repeated[0]}' is searched twice; keep one range per key")
    return dims


def dimension_from_override(override: Any) -> Dimension:
    """A command-line sweep (`key=a,b`, `choice(...)`, `range(a,b)`, `interval(a,b)`, `tag(log, ...)`) as a
    search dimension, so `-m sweep=NAME key=interval(0.1,0.3)` widens the search like hydra-optuna did."""
    key = override.get_key_element()
    value = override.value()
    log = "log" in getattr(value, "tags", set())
    if isinstance(value, ChoiceSweep):
        return _dimension(key, {"type": "categorical", "choices": list(value.list)}, key)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if not all(isinstance(v, int) for v in (start, stop, step)):
            raise _fail(key, "range() sweeps must use integers here; use interval(low, high) for floats")
        last = start + ((stop - start - 1) // step) * step
        return _dimension(key, {"type": "int", "low": start, "high": last, "step": step, "log": log}, key)
    if isinstance(value, IntervalSweep):
        return _dimension(key, {"type": "float", "low": value.start, "high": value.end, "log": log}, key)
    raise _fail(key, f"unsupported sweep {value!r}; use a,b,c / choice() / range() / interval() / tag(log, ...)")


def check_storage_url(url: Any, key: str = "sweep.storage") -> str:
    """Optuna storages mlx opens: any SQLAlchemy database URL (sqlite, postgresql, mysql) or a journal file."""
    hint = "use sqlite:///optuna.db, postgresql://user:password@host:5432/db, or journal:///path/to/optuna.log"
    if not isinstance(url, str) or not url.strip():
        raise _fail(key, f"must be a storage URL (got {url!r}); {hint}")
    if url.startswith("journal:"):
        journal_path(url, key)
        return url
    from sqlalchemy.engine import make_url  # lazy for start-up speed (sqlalchemy)
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except NoSuchModuleError:
        scheme = url.split(":", 1)[0]
        raise _fail(key, f"'{url}': no database is called '{scheme}'; {hint}") from None
    except ArgumentError:
        raise _fail(key, f"'{url}' is not a storage URL; {hint}") from None
    except ImportError as exc:
        raise _fail(key, f"'{url}' needs a database driver that is not installed ({exc}); pip install it") from None
    if parsed.get_backend_name() == "sqlite" and not parsed.database:
        raise _fail(key, f"'{url}' names no file (an in-memory database cannot be shared or resumed); {hint}")
    return url


def journal_path(url: str, key: str = "sweep.storage") -> str:
    """journal:///optuna.log is relative to the working directory, journal:////abs/optuna.log absolute
    (the same slashes as sqlite URLs); journal:optuna.log works too."""
    rest = url[len("journal:") :]
    if rest.startswith("///"):
        rest = rest[3:]
    elif rest.startswith("//"):
        raise _fail(key, f"'{url}': a journal file has no host; write journal:///relative.log or journal:////abs.log")
    if not rest or rest.endswith("/"):
        raise _fail(key, f"'{url}' names no file; e.g. journal:///optuna.log")
    return rest


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(key, f"must be an integer >= 1 (got {value!r})")
    return value


def parse_settings(node: Any, where: str = "sweep") -> SweepSettings:
    """The sweep node as composed by Hydra (a plain dict) -> SweepSettings, or ConfigError."""
    if not isinstance(node, Mapping):
        raise _fail(where, f"expected the settings of an Optuna search (got {node!r})")
    if node.get("load_error"):
        raise ConfigError(str(node["load_error"]))
    names = [f.name for f in fields(SweepSchema) if f.name != "load_error"]
    unknown = sorted(set(node) - {*names, "load_error"})
    if unknown:
        raise ConfigError(f"unknown key '{where}.{unknown[0]}'; allowed keys there: {', '.join(names)}")
    study_name = node.get("study_name")
    if not isinstance(study_name, str) or not STUDY_NAME.match(study_name):
        raise _fail(
            f"{where}.study_name",
            f"must be a name of letters, digits, '_', '.' or '-' (got {study_name!r}); it names the study, "
            "its MLflow parent run and its trials' run_ids",
        )
    objective = _build(ObjectiveSettings, node.get("objective"), f"{where}.objective", shorthand="type")
    if objective.type not in OBJECTIVES:
        raise _fail(f"{where}.objective.type", f"must be one of {', '.join(OBJECTIVES)} (got {objective.type!r})")
    if objective.type == "mean_reward":
        _positive_int(objective.last_n, f"{where}.objective.last_n")
    if objective.type == "steps_to_reward":
        if objective.target is None:
            raise _fail(f"{where}.objective.target", "steps_to_reward needs the mean reward to reach, e.g. target: 90")
        _number(objective.target, f"{where}.objective.target")
    direction = node.get("direction") or NATURAL_DIRECTION[objective.type]
    if direction not in DIRECTIONS:
        raise _fail(f"{where}.direction", f"must be maximize or minimize (got {direction!r})")
    if direction != NATURAL_DIRECTION[objective.type]:
        raise _fail(
            f"{where}.direction",
            f"objective {objective.type} is better when larger/smaller: use direction "
            f"{NATURAL_DIRECTION[objective.type]} (got {direction})",
        )
    sampler = _build(SamplerSettings, node.get("sampler"), f"{where}.sampler", shorthand="type")
    if sampler.type not in SAMPLERS:
        raise _fail(f"{where}.sampler.type", f"must be one of {', '.join(SAMPLERS)} (got {sampler.type!r})")
    if sampler.seed is not None and (isinstance(sampler.seed, bool) or not isinstance(sampler.seed, int)):
        raise _fail(f"{where}.sampler.seed", f"must be an integer or null (got {sampler.seed!r})")
    if sampler.n_startup_trials is not None and (
        isinstance(sampler.n_startup_trials, bool)
        or not isinstance(sampler.n_startup_trials, int)
        or sampler.n_startup_trials < 0
    ):
        raise _fail(f"{where}.sampler.n_startup_trials", f"must be an integer >= 0 (got {sampler.n_startup_trials!r})")
    pruner = _build(PrunerSettings, node.get("pruner"), f"{where}.pruner", shorthand="type")
    if pruner.type is None:
        pruner.type = "none"
    if sampler.type is None:
        sampler.type = "tpe"
    if pruner.type not in PRUNERS:
        raise _fail(f"{where}.pruner.type", f"must be one of {', '.join(PRUNERS)} (got {pruner.type!r})")
    for name in ("n_startup_trials", "n_warmup_steps"):
        value = getattr(pruner, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _fail(f"{where}.pruner.{name}", f"must be an integer >= 0 (got {value!r})")
    for name in ("min_resource", "max_resource"):
        if getattr(pruner, name) is not None:
            _positive_int(getattr(pruner, name), f"{where}.pruner.{name}")
    if _positive_int(pruner.reduction_factor, f"{where}.pruner.reduction_factor") < 2:
        raise _fail(f"{where}.pruner.reduction_factor", f"must be >= 2 (got {pruner.reduction_factor})")
    n_trials = _positive_int(node.get("n_trials", 20), f"{where}.n_trials")
    n_jobs = _positive_int(node.get("n_jobs", 1), f"{where}.n_jobs")
    storage = check_storage_url(node.get("storage", "sqlite:///optuna.db"), f"{where}.storage")
    timing = {}
    for name, default in (("heartbeat_interval", 20.0), ("stale_after", 120.0)):
        value = _number(node.get(name, default), f"{where}.{name}")
        if value <= 0:
            raise _fail(f"{where}.{name}", f"must be > 0 seconds (got {value})")
        timing[name] = float(value)
    if timing["stale_after"] < 2 * timing["heartbeat_interval"]:
        raise _fail(f"{where}.stale_after", "must be at least twice heartbeat_interval, or live trials look dead")
    return SweepSettings(
        study_name=study_name,
        search_space=parse_search_space(node.get("search_space"), f"{where}.search_space"),
        storage=storage,
        direction=direction,
        objective=objective,
        n_trials=n_trials,
        n_jobs=n_jobs,
        sampler=sampler,
        pruner=pruner,
        **timing,
    )

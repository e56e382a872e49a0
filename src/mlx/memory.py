"""Memory a setting will need, estimated before anything is allocated, against what this machine holds.

A size setting (buffer_size, num_areas, hidden_units, watch.areas, ...) that the machine cannot hold would
otherwise end in a numpy MemoryError traceback, or worse, be allocated lazily and end the run later under
the kernel's OOM killer. ``require`` refuses it up front with one line naming the key, the estimate and the
machine's memory. Estimates are lower bounds of what the code allocates (the arrays it is known to keep,
measured for the native envs), so a refusal is never a false alarm; the headroom covers the rest.

Checks at validate time (mlx.config) know no observation size and assume the smallest, one float; once the
spec is known, native envs (NativeEnv), training's open_env (trajectories and buffers of every behaviour)
and mlx.trainers.registry.make_trainer (buffers) check again with the real size.
Only mlx.errors is imported here, so envs, trainers and the config can all use it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from mlx.errors import ConfigError

GB = 1024**3
# The share of the machine's memory one run may plan to fill: the rest is for Python, torch, the OS and
# whatever the estimates leave out.
HEADROOM = 0.8
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")

# Copies of each network's weights a trainer keeps: the weights, their gradients and Adam's two moments.
WEIGHT_COPIES = 4
# Networks with a body of network_settings a trainer holds at least: PPO's actor and critic; SAC's actor,
# two Q networks and the target critic.
NETWORKS = {"ppo": 2, "sac": 4, "poca": 2}
# Floats per stored step besides observations and actions (PPO: log-prob, value, return, advantage, env
# reward, done; SAC: reward, terminated, done; POCA: PPO's plus baseline, group and groupmates' rewards).
# POCA also stores each groupmate's observation and action with a step: unknown before the env sends
# group ids, so left out (a lower bound, as every estimate here).
STEP_FLOATS = {"ppo": 6, "sac": 3, "poca": 9}
# Copies of the experience a trainer holds at its peak: PPO's chunks and their concatenation at update time;
# SAC's preallocated ring.
BUFFER_COPIES = {"ppo": 2, "sac": 1, "poca": 2}
# A native env keeps at least two copies of each area's observations (the published DecisionSteps and its
# working arrays) and a few ids and counters; measured: 196 (Basic) to 763,000 (Visual3DBall) bytes an area.
AREA_OBS_COPIES = 2
AREA_FIXED_BYTES = 32
# env=gym: one Gymnasium env object an area; measured 5,000 (Pendulum) to 6,500 (CartPole) bytes each.
GYM_AREA_BYTES = 4096
# An env process (python -m mlx.envs.unity.remote: Python, numpy and gRPC) holds about 54 MB before its first
# area; a Unity build more.
PROCESS_BYTES = 50 * 1024**2
# watch: each area's picture is enlarged to at least 128 px a side, and one frame exists in about four RGB
# copies (the pictures, the grid, the captioned image, the writer's).
WATCH_CELL_PIXELS = 128 * 128
WATCH_FRAME_COPIES = 4


def machine_bytes() -> int:
    """Physical memory, or the container's (cgroup) limit when lower. MLX_MEMORY_BYTES overrides it (tests)."""
    forced = os.environ.get("MLX_MEMORY_BYTES")
    if forced:
        return int(float(forced))
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: psutil when installed, else no known limit
        try:
            import psutil  # optional dependency

            total = int(psutil.virtual_memory().total)
        except ImportError:
            return 2**62
    for limit_file in _CGROUP_LIMITS:
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def gigabytes(n: float) -> str:
    """Bytes as a short number of GB: 0.25, 7.5, 3,353."""
    g = n / GB
    if not math.isfinite(g):
        return "inf"
    return f"{g:.2g}" if g < 10 else f"{g:,.0f}"


def require(
    need: float, key: str, value: Any, what: str, error: type[Exception] = ConfigError, fix: str = "lower it"
) -> None:
    """``error`` when ``need`` bytes exceed HEADROOM of the machine's memory, as one line:
    '<key>=<value> needs ~X GB for <what>, this machine has Y GB (80% of it for one run); lower it'."""
    have = machine_bytes()
    if not math.isfinite(need) or need > HEADROOM * have:
        raise error(
            f"{key}={value} needs ~{gigabytes(need)} GB for {what}, this machine has {gigabytes(have)} GB "
            f"({HEADROOM:.0%} of it for one run); {fix}"
        )


def mlp_bytes(inputs: int, hidden_units: int, num_layers: int) -> int:
    """float32 weights and biases of an MLP body of ``num_layers`` layers of ``hidden_units``."""
    weights = inputs * hidden_units + max(0, num_layers - 1) * hidden_units**2
    return 4 * (weights + num_layers * hidden_units)


def lstm_bytes(inputs: int, memory_size: int) -> int:
    """float32 weights of an LSTM whose memory (h and c) holds ``memory_size`` floats."""
    hidden = memory_size // 2
    return 4 * 4 * hidden * (inputs + hidden + 2)


def row_bytes(trainer_type: str, obs_floats: int, action_floats: int) -> int:
    """Bytes of one stored agent step (SAC keeps the next observation too)."""
    obs = 2 * obs_floats if trainer_type == "sac" else obs_floats
    return 4 * (obs + action_floats + STEP_FLOATS.get(trainer_type, 3))


def spec_sizes(spec: Any) -> tuple[int, int]:
    """Floats of one agent step's observations (every spec flattened, cameras included) and actions, each
    at least 1, from a BehaviorSpec."""
    obs = sum(math.prod(o.shape) for o in spec.observation_specs)
    actions = spec.action_spec.continuous_size + spec.action_spec.discrete_size
    return max(1, obs), max(1, actions)


def check_trainer(
    settings: Any, key: str, obs_floats: int = 1, action_floats: int = 1, agents: int = 0, behavior: str = ""
) -> None:
    """A trainer's experience buffer, per-agent trajectories (``agents`` > 0) and networks, for observations
    of ``obs_floats`` floats (1 when unknown: the least a behaviour can have)."""
    kind = settings.trainer_type
    hp = settings.hyperparameters
    net = settings.network_settings
    of = f" of {behavior}'s observations ({obs_floats} floats a step)" if behavior else ""
    row = row_bytes(kind, obs_floats, action_floats)
    copies = BUFFER_COPIES.get(kind, 1)
    require(copies * hp.buffer_size * row, f"{key}.hyperparameters.buffer_size", hp.buffer_size, f"its experience{of}")
    if agents:  # every trainer keeps up to time_horizon steps an agent (SAC until they enter its buffer)
        require(
            agents * settings.time_horizon * row,
            f"{key}.time_horizon",
            settings.time_horizon,
            f"the trajectories of {agents} agents (env.num_areas x env.num_envs){of}",
            fix="lower it or env.num_areas",
        )
    check_network(net, f"{key}.network_settings", NETWORKS.get(kind, 2))


def check_network(net: Any, key: str, networks: int) -> None:
    """``networks`` MLP bodies (and LSTMs) of NetworkSettings ``net``, with gradients and optimiser state.
    The first layer's inputs are left out: camera observations go through a CNN encoder instead."""
    copies = networks * WEIGHT_COPIES
    require(
        copies * mlp_bytes(1, net.hidden_units, net.num_layers),
        f"{key}.hidden_units",
        net.hidden_units,
        f"the weights of {networks} network(s) of {net.num_layers} layers (with gradients and optimiser state)",
    )
    if net.memory is not None:
        require(
            copies * lstm_bytes(net.hidden_units, net.memory.memory_size),
            f"{key}.memory.memory_size",
            net.memory.memory_size,
            "its LSTM weights (with gradients and optimiser state)",
        )


def check_areas(
    areas: int, obs_floats: int, key: str, value: Any, what: str, error: type[Exception], fixed: int = AREA_FIXED_BYTES
) -> None:
    """``areas`` areas of an env whose agents see ``obs_floats`` floats each, ``fixed`` bytes besides."""
    require(areas * (AREA_OBS_COPIES * 4 * obs_floats + fixed), key, value, what, error)


def check_processes(count: int, what: str) -> None:
    """env.num_envs env processes (env=unity or env.subprocess=true), each at least PROCESS_BYTES."""
    require(count * PROCESS_BYTES, "env.num_envs", count, what)


def check_watch(areas: int) -> None:
    """One frame of ``areas`` areas' pictures, in the copies mode=watch makes of it."""
    need = areas * WATCH_CELL_PIXELS * 3 * WATCH_FRAME_COPIES
    require(need, "watch.areas", areas, "one video frame of that many pictures")

"""FoodCollector: a vectorised port of ML-Agents' FoodCollector example (the grid-sensor scene) on the arena engine.

Five agents per area roam a large square floor scattered with green food (+1) and red food (-1); each
can fire a laser that freezes the first agent it hits for 4 seconds. Facts from
/work/shared/reference/more-envs.md section 2 (labels: [S] upstream source/asset, [D] docs, [I] inferred,
[P] the project's config copy, NOT FOUND: decided here, see "Decisions"):

* Scene [S]: in releases 20-22 the scene ``FoodCollector.unity`` holds 4 areas of the grid-sensor area
  prefab, behaviour name **GridFoodCollector** (the configs config/ppo|sac/FoodCollector.yaml train it);
  the older ray-cast FoodCollector scene (53 vector floats, environments.md's row) was removed upstream.
  This port is the scene that exists: grid observations, behaviour ``GridFoodCollector``.
* Area [S]: 25 food (tag ``food``) and 25 bad food (``badFood``) spawned uniformly in a square of
  half-width ``range`` = 45 m; an eaten item respawns at a new uniform position in that square [F].
  Food is only (re)placed when the whole env resets, never at agent episode boundaries [S].
* Agent [S]: 1 m box (a circle of radius 0.5 here, as the other arena ports), mass 10, drag 0.5,
  rotations frozen, tag ``agent``; moveSpeed 2, turnSpeed 300; MaxStep 5000 physics steps with a
  decision every 5 (1000 decisions; reaching it interrupts); actions repeated between decisions.
* Actions [S]: 3 continuous (c0 forward, c1 right/strafe, c2 rotate; each clamped to [-1, 1]) plus one
  discrete branch of 2 (1 = fire the laser). Each physics step, an agent that is not frozen: adds a
  velocity change of 2 * (forward * c0 + right * c1); turns 6 degrees (300 deg/s * 0.02 s) toward
  sign(c2), c2 > 0 counter-clockwise seen from above [I: axis-angle with a normalised axis, so the turn
  does not scale with |c2|]; when firing, halves that velocity change and multiplies its velocity by
  0.75. Then, for every agent, a speed above 5 m/s is multiplied by 0.95.
* Laser [S]: a sphere cast of radius 2 from the agent along its forward, at most 25 m; if the first
  collider hit is an ``agent``, that agent is frozen (tag ``frozenAgent``) for 4 s = 200 physics steps
  = 40 decisions. A frozen agent takes no motion and cannot fire; the cast is 25 m whatever
  ``laser_length`` (which only scales the drawn laser upstream).
* Rewards [S]: +1 on touching ``food``, -1 on ``badFood`` (the item is eaten and respawns); nothing
  else, no time penalty. Benchmark mean reward 10 [D].
* Episode begin [S]: the agent is unfrozen, its velocity zeroed, and placed uniformly in the 45 m
  square with a random integer yaw in [0, 359] degrees (no overlap test). Env parameter ``agent_scale``
  (default 1) scales the agent (here its radius, 0.5 * agent_scale), read at each episode start.
* Observation [S/I]: a top-down one-hot grid sensor centred on the agent and turning with it, 40 x 40
  cells of 1 m, channels in the order food, agent, wall, badFood, frozenAgent: float32 (40, 40, 5)
  [I: the 2.x OneHotGridSensor has one channel per tag and no "empty" channel], named ``GridSensor``.
  No vector observation (useVectorObs false in the grid prefab) [S].

Decisions on what the references do not give (NOT FOUND), and approximations:

* Walls: the area's walls are NOT FOUND; the floor here is 100 x 100 m (inner faces at +-50 m, 5 m
  beyond the spawn square), walls tagged ``wall``. Gravity NOT FOUND: 9.81 (floor friction PhysX's 0.6).
* Food size NOT FOUND: a 1 x 1 m box, a trigger (agents pass over it as it is eaten on first contact;
  upstream's collider would block an agent for the instant before the item teleports away). Eating is
  read once per decision from the contacts of its 5 physics steps: an item touched in a decision is eaten
  once, by the lowest-numbered agent touching it, and respawns at the end of the decision.
* Grid cells (the engine's mlx.envs.native.gridsensor layout): row 0 farthest ahead, column 0 leftmost.
  Agents and walls light every cell their shape overlaps (exact); a food item lights the one cell holding
  its centre. Several tags may light one cell (upstream: the closest collider wins). An agent does not
  see itself; a frozen agent shows on ``frozenAgent``, not ``agent``.
* Laser timing: all lasers of a decision fire at once from the state at the decision's start (a shooter
  frozen by another in the same decision still fires: upstream's order within a physics step is the
  agents' script order); the cast is made once per decision, not on each of its 5 physics steps (the
  target is frozen from that decision's first physics step, as upstream's first cast would). Food and
  walls block the laser; agents the sphere starts inside (within 2.5 m) are skipped, as SphereCast does.
  A frozen agent is unfrozen at the start of the 40th decision after the hit (upstream: one physics step
  later). Freezing keeps the agent's velocity (nothing upstream zeroes it), so it coasts to a stop
  under drag and floor friction, and it still eats what it slides into (upstream's collision callback
  does not check the frozen state); with no velocity it cannot move or eat.
* The environment parameter ``laser_length`` is not offered: upstream it only scales the drawn laser.
* All five agents of an area start together at env reset and their episodes have the same MaxStep, so
  they end together (interrupted) and restart together; the area's food carries over.

Agent ids are ``5 * area + k``. Everything is numpy over all areas and agents at once (the arena's
physics, the laser as one batch of sphere casts, the grid as array scatters); no loop over agents or
areas. Speed: see THROUGHPUT and benchmarks/env_throughput.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, EnvError, ObservationSpec
from mlx.envs.native.arena import Arena, BodySpec, StaticSpec
from mlx.envs.native.base import F32, NativeEnv
from mlx.envs.native.gridsensor import GridSensor, GridSensorSpec
from mlx.envs.native.rays import cast_bounds, cast_rounded_boxes

BEHAVIOR = "GridFoodCollector"
AGENTS = 5
DECISION_PERIOD = 5
MAX_STEP = 5000  # physics steps
MAX_DECISIONS = MAX_STEP // DECISION_PERIOD
NUM_FOOD, NUM_BAD_FOOD = 25, 25
FOOD_VALUE = np.array([1.0] * NUM_FOOD + [-1.0] * NUM_BAD_FOOD, F32)
RANGE = 45.0  # half-width of the spawn square
AREA_HALF = 50.0  # NOT FOUND: the walls' inner faces
WALL_HEIGHT = (-0.5, 1.5)
FOOD_HALF = 0.5  # NOT FOUND
AGENT_RADIUS, AGENT_MASS, AGENT_DRAG = 0.5, 10.0, 0.5
MOVE_SPEED, TURN_SPEED = 2.0, 300.0
GRAVITY = 9.81
SHOOT_MOVE, SHOOT_SLOW = 0.5, 0.75  # a firing agent's move scale and velocity factor per physics step
SPEED_CAP2, SPEED_DECAY = 25.0, 0.95  # |v|^2 above which v *= 0.95
LASER_RADIUS, LASER_LENGTH = 2.0, 25.0
FREEZE_DECISIONS = 4 * 50 // DECISION_PERIOD  # 4 s of 0.02 s physics steps = 40 decisions
TAGS = ("food", "agent", "wall", "badFood", "frozenAgent")
GRID = GridSensorSpec(TAGS, rows=40, cols=40, cell=1.0, offset=0.0, wall_thickness=0.5, name="GridSensor")
DEFAULT_PARAMETERS = {"agent_scale": 1.0}
# Agent-steps per second by num_areas under random actions (benchmarks/env_throughput.py, 5 s each; 2-core VM
# shared with long benchmarks, load average 4.5, 2026-12-06). Most of a step is the 40 x 40 grid.
THROUGHPUT = {1: 2_034, 4: 6_064, 64: 29_680}


class FoodGrid(GridSensor):
    """The grid sensor of FoodCollector: walls and agents as shapes (GridSensor), frozen agents on their own
    channel, food items in the cell holding their centre (see the module docstring)."""

    def __init__(self, arena: Arena, spec: GridSensorSpec, food_slots: np.ndarray, food_channel: np.ndarray) -> None:
        super().__init__(arena, spec)
        self._food = food_slots
        self._food_channel = food_channel  # [F] channel of each food slot
        self._agent_ch, self._frozen_ch = spec.tags.index("agent"), spec.tags.index("frozenAgent")

    def observe_food(self, frozen: np.ndarray, areas: np.ndarray | None = None) -> np.ndarray:
        """float32 [m, A, rows, cols, channels]; ``frozen`` [A, n] marks the frozen agents."""
        ar, s = self.arena, self.spec
        sel = slice(None) if areas is None else areas
        A = ar.A
        h = ar.heading[:, sel].T  # [m, A]
        pos, center = ar.pos[:, :A, sel], ar.center[:, :, sel]  # [2, A, m], [2, S, m]
        radius, active = ar.radius[:, sel], ar.active[:, sel]
        m = h.shape[0]
        c, sn = np.cos(h).astype(F32), np.sin(h).astype(F32)
        ax, az = pos[0].T, pos[1].T  # [m, A]
        out = np.zeros((m, A, s.rows, s.cols, len(s.tags)), F32)
        reach = float(np.hypot(s.rows / 2 + abs(s.offset) / s.cell, s.cols / 2)) * s.cell  # the grid's corners
        # Walls: the cells beyond the bounds (GridSensor._walls), only for agents within reach of a wall.
        bounds = ar.bounds[:, sel]  # [4, m]
        room = np.minimum(np.minimum(ax - bounds[0, :, None], bounds[2, :, None] - ax),
                          np.minimum(az - bounds[1, :, None], bounds[3, :, None] - az))  # fmt: skip
        mi, ai = np.nonzero(room < reach + s.cell)
        if mi.size:
            cp, sp = c[mi, ai][:, None, None], sn[mi, ai][:, None, None]  # [P, 1, 1]
            cx = ax[mi, ai][:, None, None] + self._z[:, None] * sp + self._x * cp  # [P, H, W]
            cz = az[mi, ai][:, None, None] + self._z[:, None] * cp - self._x * sp
            e = self._half * (np.abs(cp[:, 0, 0]) + np.abs(sp[:, 0, 0]))
            walls = self._walls(cx[:, None], cz[:, None], e[:, None], bounds[:, mi])  # [P, 1, H, W]
            out[mi, ai, :, :, self._wall_channel] = walls[:, 0]
        # Agents (circles, not one's own), only the pairs within reach; frozen ones on their own channel.
        k = self._circles
        ox, oz, r = center[0, k].T, center[1, k].T, radius[k].T  # [m, C]
        dx, dz = ox[:, None] - ax[..., None], oz[:, None] - az[..., None]  # [m, A, C]
        near = (np.maximum(np.abs(dx), np.abs(dz)) < reach + r[:, None]) & active[k].T[:, None] & ~self._self[None]
        mi, ai, ci = np.nonzero(near)
        if mi.size:
            cp, sp = c[mi, ai], sn[mi, ai]
            lx = dx[mi, ai, ci] * cp - dz[mi, ai, ci] * sp
            lz = dx[mi, ai, ci] * sp + dz[mi, ai, ci] * cp
            gx = np.maximum(np.abs(self._x - lx[:, None]) - self._half, F32(0.0))  # [P, W]
            gz = np.maximum(np.abs(self._z - lz[:, None]) - self._half, F32(0.0))  # [P, H]
            hit = (gz[:, :, None] ** 2 + gx[:, None, :] ** 2) < (r[mi, ci] ** 2)[:, None, None]
            ch = np.where(frozen[:, sel].T[mi, ci], self._frozen_ch, self._agent_ch)
            # Several agents may light one (agent, channel) grid: OR them per key, then write each once.
            key = (mi * A + ai) * len(s.tags) + ch
            order = np.argsort(key, kind="stable")
            key, hit = key[order], hit[order]
            start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            hit = np.logical_or.reduceat(hit, start, axis=0)
            key = key[start]
            out[key // (A * len(s.tags)), key // len(s.tags) % A, :, :, key % len(s.tags)] = hit
        # Food: the cell of each item's centre, in each agent's frame.
        f = self._food
        dx = center[0, f].T[:, None, :] - ax[..., None]  # [m, A, F]
        dz = center[1, f].T[:, None, :] - az[..., None]
        cc, ss = c[..., None], sn[..., None]
        lx = dx * cc - dz * ss  # local right
        lz = dx * ss + dz * cc  # local forward
        col = np.floor(lx / s.cell + s.cols / 2).astype(np.int64)
        row = np.floor(s.rows / 2 + s.offset / s.cell - lz / s.cell).astype(np.int64)
        inside = (col >= 0) & (col < s.cols) & (row >= 0) & (row < s.rows)
        mi, ai, fi = np.nonzero(inside)
        out[mi, ai, row[mi, ai, fi], col[mi, ai, fi], self._food_channel[fi]] = 1.0
        return out


class FoodCollectorEnv(NativeEnv):
    """``num_areas`` FoodCollector areas, five agents each (ids 5 * area + k), behaviour ``GridFoodCollector``."""

    behaviors = (BEHAVIOR,)
    agents_per_area = AGENTS
    parameter_defaults = DEFAULT_PARAMETERS
    max_decisions = MAX_DECISIONS

    def __init__(self, num_areas: int = 4, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            (ObservationSpec(GRID.shape, GRID.name),),
            ActionSpec(continuous_size=3, discrete_branches=(2,)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        agents = [
            BodySpec.circle(f"agent{k}", AGENT_RADIUS, mass=AGENT_MASS, drag=AGENT_DRAG, tag="agent")
            for k in range(AGENTS)
        ]
        food = [
            StaticSpec(
                f"food{i}",
                (0.0, 0.0),
                (FOOD_HALF, FOOD_HALF),
                (0.0, 1.0),
                solid=False,
                tag="food" if FOOD_VALUE[i] > 0 else "badFood",
            )  # fmt: skip
            for i in range(NUM_FOOD + NUM_BAD_FOOD)
        ]
        self.arena = Arena(
            n,
            agents,
            food,
            bounds=(-AREA_HALF, -AREA_HALF, AREA_HALF, AREA_HALF),
            bounds_height=WALL_HEIGHT,
            bounds_tag="wall",
            num_agents=AGENTS,
            run_speed=MOVE_SPEED,
            turn_speed=TURN_SPEED,
            gravity=GRAVITY,
            extra_tags=("frozenAgent",),
        )
        ar = self.arena
        self._food = np.arange(ar.W)  # statics are the food items
        self._agent_tag, self._frozen_tag = ar.tag_id("agent"), ar.tag_id("frozenAgent")
        self.grid = FoodGrid(ar, GRID, self._food, np.where(FOOD_VALUE > 0, 0, TAGS.index("badFood")))
        self._ids = np.arange(n * AGENTS, dtype=np.int32)
        self._ids.flags.writeable = False
        self._rows[0] = np.arange(n * AGENTS)  # every agent decides at every step
        self.frozen = np.zeros((AGENTS, n), bool)
        self.frozen_left = np.zeros((AGENTS, n), np.int32)  # decisions until unfrozen
        self.shooting = np.zeros((AGENTS, n), bool)
        self._move = np.zeros((3, AGENTS, n), F32)  # the decision's commands: forward, right, turn
        self._fire = np.zeros((AGENTS, n), bool)

    # ---- simulation ---------------------------------------------------------------------------------

    def _spawn_food(self, slots: np.ndarray, areas: np.ndarray) -> None:
        """New uniform positions in the spawn square for food slots [j] of areas [j] (paired)."""
        xz = self._rng.uniform(-RANGE, RANGE, (2, len(slots))).astype(F32)
        self.arena.center[:, slots, areas] = xz

    def _reset_areas(self, idx: np.ndarray) -> None:
        """OnEpisodeBegin of the five agents of areas idx (food stays where it is)."""
        ar, m = self.arena, len(idx)
        radius = AGENT_RADIUS * self._params["agent_scale"]
        for k in range(AGENTS):
            ar.radius[ar.W + k, idx] = radius
        ar.refresh()
        xz = self._rng.uniform(-RANGE, RANGE, (2, AGENTS, m)).astype(F32)
        ar.pos[:, :, idx] = xz
        yaw = self._rng.integers(0, 360, (AGENTS, m))
        ar.heading[:, idx] = np.radians(yaw).astype(F32)
        ar.stop(idx)
        self.frozen[:, idx] = False
        self.frozen_left[:, idx] = 0
        self.shooting[:, idx] = False
        ar.tag[ar.W :, idx] = self._agent_tag

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        c = np.clip(continuous.astype(F32, copy=False), -1.0, 1.0).reshape(self.n, AGENTS, 3).transpose(2, 1, 0)
        self._move[0], self._move[1] = c[0], c[1]
        self._move[2] = -np.sign(c[2])  # c2 > 0 turns counter-clockwise; the arena's + is clockwise
        self._fire = discrete[:, 0].reshape(self.n, AGENTS).T == 1

    def _no_actions(self) -> None:
        self._move.fill(0.0)
        self._fire.fill(False)

    def _laser(self, fire: np.ndarray) -> None:
        """Sphere casts of every firing agent at once; the first collider hit, if an ``agent``, freezes."""
        ar = self.arena
        A, W, n = AGENTS, ar.W, self.n
        fx, fz = ar.forward()  # [A, n]
        ox, oz = ar.pos[0, :A], ar.pos[1, :A]
        # One ray per (agent, area): flatten them as the casts' "areas" axis, A * n of them.
        dx, dz = fx.reshape(1, -1), fz.reshape(1, -1)
        slots = np.concatenate([self._food, W + np.arange(A)])  # targets: food, then the agents
        T = len(slots)
        rx = (ar.center[0, slots][:, None, :] - ox[None]).reshape(T, -1)  # [T, A * n]
        rz = (ar.center[1, slots][:, None, :] - oz[None]).reshape(T, -1)
        hx = np.broadcast_to(ar.half[0, slots][:, None, :], (T, A, n)).reshape(T, -1)
        hz = np.broadcast_to(ar.half[1, slots][:, None, :], (T, A, n)).reshape(T, -1)
        rad = (np.broadcast_to(ar.radius[slots][:, None, :], (T, A, n)) + F32(LASER_RADIUS)).reshape(T, -1)
        present = np.broadcast_to(fire[None], (T, A, n)).reshape(T, -1)
        t = cast_rounded_boxes(dx, dz, rx, rz, hx, hz, rad.astype(F32), present)[0]  # [T, A * n]
        wall = cast_bounds(dx, dz, ox.reshape(1, -1), oz.reshape(1, -1),
                            np.tile(ar.bounds, (1, A)), F32(LASER_RADIUS))[0]  # fmt: skip
        first = t.argmin(0)
        tmin = t[first, np.arange(t.shape[1])]
        hit = fire.reshape(-1) & (tmin <= LASER_LENGTH) & (tmin < wall) & (first >= W)
        # An agent hit while frozen (tag frozenAgent) stays as it is.
        shooter = np.flatnonzero(hit)
        target = first[shooter] - W
        area = shooter % n
        fresh = ~self.frozen[target, area]
        target, area = target[fresh], area[fresh]
        self.frozen[target, area] = True
        self.frozen_left[target, area] = FREEZE_DECISIONS
        ar.tag[W + target, area] = self._frozen_tag

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        """One decision: unfreeze, lasers, 5 physics steps, eating; returns (reward [n * A], no terminations)."""
        ar = self.arena
        thaw = self.frozen & (self.frozen_left <= 0)
        if thaw.any():
            self.frozen &= ~thaw
            ar.tag[ar.W :][thaw] = self._agent_tag
        free = ~self.frozen
        fire = self._fire & free
        self.shooting = fire
        if fire.any():
            self._laser(fire)
            free = ~self.frozen
            fire &= free
        scale = np.where(fire, F32(SHOOT_MOVE), F32(1.0)) * free
        ar.drive(self._move[0] * scale, self._move[1] * scale, self._move[2] * free)
        slow = np.where(fire, F32(SHOOT_SLOW), F32(1.0))[None]
        vel = ar.vel[:, :AGENTS]
        ar.clear_touches()
        for _ in range(DECISION_PERIOD):
            vel *= slow
            fast = (vel[0] ** 2 + vel[1] ** 2) > SPEED_CAP2
            vel *= np.where(fast, F32(SPEED_DECAY), F32(1.0))[None]
            ar.step(1)
        self.frozen_left -= self.frozen
        # Eating: each touched item goes to the lowest-numbered agent touching it, then respawns.
        touched = ar.touch_static  # [A, F, n]
        eaten = touched.any(0)
        eater = touched.argmax(0)  # [F, n]
        gain = np.where(eaten, FOOD_VALUE[:, None], F32(0.0))
        reward = np.zeros((AGENTS, self.n), F32)
        fi, ai = np.nonzero(eaten)
        np.add.at(reward, (eater[fi, ai], ai), gain[fi, ai])
        if fi.size:
            self._spawn_food(self._food[fi], ai)
        return reward.T.reshape(-1), np.zeros(self.n, bool)

    def _observe_areas(self, areas: np.ndarray | None = None) -> list[np.ndarray]:
        grid = self.grid.observe_food(self.frozen, areas)
        return [grid.reshape(-1, *GRID.shape)]

    def _observe(self) -> list[np.ndarray]:
        return self._observe_areas()

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return self._observe_areas(idx)

    # ---- the env API (five agents per area, all deciding every step) ---------------------------------

    def reset(self) -> None:
        """Env reset (FoodCollectorSettings.EnvironmentReset): all food respawns, every agent starts anew."""
        n, F = self.n, len(self._food)
        self._spawn_food(np.tile(self._food, n), np.repeat(np.arange(n), F))
        self._begin(np.arange(n))
        obs = self._observe_areas()
        self._no_actions()
        self._started = True
        self._no_terminal()
        self._publish(obs, np.zeros(n * AGENTS, F32))

    def step(self) -> None:
        self._require_reset("step")
        reward, _ = self._advance()
        steps = self._steps
        steps += 1
        obs = self._observe()
        ended = steps >= self.max_decisions
        if ended.any():
            idx = np.flatnonzero(ended)
            agents = (idx[:, None] * AGENTS + np.arange(AGENTS)).reshape(-1)
            self._end(agents, [o[agents] for o in obs], reward[agents], np.ones(len(agents), bool))
            self._begin(idx)
            for o, first in zip(obs, self._restart_observations(idx), strict=True):
                o[agents] = first
            reward[agents] = 0.0
        else:
            self._no_terminal()
        self._no_actions()
        self._publish(obs, reward)

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        scale = values.get("agent_scale", 1.0)
        if not 0 < scale <= 10:
            raise EnvError(f"environment parameter 'agent_scale' must be in (0, 10] (got {scale})")

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Top-down pictures of areas: walls, green and red food, agents (frozen ones in their own colour)."""
        return self.arena.render(areas)


__all__: Sequence[str] = ("FoodCollectorEnv", "FoodGrid", "GRID", "BEHAVIOR")

"""A shared, vectorised 2D top-down arena engine for the ML-Agents example ports (PushBlock, Pyramids, Hallway).

Those Unity examples are 3D scenes played on a flat floor: cubes slide on the ground, an agent moves by
discrete commands (a velocity change forward or sideways, a turn), colliders are boxes, and perception
is sphere casts parallel to the floor. This engine keeps the floor plane and simulates every area of an
env at once with numpy array operations: a physics step is a fixed sequence of numpy calls whatever the
number of areas (areas are the last array axis; bodies and statics are small fixed axes).

Coordinates. Unity's floor axes ``x`` (right) and ``z`` (forward); ``y`` (up) only enters as each
collider's vertical extent, used by the ray sensors (a ray at some height only meets the colliders it
reaches). Headings are Unity yaw angles in radians: clockwise seen from above, forward = (sin h, cos h),
right = (cos h, -sin h); ``transform.Rotate(Vector3.up, a)`` is ``heading += a``.

Shapes. Every collider is a *rounded axis-aligned box*: half extents (hx, hz) plus a rounding radius. A
circle is a rounded box with zero half extents; a box has zero radius. Approximations of Unity's
colliders: a rotating agent cube is a circle (its half width as radius); boxes never rotate (the example
blocks have frozen rotations, and the layouts are axis-aligned or turned by multiples of 90 degrees).

* **Bounds**: the inner faces of an area's four outer walls, a rectangle per area (``bounds[4, n]``:
  xmin, zmin, xmax, zmax). Bodies are clamped inside; rays see the walls with ``bounds_tag``.
* **Statics**: box slots (interior walls, goals, zones, switches) whose placement, size, tag and presence
  (``active``) may differ per area and change at any time: randomised layouts are array writes.
* **Bodies**: dynamic slots (agents, blocks) with velocity, mass, drag and friction per area. The first
  ``num_agents`` bodies are agents with a heading, driven by ``drive`` commands.

State layout (area last): shape slots ``[statics..., bodies...]`` with ``center[2, S, n]``,
``half[2, S, n]``, ``radius[S, n]``, ``active[S, n]``, ``tag[S, n]`` (ids into ``tags``, -1 untagged);
``pos`` is the body part of ``center`` (a view), ``vel[2, K, n]``, ``heading[A, n]``.

Physics step (``dt``), in Unity's order (scripts act in FixedUpdate, then PhysX simulates):

1. agent commands act on every physics step until changed (ML-Agents' TakeActionsBetweenDecisions):
   ``vel += run_speed * (forward * f + right * r)`` with the heading before the turn (ForceMode.
   VelocityChange; the scripts compute the direction before calling Rotate), then
   ``heading += radians(turn_speed) * dt * t`` (``transform.Rotate(up, Time.fixedDeltaTime * speed)``);
2. damping ``vel *= max(0, 1 - drag * dt)`` (PhysX's linear damping, Unity's Rigidbody.drag);
3. floor friction, Coulomb: the floor's normal impulse per step is ``m g dt``, so friction removes up to
   ``mu_d g dt`` of speed and a body slower than ``mu_s g dt`` stops (static friction holds it). Each
   body's material is combined with the floor's by averaging (Unity's default Average combine; a collider
   without a material has PhysX's default 0.6 / 0.6);
4. semi-implicit Euler ``pos += vel * dt``;
5. contacts, ``iterations`` passes of: body pairs, then bodies against solid statics, then the bounds.
   Overlapping shapes are pushed apart along the contact normal (pairs share the push by inverse mass)
   and the approaching normal velocity is removed (restitution 0, PhysX's default material); pairs also
   get Coulomb friction (the average of both materials' dynamic coefficients) on their relative
   tangential velocity. Contacts with statics and bounds are frictionless.

Approximations of PhysX: position projection after integration instead of a speculative velocity solver
(a body moving more than its own half size plus a static's half size in one step can tunnel through that
static; bounds cannot be tunnelled); pairs are solved one after another in a fixed order within a pass;
no rotation from off-centre impacts; no vertical motion (bodies rest on the floor from the first step
instead of dropping from their spawn height); one solver pass by default (PhysX iterates), so a body
squeezed between another body and a wall may overlap the other body by a few centimetres for a step.

Touches (Unity's OnCollisionEnter): every contact closer than ``TOUCH_DISTANCE`` (two colliders' default
contact offsets of 0.01) is OR-ed into ``touch_static[K, W, n]``, ``touch_pair[P, n]`` and
``touch_bounds[K, n]`` until ``clear_touches``. Non-solid statics (triggers) report overlaps, never push.

Ray perception (ML-Agents' RayPerceptionSensor over these colliders) is in mlx.envs.native.rays.

Building an env on it (mlx.envs.native.pushblock is a complete example; RaySensor from mlx.envs.native.rays)::

    arena = Arena(n, [BodySpec.circle("agent", 0.5, mass=10, drag=4, tag="agent"),
                      BodySpec.box("block", (1, 1), height=(0, 0.75), mass=10, drag=0.5, tag="block")],
                  [StaticSpec("goal", (0, -10.5), (12.5, 2.15), (-1.5, 1.5), tag="goal")],
                  bounds=(-12.5, -12.5, 12.5, 12.5), bounds_height=(-0.5, 1.5), num_agents=1,
                  run_speed=3, turn_speed=200, gravity=9.81 * 2.5)
    eyes = RaySensor(arena, RaySensorSpec(("block", "goal", "wall"), 3, 90, 0.5, 12, observation_stacks=3))
    arena.drive(forward, right, turn)          # [A, n] commands looked up from the actions
    arena.clear_touches(); arena.step(5)       # one decision: 5 physics steps
    scored = arena.touch_static[arena.body("block"), arena.slot["goal"]]   # [n] bool
    obs = eyes.observe()                       # [n, 105]; after resetting areas idx: eyes.restart(idx)

Statics come first in the slots, so ``slot[name]`` of a static is its index on ``touch_static``'s W axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlx.envs.api import EnvError
from mlx.envs.native import arena_kernels
from mlx.envs.native.contact import _TINY, F32, _any, _has_negative_zero, contact_depth, contact_normal
from mlx.envs.native.contact import rounded_box_contact as rounded_box_contact  # (its users import it here)
from mlx.envs.native.render import FLOOR, Canvas, palette

# Whether Arena.step runs compiled (arena_kernels); tests turn it off to compare with the numpy form.
COMPILED = True
TOUCH_DISTANCE = 0.02  # two colliders' default contact offsets (Physics.defaultContactOffset = 0.01)
DEFAULT_FRICTION = (0.6, 0.6)  # PhysX's default material (dynamic, static)
Areas = np.ndarray | slice | None


def _sel(areas: Areas) -> Any:
    return slice(None) if areas is None else areas


@dataclass(frozen=True)
class BodySpec:
    """A dynamic body present in every area (sizes, masses and drag may later differ per area).

    ``half`` and ``radius`` give its rounded-box shape (see ``circle`` / ``box``); ``height`` is its
    vertical extent (bottom, top) above the floor, which only the ray sensors use; ``friction`` is its
    material's (dynamic, static) friction.
    """

    name: str
    half: tuple[float, float] = (0.0, 0.0)
    radius: float = 0.0
    height: tuple[float, float] = (0.0, 1.0)
    mass: float = 1.0
    drag: float = 0.0
    friction: tuple[float, float] = DEFAULT_FRICTION
    tag: str | None = None

    @classmethod
    def circle(cls, name: str, radius: float, **kwargs: Any) -> BodySpec:
        return cls(name=name, half=(0.0, 0.0), radius=radius, **kwargs)

    @classmethod
    def box(cls, name: str, half: tuple[float, float], **kwargs: Any) -> BodySpec:
        return cls(name=name, half=half, radius=0.0, **kwargs)


@dataclass(frozen=True)
class StaticSpec:
    """A static axis-aligned box slot (wall, goal, zone, switch) and its default placement in every area.

    ``solid`` statics block bodies; the others are triggers that only report overlaps in ``touch_static``.
    """

    name: str
    center: tuple[float, float] = (0.0, 0.0)
    half: tuple[float, float] = (0.5, 0.5)
    height: tuple[float, float] = (0.0, 1.0)
    solid: bool = True
    tag: str | None = None
    active: bool = True


def sample_positions(
    rng: np.random.Generator,
    count: int,
    low: tuple[float, float],
    high: tuple[float, float],
    free: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    tries: int = 8,
    max_rounds: int = 10_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Unity's spawn loop (draw uniformly until a free spot is found) for ``count`` areas at once.

    Each round draws ``tries`` candidates for every still-unplaced area; ``free(x, z, rows)`` gets
    candidates shaped [tries, m] and the row numbers (0..count-1) of those m areas, and returns a boolean
    [tries, m]; an area takes its first free candidate. The draws depend only on the generator's state,
    so a seeded generator gives the same placements. Raises EnvError when some area finds no free spot.
    """
    x = np.zeros(count, F32)
    z = np.zeros(count, F32)
    rows = np.arange(count)
    lo = np.asarray(low, F32)[:, None, None]
    span = (np.asarray(high, F32) - np.asarray(low, F32))[:, None, None]
    for _ in range(max_rounds):
        if rows.size == 0:
            return x, z
        u = rng.random((2, tries, rows.size), dtype=F32) * span + lo
        ok = np.asarray(free(u[0], u[1], rows), bool)
        found = ok.any(0)
        cols = np.flatnonzero(found)
        first = ok.argmax(0)[cols]
        x[rows[cols]] = u[0, first, cols]
        z[rows[cols]] = u[1, first, cols]
        rows = rows[~found]
    raise EnvError(
        f"could not find a free spawn position for {rows.size} area(s) after {max_rounds * tries} draws; "
        "the spawn region is too crowded (check size parameters such as block_scale)"
    )


def box_overlaps(
    x: np.ndarray, z: np.ndarray, half: tuple[float, float], cx: Any, cz: Any, hx: Any, hz: Any, radius: Any = 0.0
) -> np.ndarray:
    """Whether axis-aligned boxes centred at (x, z) with half extents ``half`` overlap rounded boxes
    (strictly: touching is not overlapping). Physics.CheckBox for spawn tests; broadcasts."""
    gx = np.abs(np.asarray(x) - cx) - (half[0] + np.asarray(hx))
    gz = np.abs(np.asarray(z) - cz) - (half[1] + np.asarray(hz))
    dist2 = np.maximum(gx, 0.0) ** 2 + np.maximum(gz, 0.0) ** 2
    inside = (gx < 0) & (gz < 0)
    return inside | ((np.asarray(radius) > 0) & (dist2 < np.asarray(radius) ** 2))


class Arena:
    """The bodies, statics and bounds of ``num_areas`` areas and their physics (see the module docstring).

    ``bodies[:num_agents]`` are agents driven by ``drive``: ``run_speed`` is the velocity change per
    physics step at command 1 (m/s), ``turn_speed`` the turn rate at command 1 (degrees per second).
    Positions, velocities, headings, static placements and tags are public arrays to write directly; to
    change sizes, masses, drag, friction, bounds or ``active``, use the setters (or call ``refresh()``).
    """

    def __init__(
        self,
        num_areas: int,
        bodies: Sequence[BodySpec],
        statics: Sequence[StaticSpec] = (),
        *,
        bounds: tuple[float, float, float, float] | None = None,
        bounds_height: tuple[float, float] = (0.0, 1.0),
        bounds_tag: str | None = "wall",
        num_agents: int = 0,
        run_speed: float = 0.0,
        turn_speed: float = 0.0,
        dt: float = 0.02,
        gravity: float = 9.81,
        ground_friction: tuple[float, float] = DEFAULT_FRICTION,
        iterations: int = 1,
        extra_tags: Sequence[str] = (),
    ) -> None:
        n = int(num_areas)
        if n < 1:
            raise EnvError(f"an arena needs num_areas >= 1, got {num_areas}")
        if not 0 <= num_agents <= len(bodies):
            raise EnvError(f"num_agents must be in 0..{len(bodies)} (the agents are the first bodies)")
        self.n = n
        self.body_specs = tuple(bodies)
        self.static_specs = tuple(statics)
        self.W, self.K, self.A = len(statics), len(bodies), int(num_agents)
        self.S = self.W + self.K
        self.dt = F32(dt)
        self.gravity = float(gravity)
        self.run_speed = F32(run_speed)
        self.turn_step = F32(math.radians(turn_speed) * dt)
        self.iterations = int(iterations)
        names = [s.name for s in (*statics, *bodies)]
        if len(set(names)) != len(names):
            raise EnvError(f"arena slot names must be unique, got {names}")
        self.slot = {name: i for i, name in enumerate(names)}
        tags: list[str] = []
        has_bounds = bounds is not None
        for t in [s.tag for s in (*statics, *bodies)] + [bounds_tag if has_bounds else None, *extra_tags]:
            if t is not None and t not in tags:
                tags.append(t)
        self.tags = tuple(tags)

        specs = (*statics, *bodies)
        self.center = np.zeros((2, self.S, n), F32)
        self.half = np.zeros((2, self.S, n), F32)
        self.radius = np.zeros((self.S, n), F32)
        self.active = np.ones((self.S, n), bool)
        self.tag = np.full((self.S, n), -1, np.int16)
        # Vertical extents (bottom, top) per slot, fixed by the specs; only the ray sensors use them.
        self.height = np.array([s.height for s in specs], np.float64).reshape(self.S, 2)
        self.solid = np.array([s.solid for s in statics], bool)
        for i, s in enumerate(statics):
            self.center[:, i] = np.asarray(s.center, F32)[:, None]
            self.half[:, i] = np.asarray(s.half, F32)[:, None]
            self.active[i] = s.active
            self.tag[i] = self.tag_id(s.tag)
        for k, b in enumerate(bodies):
            self.half[:, self.W + k] = np.asarray(b.half, F32)[:, None]
            self.radius[self.W + k] = b.radius
            self.tag[self.W + k] = self.tag_id(b.tag)
        self.pos = self.center[:, self.W :]  # a view: body positions [2, K, n]
        self.vel = np.zeros((2, self.K, n), F32)
        self.heading = np.zeros((self.A, n), F32)
        self.mass = np.repeat(np.array([b.mass for b in bodies], F32).reshape(self.K, 1), n, 1)
        self.drag = np.repeat(np.array([b.drag for b in bodies], F32).reshape(self.K, 1), n, 1)
        self.friction = np.repeat(np.array([b.friction for b in bodies], F32).reshape(self.K, 2).T[:, :, None], n, 2)
        self.ground_friction = np.repeat(np.asarray(ground_friction, F32)[:, None], n, 1)  # [2, n]
        self.has_bounds = has_bounds
        self.bounds = np.repeat(np.asarray(bounds if has_bounds else (0, 0, 0, 0), F32)[:, None], n, 1)
        self.bounds_height = tuple(bounds_height)
        self.bounds_tag = self.tag_id(bounds_tag) if has_bounds else -1

        self.pairs = [(i, j) for i in range(self.K) for j in range(i + 1, self.K)]
        self.P = len(self.pairs)
        self.pair_index = {p: q for q, p in enumerate(self.pairs)}
        self._pair_bodies = np.ascontiguousarray(np.array(self.pairs, np.intp).reshape(-1, 2).T)  # [2, P]: i, j
        self.touch_static = np.zeros((self.K, self.W, n), bool)
        self.touch_pair = np.zeros((self.P, n), bool)
        self.touch_bounds = np.zeros((self.K, n), bool)
        self._cmd = np.zeros((3, self.A, n), F32)  # forward, right (m/s per step), turn (rad per step)
        self._turning = False
        self._dv: np.ndarray | None = None
        self._dv_buf = np.zeros((2, self.A, n), F32)
        self.refresh()

    # ------------------------------------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------------------------------------

    def tag_id(self, name: str | None) -> int:
        """The integer id of a tag name (-1 for untagged); ids index ``self.tags``."""
        if name is None:
            return -1
        try:
            return self.tags.index(name)
        except ValueError:
            raise EnvError(f"unknown tag '{name}'; this arena has: {', '.join(self.tags)}") from None

    def body(self, name: str) -> int:
        """Body index (0..K-1) of a body slot name."""
        return self.slot[name] - self.W

    def place_static(
        self, name: str, center: tuple[Any, Any], half: tuple[Any, Any] | None = None, areas: Areas = None
    ) -> None:
        """Move (and optionally resize) a static box in some areas (all by default)."""
        i, sel = self.slot[name], _sel(areas)
        self.center[0, i, sel] = center[0]
        self.center[1, i, sel] = center[1]
        if half is not None:
            self.half[0, i, sel] = half[0]
            self.half[1, i, sel] = half[1]
            self.refresh()

    def set_active(self, name: str, active: Any, areas: Areas = None) -> None:
        self.active[self.slot[name], _sel(areas)] = active
        self.refresh()

    def set_body_size(
        self, k: int, half: tuple[Any, Any] | None = None, radius: Any = None, areas: Areas = None
    ) -> None:
        sel = _sel(areas)
        if half is not None:
            self.half[0, self.W + k, sel] = half[0]
            self.half[1, self.W + k, sel] = half[1]
        if radius is not None:
            self.radius[self.W + k, sel] = radius
        self.refresh()

    def set_drag(self, k: int, drag: Any, areas: Areas = None) -> None:
        self.drag[k, _sel(areas)] = drag
        self.refresh()

    def set_mass(self, k: int, mass: Any, areas: Areas = None) -> None:
        if np.any(np.asarray(mass) <= 0):
            raise EnvError(f"body mass must be > 0, got {mass}")
        self.mass[k, _sel(areas)] = mass
        self.refresh()

    def set_ground_friction(self, dynamic: Any, static: Any, areas: Areas = None) -> None:
        sel = _sel(areas)
        self.ground_friction[0, sel] = dynamic
        self.ground_friction[1, sel] = static
        self.refresh()

    def refresh(self) -> None:
        """Recompute the per-area coefficients derived from sizes, masses, drag, friction, bounds, ``active``."""
        W = self.W
        g_dt = F32(self.gravity * float(self.dt))
        self._damp = np.maximum(F32(1.0) - self.drag * self.dt, F32(0.0))[None]  # [1, K, n]
        mu = (self.friction + self.ground_friction[:, None, :]) * F32(0.5)  # Average combine [2, K, n]
        self._fric_decel = mu[0] * g_dt
        self._fric_stick = mu[1] * g_dt
        bh, br = self.half[:, W:], self.radius[W:]
        body_active = self.active[W:]
        # Bodies against statics [.., K, W, n]: Minkowski sums, presence, solidity, touch thresholds.
        self._bs_half = bh[:, :, None, :] + self.half[:, None, :W, :]
        self._bs_rho = br[:, None, :]
        both = body_active[:, None, :] & self.active[None, :W, :]
        self._bs_present = both
        self._bs_solid = both & self.solid[None, :, None]
        self._bs_touch = np.where(self.solid, F32(-TOUCH_DISTANCE), F32(0.0))[None, :, None]
        # Pairs: per pair [2, n] / [n] arrays.
        self._pp = []
        for i, j in self.pairs:
            wi, wj = F32(1.0) / self.mass[i], F32(1.0) / self.mass[j]
            self._pp.append(
                (
                    bh[:, i] + bh[:, j],
                    br[i] + br[j],
                    wi,
                    wj,
                    F32(1.0) / (wi + wj),
                    (self.friction[0, i] + self.friction[0, j]) * F32(0.5),
                    body_active[i] & body_active[j],
                )
            )
        # Bounds: the allowed range of each body centre [2, K, n].
        grow = bh + br[None]
        self._lo = self.bounds[0:2, None, :] + grow
        self._hi = self.bounds[2:4, None, :] - grow
        self._touch_lo = self._lo + F32(TOUCH_DISTANCE)
        self._touch_hi = self._hi - F32(TOUCH_DISTANCE)
        self._body_active = body_active

    def clear_touches(self) -> None:
        self.touch_static.fill(False)
        self.touch_pair.fill(False)
        self.touch_bounds.fill(False)

    def stop(self, areas: Areas = None) -> None:
        """Zero the velocities of every body in some areas (an episode start)."""
        self.vel[:, :, _sel(areas)] = 0.0

    def render(self, areas: Areas | Sequence[int] = None, pixels: int = 320) -> np.ndarray:
        """Top-down pictures uint8 [m, H, W, 3] of some areas (all by default), ``pixels`` along the longer
        side, +x right and +z up: the floor inside the bounds (the walls' colour around it), then the
        present statics (triggers under solid ones), then the bodies (agents on top, with a white dot
        toward their heading), each coloured by its current tag (mlx.envs.native.render.TAG_COLOURS)."""
        idx = np.arange(self.n)[_sel(areas)]
        colours = palette(self.tags)[self.tag[:, idx] + 1]  # [S, m, 3]
        if self.has_bounds:
            b = self.bounds[:, idx]
            wall = 1.0  # a band of the walls' colour around the floor
            window = (b[0].min() - wall, b[1].min() - wall, b[2].max() + wall, b[3].max() + wall)
        else:  # no walls: everything present at the first render, with a margin
            c, reach = self.center[:, :, idx], self.half[:, :, idx] + self.radius[None, :, idx]
            on = self.active[:, idx]
            window = ((c - reach)[0][on].min() - 2, (c - reach)[1][on].min() - 2,
                      (c + reach)[0][on].max() + 2, (c + reach)[1][on].max() + 2)  # fmt: skip
        canvas = Canvas(window, pixels)
        if self.has_bounds:
            out = canvas.blank(len(idx), palette(self.tags)[self.bounds_tag + 1])
            centre, half = (b[0:2] + b[2:4]) / 2, (b[2:4] - b[0:2]) / 2
            canvas.fill(out, centre[0], centre[1], half[0], half[1], FLOOR)
        else:
            out = canvas.blank(len(idx), FLOOR)
        triggers = [s for s in range(self.W) if not self.solid[s]]
        solids = [s for s in range(self.W) if self.solid[s]]
        bodies = list(range(self.S - 1, self.W - 1, -1))  # the last bodies first, so agents end on top
        for s in (*triggers, *solids, *bodies):
            body = s >= self.W
            canvas.fill(out, self.center[0, s, idx], self.center[1, s, idx], self.half[0, s, idx],
                        self.half[1, s, idx], colours[s], self.radius[s, idx], self.active[s, idx],
                        min_pixels=3.0 if body else 0.0)  # fmt: skip
        for k in range(self.A):
            s = self.W + k
            size = np.maximum(self.radius[s, idx], np.minimum(self.half[0, s, idx], self.half[1, s, idx]))
            h = self.heading[k, idx]
            canvas.heading(out, self.center[0, s, idx], self.center[1, s, idx], np.sin(h), np.cos(h), size)
        return out

    # ------------------------------------------------------------------------------------------------
    # agents
    # ------------------------------------------------------------------------------------------------

    def drive(self, forward: np.ndarray, right: np.ndarray, turn: np.ndarray) -> None:
        """Commands [A, n] applied on every physics step until the next call: velocity changes of
        ``run_speed * forward`` along the heading and ``run_speed * right`` to its right, and a turn of
        ``turn_speed * dt * turn`` (positive: clockwise seen from above, i.e. to the right)."""
        np.multiply(forward, self.run_speed, out=self._cmd[0])
        np.multiply(right, self.run_speed, out=self._cmd[1])
        np.multiply(turn, self.turn_step, out=self._cmd[2])
        self._turning = _any(self._cmd[2])
        self._dv = None

    def forward(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit forward vectors (x, z) of the agents, [A, n] each."""
        return np.sin(self.heading), np.cos(self.heading)

    def _apply_commands(self) -> None:
        if self._dv is None or self._turning:
            # Speed: written into one buffer (no np.stack, fewer temporaries); the same products and sums.
            s, c = np.sin(self.heading), np.cos(self.heading)
            f, r = self._cmd[0], self._cmd[1]
            dv = self._dv_buf
            np.multiply(f, s, out=dv[0])
            dv[0] += r * c
            np.multiply(f, c, out=dv[1])
            dv[1] -= r * s
            self._dv = dv
        self.vel[:, : self.A] += self._dv
        if self._turning:
            self.heading += self._cmd[2]

    # ------------------------------------------------------------------------------------------------
    # physics
    # ------------------------------------------------------------------------------------------------

    def step(self, substeps: int = 1) -> None:
        """Advance every area by ``substeps`` physics steps: in one compiled call (arena_kernels.arena_steps,
        the same float32 arithmetic) unless a subclass solves its pairs its own way or ``COMPILED`` is off."""
        if COMPILED and type(self)._solve_pairs is Arena._solve_pairs:
            self._compiled_steps(substeps)
            return
        vel, pos = self.vel, self.pos
        for _ in range(substeps):
            if self.A:
                self._apply_commands()
            vel *= self._damp
            speed = np.hypot(vel[0], vel[1])
            factor = np.maximum(F32(1.0) - self._fric_decel / np.maximum(speed, F32(_TINY)), F32(0.0))
            factor *= speed > self._fric_stick
            vel *= factor
            pos += vel * self.dt
            for _ in range(self.iterations):
                self._solve_pairs()
                if self.W:
                    self._solve_statics()
                if self.has_bounds:
                    self._solve_bounds()

    def _compiled_steps(self, substeps: int) -> None:
        # The headings' sin and cos stay numpy's (its float32 routines, not the C library's): one row per
        # physics step while turning, else the one heading.
        heading = self.heading
        if self._turning:
            seq = np.empty((substeps, self.A, self.n), F32)
            seq[0] = heading
            for s in range(1, substeps):
                np.add(seq[s - 1], self._cmd[2], out=seq[s])
        else:
            seq = heading[None]
        pair_i, pair_j = self._pair_bodies
        arena_kernels.arena_steps(
            substeps, self.iterations, np.sin(seq), np.cos(seq), self._cmd, heading, self._turning,
            self.center, self.half, self.radius, self.active, self.solid, self.vel, self.mass, self.drag,
            self.friction, self.ground_friction, self.has_bounds, self.bounds, self.dt,
            F32(self.gravity * float(self.dt)), pair_i, pair_j, self.touch_pair, self.touch_static,
            self.touch_bounds,
        )  # fmt: skip
        self._dv = None

    def _solve_pairs(self) -> None:
        """One pass over the body pairs, one after another in a fixed order (a subclass may solve them
        differently, e.g. all at once: mlx.envs.native.pushblockcollab)."""
        for q in range(self.P):
            self._solve_pair(q)

    def _solve_pair(self, q: int) -> None:
        i, j = self.pairs[q]
        h, rho, wi, wj, inv, mu, present = self._pp[q]
        pos, vel = self.pos, self.vel
        pen, parts = contact_depth(pos[:, j] - pos[:, i], h, rho)
        self.touch_pair[q] |= (pen > -TOUCH_DISTANCE) & present
        contact = (pen > 0) & present
        if not _any(contact) and not _has_negative_zero(pos[:, (i, j)], vel[:, (i, j)]):
            # Speed: no area in contact, so every push and impulse below is zero and adding it changes
            # nothing, except that it may turn a -0.0 of these bodies into +0.0 (seen in DungeonEscape's
            # velocity observations): skipped only when there is no -0.0, so bit-identical. Saves about
            # 20 numpy calls per pair and physics step.
            return
        n = contact_normal(parts)
        k = np.where(contact, inv, F32(0.0))  # 1 / (w_i + w_j) where in contact
        dp = n * (pen * k)
        pos[:, i] -= dp * wi
        pos[:, j] += dp * wj
        # Relative velocity of j with respect to i: inelastic normal impulse, Coulomb friction along
        # t = (-n_z, n_x). Impulses are per unit of (w_i + w_j): body k changes by impulse * w_k.
        rv = vel[:, j] - vel[:, i]
        vn = rv[0] * n[0] + rv[1] * n[1]
        jn = np.maximum(-vn, F32(0.0))
        jn *= k
        vt = rv[1] * n[0] - rv[0] * n[1]
        lim = mu * jn
        jt = np.minimum(np.maximum(-vt * inv, -lim), lim)
        imp = n * jn
        imp[0] -= jt * n[1]
        imp[1] += jt * n[0]
        vel[:, i] -= imp * wi
        vel[:, j] += imp * wj

    def _solve_statics(self) -> None:
        pos, vel, W = self.pos, self.vel, self.W
        pen, parts = contact_depth(pos[:, :, None, :] - self.center[:, None, :W, :], self._bs_half, self._bs_rho)
        self.touch_static |= (pen > self._bs_touch) & self._bs_present
        hit = (pen > 0) & self._bs_solid
        if not _any(hit) and not _has_negative_zero(pos, vel):
            # Speed: no body overlaps a solid static in any area (most physics steps), so the pushes and
            # velocity removals below are all zero and change nothing but, possibly, a -0.0 into +0.0:
            # skipped when there is no -0.0 (bit-identical). Saves ~12 numpy calls per physics step.
            return
        n = contact_normal(parts)
        push = n * np.where(hit, pen, F32(0.0))
        vn = vel[0][:, None, :] * n[0] + vel[1][:, None, :] * n[1]
        rem = n * np.where(hit, np.minimum(vn, F32(0.0)), F32(0.0))
        if W == 1:
            pos += push[:, :, 0]
            vel -= rem[:, :, 0]
        else:
            # Several statics may push one body: per axis, the largest push each way (no double
            # counting when a body touches two boxes on the same side).
            pos += np.maximum(push.max(2), F32(0.0)) + np.minimum(push.min(2), F32(0.0))
            vel -= np.maximum(rem.max(2), F32(0.0)) + np.minimum(rem.min(2), F32(0.0))

    def _solve_bounds(self) -> None:
        pos, vel, lo, hi = self.pos, self.vel, self._lo, self._hi
        below = pos < lo
        above = pos > hi
        if _any(below) or _any(above):  # Speed: most physics steps no body reaches a wall (clamps are no-ops)
            np.maximum(pos, lo, out=pos)
            np.minimum(pos, hi, out=pos)
            # A clamped body keeps only the part of its velocity that leaves the wall.
            np.copyto(vel, np.maximum(vel, F32(0.0)), where=below)
            np.copyto(vel, np.minimum(vel, F32(0.0)), where=above)
        near = (pos < self._touch_lo) | (pos > self._touch_hi)
        self.touch_bounds |= (near[0] | near[1]) & self._body_active

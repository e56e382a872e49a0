"""A first-person camera for the arena envs: the CameraSensor of VisualPushBlock, VisualPyramids, VisualHallway.

Those three ML-Agents scenes are the vector examples with the agent's ``useVectorObs`` off and a camera on
the agent (/work/shared/reference/more-envs.md section 8.2). The arena engine (mlx.envs.native.arena) keeps
the floor plane; every collider is a vertical prism: its footprint (a box, grown by its rounding radius)
times its vertical extent above the floor (``Arena.height``). That world is drawn exactly by one ray cast
per pixel column:

* a column's ray (the camera's yaw plus the column's angle) is slab-tested against every footprint: it is
  inside a prism's footprint between horizontal distances t0 and t1; the prism with the nearest t0 among
  those a pixel's ray meets is the one it sees (exact for footprints that do not overlap; where they nest,
  Pyramids' gold brick on or in its pyramid, the outer one is in front, right while the camera is below
  its top);
* a pixel's ray rises by ``v`` per unit of depth (v: its row's tangent), so it meets a prism of extent
  [y0, y1] iff ``min over depth in [d0, d1] of (y0 - eye) / depth <= v <= max of (y1 - eye) / depth``:
  an interval of rows per prism and column. It shows the prism's front face where ``eye + v d0`` lies in
  [y0, y1], else its top (or bottom) face;
* behind everything stand the area's walls (``Arena.bounds``, ``bounds_height``): the column's exit
  distance from the room gives the wall's rows; above it the sky, below it the floor.

Per column, the prisms it meets are sorted near to far; a painter's pass over those layers (far first)
writes each pixel's colour id (a tag and a face) over the background's, and one lookup into an 8-bit colour
table makes the picture. Every step is an array operation over (areas x rows x columns) or (areas x
prisms x columns); the only Python loop runs over the layers (the most prisms any column meets: a few in
PushBlock and Hallway, about ten in Pyramids), never over areas, agents or pixels. The camera's own agent
is not drawn (the camera sits inside it). Cost of this numpy form (tests' machine, 2 cores at load 12):
about 0.9 ms per area for PushBlock and Hallway, 1.6 ms for Pyramids, linear in the areas; it was most of a
visual env's step. With ``mlx.envs.native.arena.COMPILED`` (the default) the same pictures come from one
numba kernel (mlx.envs.native.camera_kernels: per area and column the slab tests, then the painter's pass
over row ranges; tests/test_camera_kernels.py checks them equal pixel for pixel), about 10x faster;
the numpy form stays as its reference.

Image: ``size`` x ``size`` RGB (84 x 84 by default, ML-Agents' CameraSensor default; the three scenes'
resolutions are NOT FOUND), float32 in [0, 1] in 8-bit steps (as a render texture holds them), [height,
width, channels]. Unity's default camera: 60 degrees vertical field of view; square, so 60 horizontal too;
near clip 0.3 m. Colours: each collider's ML-Agents tag (mlx.envs.native.render.TAG_COLOURS), the same
as the top-down pictures, shaded per face (faces across x darker than faces across z, tops lighter) so
edges and distances read; flat otherwise (no lights, shadows or textures: Hallway's O and X symbols are
told apart by their tags' colours, not by drawn shapes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import BehaviorSpec, EnvError, ObservationSpec, TerminalSteps
from mlx.envs.native import arena as arena_module
from mlx.envs.native.arena import F32, Arena
from mlx.envs.native.camera_kernels import render_camera
from mlx.envs.native.rays import cast_bounds
from mlx.envs.native.render import FLOOR, VOID, palette
from mlx.memory import check_areas

CAMERA_NAME = "CameraSensor"  # CameraSensorComponent's default sensorName
SIZE = 84  # ML-Agents' CameraSensor default width and height
FOV_DEG = 60.0  # Unity's default vertical field of view
NEAR = 0.3  # Unity's default near clip plane (m)
WALL_CAP = 1e4  # the farthest a wall is drawn (m): a column that never leaves the room
EYE = 1.0  # camera height above the floor (m): the top of the 1 m agent cube
SKY = (135, 175, 215)
SHADE_X, SHADE_Z, SHADE_TOP = 0.78, 1.0, 1.15  # faces across x, across z, horizontal faces
_WALL_Z, _WALL_X, _SKY, _FLOOR = -4, -3, -2, -1  # the background's rows, from the end of the colour table


def _colour_table(arena: Arena) -> np.ndarray:
    """float32 [(tags + 1) * 3 + 4, 3], 8-bit values: row (tag id + 1) * 3 + face (0 across z, 1 across x,
    2 top) for prisms; then the background's rows (_WALL_Z, _WALL_X, _SKY, _FLOOR offsets from the end)."""
    base = palette(arena.tags).astype(F32)  # [tags + 1, 3]
    prisms = base[:, None, :] * np.array([SHADE_Z, SHADE_X, SHADE_TOP], F32)[None, :, None]
    wall = base[arena.bounds_tag + 1]
    background = [wall * F32(SHADE_Z), wall * F32(SHADE_X), np.asarray(SKY, F32), np.asarray(FLOOR, F32)]
    table = np.vstack([prisms.reshape(-1, 3), *background])
    return (np.rint(np.minimum(table, F32(255.0))) / F32(255.0)).astype(F32)


def _row_tangents(size: int) -> np.ndarray:
    """Tangent-plane coordinate of each pixel centre from the image centre, growing up the rows (row 0 at
    the top) or right along the columns (column 0 at the left when negated): [size] float64."""
    tan = math.tan(math.radians(FOV_DEG) / 2)
    return ((np.arange(size) + 0.5) - size / 2) / (size / 2) * tan


class ArenaCamera:
    """The first-person camera of agent ``agent`` of every area of an Arena (see the module doc).

    ``heights`` overrides a slot's drawn vertical extent (name -> (bottom, top) above the floor), for a
    collider the engine simplifies (Pyramids' rubble); ``hidden`` slots are never drawn.
    """

    def __init__(
        self,
        arena: Arena,
        agent: int = 0,
        size: int = SIZE,
        eye: float = EYE,
        heights: Mapping[str, tuple[float, float]] | None = None,
        hidden: tuple[str, ...] = (),
    ) -> None:
        self.arena = arena
        self.size = size
        self.eye = float(eye)
        t = _row_tangents(size)
        self._v = (-t).astype(F32)  # rows: up is positive, row 0 at the top
        u = t  # columns, rightward
        self._angle = np.arctan(u).astype(F32)  # column ray's yaw from forward (+ to the right)
        self._cos = (1.0 / np.sqrt(1.0 + u * u)).astype(F32)  # horizontal distance -> depth along forward
        self._self_slot = arena.W + agent
        self._agent = agent
        height = arena.height.copy()
        for name, extent in (heights or {}).items():
            height[arena.slot[name]] = extent
        skip = {self._self_slot, *(arena.slot[name] for name in hidden)}
        self._slots = np.array([s for s in range(arena.S) if s not in skip], np.intp)
        self._y0 = height[self._slots, 0].astype(F32)  # [T]
        self._y1 = height[self._slots, 1].astype(F32)
        self._wall_top = F32(arena.bounds_height[1])
        self._table = _colour_table(arena)
        self._all_areas = np.arange(arena.n, dtype=np.intp)

    def render(self, areas: np.ndarray | None = None) -> np.ndarray:
        """float32 [m, size, size, 3]: the camera picture of every area (or of the given areas)."""
        ar, e = self.arena, F32(self.eye)
        sel = slice(None) if areas is None else areas
        k = self._agent
        heading = ar.heading[k, sel]  # [m]
        yaw = heading[None, :] + self._angle[:, None]  # [R, m]
        dx, dz = np.sin(yaw).astype(F32), np.cos(yaw).astype(F32)
        if arena_module.COMPILED:
            return self._render_compiled(dx, dz, areas)
        ox, oz = ar.pos[0, k, sel], ar.pos[1, k, sel]  # [m]
        cos = self._cos[:, None]  # [R, 1]
        # The walls: the room's exit distance per column, as depth along the camera's forward.
        b = ar.bounds[:, sel]
        t_wall_x = cast_bounds(dx, np.zeros_like(dz), ox, oz, b, F32(0.0))  # the walls across x only
        t_wall = np.minimum(t_wall_x, cast_bounds(np.zeros_like(dx), dz, ox, oz, b, F32(0.0)))
        d_wall = (np.minimum(t_wall, F32(WALL_CAP)) * cos).T  # [m, R]
        wall_x = (t_wall_x <= t_wall).T[:, None, :]  # [m, 1, R]: the column ends on a wall across x
        # Every drawn slot's footprint, slab-tested: entry/exit distances [R, T, m].
        slots = self._slots
        grow = ar.radius[slots][:, sel]  # [T, m]
        rel_x, rel_z = ar.center[0, slots][:, sel] - ox, ar.center[1, slots][:, sel] - oz
        g_x, g_z = ar.half[0, slots][:, sel] + grow, ar.half[1, slots][:, sel] + grow
        with np.errstate(divide="ignore", invalid="ignore"):
            ix, iz = (F32(1.0) / dx)[:, None, :], (F32(1.0) / dz)[:, None, :]  # [R, 1, m]
            ax, bx = (rel_x - g_x)[None] * ix, (rel_x + g_x)[None] * ix
            az, bz = (rel_z - g_z)[None] * iz, (rel_z + g_z)[None] * iz
        # A ray parallel to a slab is inside it for every t or for none (0 * inf gives nan: decided here).
        lo_x, hi_x = np.fmin(ax, bx), np.fmax(ax, bx)
        lo_z, hi_z = np.fmin(az, bz), np.fmax(az, bz)
        par_x = (dx == 0)[:, None, :] & (np.abs(rel_x) <= g_x)[None]
        par_z = (dz == 0)[:, None, :] & (np.abs(rel_z) <= g_z)[None]
        lo_x, hi_x = np.where(par_x, -np.inf, lo_x), np.where(par_x, np.inf, hi_x)
        lo_z, hi_z = np.where(par_z, -np.inf, lo_z), np.where(par_z, np.inf, hi_z)
        t0, t1 = np.maximum(lo_x, lo_z), np.minimum(hi_x, hi_z)
        face_x = lo_x >= lo_z  # the entry face is across x
        d0 = np.maximum(t0 * cos[:, :, None], F32(NEAR))  # depth along forward, clipped at the near plane
        d1 = t1 * cos[:, :, None]
        present = ar.active[slots][:, sel][None]  # [1, T, m]
        hit = present & (t0 <= t1) & (d1 > F32(NEAR)) & (d0 < d_wall.T[:, None, :])
        # Rows each prism covers in each column: v in [v_lo, v_hi] (empty where not hit).
        y0, y1 = self._y0[None, :, None], self._y1[None, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):  # d1 of missed slots may be 0 or negative
            v_lo = np.where(y0 < e, (y0 - e) / d0, (y0 - e) / d1)
            v_hi = np.where(y1 > e, (y1 - e) / d0, (y1 - e) / d1)
        v_lo = np.where(hit, v_lo, F32(np.inf))  # a prism the column misses covers no row
        # Per column, the prisms it meets sorted near to far: [m, K, R], K the most any column meets.
        layers = int(hit.sum(1).max()) if hit.size else 0
        order = np.argsort(np.where(hit, d0, F32(np.inf)), axis=1, kind="stable")[:, :layers]  # [R, K, m]

        def near(x: np.ndarray) -> np.ndarray:  # [R, T, m] -> the sorted layers [m, K, R]
            return np.take_along_axis(x, order, axis=1).transpose(2, 1, 0)

        # Each layer's colour ids into self._table, (tag id + 1) * 3 + face: its top (or bottom) face where
        # it covers a row, then its front face (across x or z) where the ray enters through the side.
        tag = ar.tag[slots][:, sel].astype(np.intp)  # [T, m]
        side = (tag[None] + 1) * 3 + face_x  # [R, T, m]: 1 across x, 0 across z
        id_side, id_top = near(side), near((tag[None] + 1) * 3 + 2 + np.zeros_like(side))
        with np.errstate(divide="ignore", invalid="ignore"):
            f_lo, f_hi = (y0 - e) / d0, (y1 - e) / d0  # rows of the front face, at the entry depth
        v_lo, v_hi, f_lo, f_hi = near(v_lo), near(v_hi), near(f_lo), near(f_hi)
        v = self._v[None, :, None]  # [1, H, 1]
        # Background: the walls (faces across z or x), the sky above them, the floor below.
        dw = d_wall[:, None, :]  # [m, 1, R]
        wall = np.where(wall_x, len(self._table) + _WALL_X, len(self._table) + _WALL_Z)
        ids = np.where(v > (self._wall_top - e) / dw, len(self._table) + _SKY, wall)
        np.copyto(ids, len(self._table) + _FLOOR, where=v < -e / dw)
        # Painter's algorithm, far to near, over the sorted layers.
        for j in range(layers - 1, -1, -1):
            lo, hi = v_lo[:, j, None, :], v_hi[:, j, None, :]
            np.copyto(ids, id_top[:, j, None, :], where=(v >= lo) & (v <= hi))
            lo, hi = np.maximum(lo, f_lo[:, j, None, :]), np.minimum(hi, f_hi[:, j, None, :])
            np.copyto(ids, id_side[:, j, None, :], where=(v >= lo) & (v <= hi))
        return self._table[ids]

    def _render_compiled(self, dx: np.ndarray, dz: np.ndarray, areas: np.ndarray | None) -> np.ndarray:
        """render's numpy form, compiled (mlx.envs.native.camera_kernels): the same pictures."""
        ar = self.arena
        cols = self._all_areas if areas is None else self._all_areas[areas]
        out = np.empty((len(cols), self.size, self.size, 3), F32)
        end = len(self._table)
        render_camera(
            np.ascontiguousarray(dx), np.ascontiguousarray(dz), np.ascontiguousarray(cols, np.intp),
            self._self_slot, ar.center, ar.half, ar.radius, ar.active, ar.tag, ar.bounds, self._slots,
            self._y0, self._y1, self._cos, self._v, F32(self.eye), self._wall_top, self._table,
            end + _WALL_Z, end + _WALL_X, end + _SKY, end + _FLOOR, out,
        )  # fmt: skip
        return out


class FirstPersonCamera:
    """Mixin for an arena port's visual variant: the agent's camera replaces every other observation.

    Put it first among the bases (``class VisualHallwayEnv(FirstPersonCamera, HallwayEnv)``) and call
    ``_use_camera`` at the end of ``__init__``: the behaviour spec becomes one ``CameraSensor`` observation
    of [size, size, 3] with the port's own actions, and the observations come from ``self.camera``.
    Simulation, rewards and episodes stay the vector port's.
    """

    spec: BehaviorSpec
    arena: Arena
    n: int
    camera: ArenaCamera

    def _use_camera(self, camera: ArenaCamera) -> None:
        self.camera = camera
        shape = (camera.size, camera.size, 3)
        name = type(self).__name__
        floats = math.prod(shape)
        what = f"{self.n} areas of {name} (env.num_areas x env.num_envs; {floats} observation floats each)"
        check_areas(self.n, floats, "env.num_areas", self.n, what, EnvError)
        self.spec = BehaviorSpec((ObservationSpec(shape, CAMERA_NAME),), self.spec.action_spec)
        empty = TerminalSteps([np.zeros((0, *shape), F32)], np.zeros(0, F32), np.zeros(0, np.int32), np.zeros(0, bool))
        self._empty = [empty] * len(self.behaviors)  # type: ignore[attr-defined]
        self._terminals = list(self._empty)

    def _observe(self, areas: np.ndarray | None = None) -> list[np.ndarray]:
        return [self.camera.render(areas)]

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return [self.camera.render(idx)]

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Pictures for people (mode=watch): the top-down view of each area with what its agent's camera
        sees beside it, enlarged by a whole factor to about the view's height."""
        top = super().render(areas)  # type: ignore[misc]
        idx = None if areas is None else np.arange(self.n)[np.asarray(areas)]
        seen = np.rint(self.camera.render(idx) * 255.0).astype(np.uint8)
        scale = max(1, top.shape[1] // seen.shape[1])
        seen = seen.repeat(scale, axis=1).repeat(scale, axis=2)
        height = max(top.shape[1], seen.shape[1])
        out = np.empty((top.shape[0], height, top.shape[2] + seen.shape[2], 3), np.uint8)
        out[:] = VOID
        out[:, : top.shape[1], : top.shape[2]] = top
        out[:, : seen.shape[1], top.shape[2] :] = seen
        return out

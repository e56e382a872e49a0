"""ML-Agents' GridSensor over the 2D arena engine, computed from shapes (no rendering), for every agent at once.

What it imitates (ML-Agents' GridSensorComponent with one-hot detection, as PushBlockCollab's agents use
it): a grid of ``rows x cols`` square cells of ``cell`` metres, centred on a point ``offset`` metres in
front of the agent and turning with it; each cell reports, per detectable tag, whether a collider carrying
that tag overlaps the cell's box. The observation of an agent is float32 [rows, cols, len(tags)] (H, W, C).

Layout (ML-Agents' exact cell order was not recorded in the facts sheet; this one is chosen): row 0 is the
row farthest ahead, row ``rows - 1`` the nearest; column 0 is the leftmost, so an observation reads like a
picture of what lies ahead, the agent at the bottom centre. Cell (r, c) has its centre at local
(right, forward) = ((c - (cols - 1) / 2) * cell, offset + ((rows - 1) / 2 - r) * cell).

Detection is exact for the arena's shapes as seen from the floor plane (heights are ignored: the grid's
0.5 m cell height at the agent's centre meets every collider of these scenes):

* boxes (statics, block bodies; a rounded box counts as a box grown by its radius): a separating-axis test
  between the cell (a square turned by the agent's heading) and the axis-aligned box, on the four axes.
  Along a row of cells each test is linear in the cells' local x, so it keeps an interval of x per row;
  a cell overlaps when its centre lies in the four intervals of its row;
* circles (agent bodies): the distance from the circle's centre to the cell square, separable into a row
  term plus a column term;
* the outer walls (the arena's bounds, tagged ``bounds_tag``): slabs ``wall_thickness`` thick outside the
  bounds; a cell meets a wall when its world extent crosses the bound and reaches into the slab.

An agent does not see its own body (ML-Agents' grid sensor skips the agent's own colliders). Inactive slots
(a scored block) are not seen. Several tags in one cell all light up (one-hot per tag channel).

Cost: interval arithmetic over (areas, agents, shapes, rows), then one comparison per (shape, cell); no
loop over areas or agents (loops over the tag channels only). Checked against points sampled in every
cell (tests/test_pushblockcollab.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlx.envs.api import EnvError
from mlx.envs.native.arena import Arena

F32 = np.float32


@dataclass(frozen=True)
class GridSensorSpec:
    """The grid's tags (channel order), size in cells, cell size (m), and centre distance ahead (m)."""

    tags: tuple[str, ...]
    rows: int = 20
    cols: int = 20
    cell: float = 1.0
    offset: float = 10.0
    wall_thickness: float = 0.5
    name: str = "GridSensor"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.rows, self.cols, len(self.tags))


class GridSensor:
    """Every agent's grid observation of an arena (see the module docstring); ``observe()`` -> [n, A, H, W, C]."""

    def __init__(self, arena: Arena, spec: GridSensorSpec) -> None:
        if arena.A < 1:
            raise EnvError("a grid sensor needs an arena with agents")
        self.arena, self.spec = arena, spec
        s = spec
        self._x = ((np.arange(s.cols) - (s.cols - 1) / 2) * s.cell).astype(F32)  # [W] local right
        self._z = (s.offset + ((s.rows - 1) / 2 - np.arange(s.rows)) * s.cell).astype(F32)  # [H] local forward
        self._half = F32(s.cell / 2)
        # Channel of every slot from its tag at construction (-1: not detected).
        tag0 = arena.tag[:, 0]
        channel = np.array([s.tags.index(arena.tags[t]) if t >= 0 and arena.tags[t] in s.tags else -1 for t in tag0])
        W = arena.W
        is_circle = np.zeros(arena.S, bool)
        for k, b in enumerate(arena.body_specs):
            is_circle[W + k] = b.radius > 0 and b.half == (0.0, 0.0)
        seen = channel >= 0
        self._boxes = np.flatnonzero(seen & ~is_circle)
        self._circles = np.flatnonzero(seen & is_circle)
        self._box_channel = channel[self._boxes]
        self._circle_channel = channel[self._circles]
        self._wall_channel = (
            s.tags.index(arena.tags[arena.bounds_tag])
            if arena.has_bounds and arena.bounds_tag >= 0 and arena.tags[arena.bounds_tag] in s.tags
            else -1
        )
        # Own-body mask for the circle slots: [A, Sc] True where circle slot c is agent a itself.
        self._self = np.array([[c == W + a for c in self._circles] for a in range(arena.A)], bool)

    def observe(self, areas: np.ndarray | None = None) -> np.ndarray:
        """float32 [m, A, rows, cols, channels]: the grids of every agent of some areas (all by default)."""
        ar, s = self.arena, self.spec
        sel = slice(None) if areas is None else areas
        pos, heading = ar.pos[:, : ar.A, sel], ar.heading[:, sel]
        center, half, radius = ar.center[:, :, sel], ar.half[:, :, sel], ar.radius[:, sel]
        active, bounds = ar.active[:, sel], ar.bounds[:, sel]
        m, A = heading.shape[1], ar.A
        seen = np.zeros((m, A, len(s.tags), s.rows, s.cols), bool)  # channel-major while filling
        h = heading.T  # [m, A]
        c, sn = np.cos(h).astype(F32), np.sin(h).astype(F32)
        ax, az = pos[0].T, pos[1].T  # [m, A]
        e = self._half * (np.abs(c) + np.abs(sn))  # the cell's half extent along a world axis [m, A]
        xl, zl = self._x, self._z
        # World cell centres [m, A, H, W]: pos + x * right + z * forward.
        cx = ax[..., None, None] + zl[:, None] * sn[..., None, None] + xl * c[..., None, None]
        cz = az[..., None, None] + zl[:, None] * c[..., None, None] - xl * sn[..., None, None]
        if self._wall_channel >= 0:
            seen[:, :, self._wall_channel] = self._walls(cx, cz, e, bounds)
        if self._boxes.size:
            b = self._boxes
            grow = radius[b].T  # [m, B]
            box = (center[0, b].T, center[1, b].T, half[0, b].T + grow, half[1, b].T + grow, active[b].T)
            self._scatter(seen, self._box_hits(cx, cz, e, c, sn, ax, az, *box), self._box_channel)
        if self._circles.size:
            k = self._circles
            circ = (center[0, k].T, center[1, k].T, radius[k].T, active[k].T)
            self._scatter(seen, self._circle_hits(c, sn, ax, az, *circ), self._circle_channel)
        out = np.empty((m, A, s.rows, s.cols, len(s.tags)), F32)
        out[...] = seen.transpose(0, 1, 3, 4, 2)
        return out

    @staticmethod
    def _scatter(seen: np.ndarray, hit: np.ndarray, channels: np.ndarray) -> None:
        """OR the shapes' cells [m, A, S, H, W] into their channels of ``seen`` [m, A, C, H, W]."""
        for ch in np.unique(channels):
            for i in np.flatnonzero(channels == ch):
                seen[:, :, ch] |= hit[:, :, i]

    def _walls(self, cx: np.ndarray, cz: np.ndarray, e: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        t = F32(self.spec.wall_thickness)
        x0, z0, x1, z1 = (b[:, None, None, None] for b in bounds)  # [m, 1, 1, 1]
        ee = e[..., None, None]
        lo_x, hi_x, lo_z, hi_z = cx - ee, cx + ee, cz - ee, cz + ee
        in_x = (hi_x > x0 - t) & (lo_x < x1 + t)  # within the walls' outer frame
        in_z = (hi_z > z0 - t) & (lo_z < z1 + t)
        beyond = (lo_x < x0) | (hi_x > x1) | (lo_z < z0) | (hi_z > z1)
        return beyond & in_x & in_z

    def _box_hits(
        self,
        cx: np.ndarray,
        cz: np.ndarray,
        e: np.ndarray,
        c: np.ndarray,
        sn: np.ndarray,
        ax: np.ndarray,
        az: np.ndarray,
        bx: np.ndarray,
        bz: np.ndarray,
        hx: np.ndarray,
        hz: np.ndarray,
        act: np.ndarray,
    ) -> np.ndarray:
        """[m, A, B, H, W]: cells overlapping the boxes (centres bx, bz, half extents hx, hz: [m, B]).

        Each of the four separating-axis tests keeps, in every row of cells, an interval of the local x of
        the cell centres (the world-axis tests are linear in x along a row); a cell overlaps the box when
        its centre lies in the intersection of the intervals of its row, and its row passes the row test.
        """
        cc, ss = c[..., None, None], sn[..., None, None]  # [m, A, 1, 1]
        zl = self._z  # [H]
        dx = (ax[..., None] - bx[:, None])[..., None]  # agent - box, [m, A, B, 1]
        dz = (az[..., None] - bz[:, None])[..., None]
        ee = e[..., None, None]
        tx, tz = hx[:, None, :, None] + ee, hz[:, None, :, None] + ee  # [m, A, B, 1]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # World x: |dx + z sin + x cos| < tx; world z: |dz + z cos - x sin| < tz  ([m, A, B, H] each).
            ux = dx + zl * ss
            uz = dz + zl * cc
            a1, a2 = (-tx - ux) / cc, (tx - ux) / cc
            b1, b2 = (-tz - uz) / -ss, (tz - uz) / -ss
            lo = np.maximum(np.minimum(a1, a2), np.minimum(b1, b2))
            hi = np.minimum(np.maximum(a1, a2), np.maximum(b1, b2))
        # Cell axes: the box's centre and half extents in the agent's frame.
        c3, s3 = c[..., None], sn[..., None]  # [m, A, 1]
        lx = -(dx[..., 0] * c3 - dz[..., 0] * s3)
        lz = -(dx[..., 0] * s3 + dz[..., 0] * c3)
        px = hx[:, None] * np.abs(c3) + hz[:, None] * np.abs(s3) + self._half
        pz = hx[:, None] * np.abs(s3) + hz[:, None] * np.abs(c3) + self._half
        np.maximum(lo, (lx - px)[..., None], out=lo)
        np.minimum(hi, (lx + px)[..., None], out=hi)
        rows = (np.abs(zl - lz[..., None]) < pz[..., None]) & act[:, None, :, None]  # [m, A, B, H]
        lo[~rows] = np.inf
        x = self._x
        hit = x > lo[..., None]
        hit &= x < hi[..., None]
        return hit

    def _circle_hits(
        self,
        c: np.ndarray,
        sn: np.ndarray,
        ax: np.ndarray,
        az: np.ndarray,
        ox: np.ndarray,
        oz: np.ndarray,
        r: np.ndarray,
        act: np.ndarray,
    ) -> np.ndarray:
        """[m, A, C, H, W]: cells overlapping the circles (centres ox, oz, radii r: [m, C]), not one's own."""
        dx = ox[:, None] - ax[..., None]  # [m, A, C]
        dz = oz[:, None] - az[..., None]
        cc, ss = c[..., None], sn[..., None]
        lx = dx * cc - dz * ss
        lz = dx * ss + dz * cc
        gx = np.maximum(np.abs(self._x - lx[..., None]) - self._half, F32(0.0))  # [m, A, C, W]
        gz = np.maximum(np.abs(self._z - lz[..., None]) - self._half, F32(0.0))  # [m, A, C, H]
        r2 = np.where(act[:, None] & ~self._self[None], r[:, None] ** 2, F32(-1.0))  # [m, A, C]
        return (gz[..., :, None] ** 2 + gx[..., None, :] ** 2) < r2[..., None, None]


def grid_layout(spec: GridSensorSpec) -> tuple[np.ndarray, np.ndarray]:
    """Local (right [W], forward [H]) coordinates of the cell centres, for tests and scripted policies."""
    x = (np.arange(spec.cols) - (spec.cols - 1) / 2) * spec.cell
    z = spec.offset + ((spec.rows - 1) / 2 - np.arange(spec.rows)) * spec.cell
    return x, z


__all__: Sequence[str] = ("GridSensor", "GridSensorSpec", "grid_layout")

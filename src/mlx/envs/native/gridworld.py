"""GridWorld: a vectorised numpy port of Unity ML-Agents' GridWorld example (GridAgent + GridArea).

Each area is a ``gridSize`` x ``gridSize`` grid of unit cells (x, z in 0..gridSize-1) holding one agent,
``numPlusGoals`` green "+" goals and ``numExGoals`` red "x" goals, all on distinct random cells drawn at
every episode start. The episode's goal colour (GreenPlus 0 or RedEx 1) is drawn at the same time and
given to the agent as a 2-float one-hot observation of type GOAL_SIGNAL. One decision per step, actions
1 branch of 5: 0 no-op, 1 +z, 2 -z, 3 -x, 4 +x. Moves off the grid are masked (GridAgent's maskActions
is on in the scene); an unmasked one leaves the agent in place, as the wall blocks it upstream. Every
step costs 0.01; stepping on a goal sets that step's reward to +1 (the right colour) or -1 (the wrong
one) and ends the episode. MaxStep is 100 steps: reaching it interrupts the episode (max_step_reached,
reward -0.01 for the last step). Behaviour name ``GridWorld``; 9 areas in the upstream scene.

Observation 0 is the area's top-down camera, 84 wide x 64 high RGB, float32 [64, 84, 3] in [0, 1]
(rows top to bottom, as ML-Agents' Python API lays out a CameraSensor). It is upstream's camera
geometry: orthographic, looking straight down from above the grid centre, ``orthographic size``
gridSize / 2, so the grid fills the image height exactly (64 / gridSize pixels per cell: 12.8 at
gridSize 5), image up is +z and image right is +x. The 84-pixel width also shows the side walls
(cubes 1 wide, just outside the grid) in a 10-pixel band at each side, and the camera's clear colour
beyond them for gridSize > 6. Observation 1 is the goal one-hot.

How the picture approximates Unity's render: shapes and sizes are the prefabs' (the agent is a cube
filling its cell; "+" is two crossed 1 x 0.2 bars; "x" the same bars turned 45 degrees), but every
surface is a flat unlit colour (no lighting, shadows or textures) and the colours are chosen, not read
from the materials: floor dark grey, walls light grey, agent blue, "+" green, "x" red, beyond the walls
the agent camera's clear colour (0.192, 0.302, 0.475). Edges are anti-aliased by 4 x 4 supersampling
of each pixel, where each pixel belongs to the cell its centre falls in and shows only that cell's
object (a pixel straddling a cell border ignores the neighbouring cell's object). Values are multiples
of 1/255, as the sensor's 8-bit render texture gives them. In the terminal observation of a goal
reached, the agent is drawn over that goal.

Environment parameters (upstream names and defaults): ``gridSize`` 5, ``numPlusGoals`` 1,
``numExGoals`` 1, whole numbers with gridSize in 2..32 (at most 2 pixels per cell) and room on the
grid for the agent and every goal. As GridArea reads them at every reset, a change applies to each
area at its next episode start (areas may briefly differ in grid size); the action mask uses the
area's own grid size.

Implementation, for speed: per grid size, the background image and, for each (object type, cell),
the cell's rectangle of pixels with its precomputed supersampled colours (a "sprite") are built once.
A render is one broadcast copy of the background into the fresh observation array, then the sprites
of every area's goals, then of every agent, each a single fancy-indexed assignment of whole sprite rows
into a strided view of the images (one per cell width; there are at most two), for all areas at once.
Agent moves and goal tests are array operations over areas, and new episodes' cells are drawn for all
reset areas at once (a random permutation of the cells per area). The float32 image is written once
(compositing in uint8 and converting measured no faster), so the cost per agent is about that of
writing its 64 kB observation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, EnvError, ObservationSpec, ObservationType
from mlx.envs.native.base import NativeEnv

BEHAVIOR_NAME = "GridWorld"
HEIGHT, WIDTH = 64, 84  # upstream CameraSensor: 84 wide x 64 high, RGB
MAX_STEP = 100
STEP_REWARD = -0.01
GOAL_REWARD, WRONG_GOAL_REWARD = 1.0, -1.0
GREEN_PLUS, RED_EX = 0, 1  # GridGoal: also the object types of the two goal kinds
AGENT = 2  # object type of the agent (sprite table row)
NUM_ACTIONS = 5
# Action -> (dx, dz): 0 no-op, 1 +z ("up"), 2 -z, 3 -x, 4 +x, GridAgent's order.
MOVES = np.array([[0, 0], [0, 1], [0, -1], [-1, 0], [1, 0]], dtype=np.int64)
DEFAULT_PARAMETERS = {"gridSize": 5.0, "numPlusGoals": 1.0, "numExGoals": 1.0}
MIN_GRID, MAX_GRID = 2, 32
SUPERSAMPLE = 4

# Flat colours (RGB in [0, 1]); chosen, see the module docstring. CLEAR is the agent camera's.
CLEAR = (0.192, 0.302, 0.475)
FLOOR = (0.30, 0.30, 0.30)
WALL = (0.62, 0.62, 0.62)
OBJECT_COLOURS = {GREEN_PLUS: (0.10, 0.78, 0.20), RED_EX: (0.88, 0.14, 0.12), AGENT: (0.16, 0.38, 0.92)}
BAR_HALF_WIDTH = 0.1  # the goal bars are 1 x 0.2

_F32 = np.float32


def pixel_to_world(grid_size: int, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World (x, z) of image points given in pixel units (row 0 at the top edge, col 0 at the left edge).

    The camera looks down from above the grid centre ((g-1)/2, (g-1)/2) with orthographic size g/2:
    g / 64 world units per pixel both ways, +x to the right, +z up.
    """
    scale = grid_size / HEIGHT
    centre = (grid_size - 1) / 2.0
    return centre + (np.asarray(cols) - WIDTH / 2) * scale, centre - (np.asarray(rows) - HEIGHT / 2) * scale


def world_to_pixel(grid_size: int, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) in pixel units of world points (x, z): the inverse of pixel_to_world."""
    scale = HEIGHT / grid_size
    centre = (grid_size - 1) / 2.0
    return HEIGHT / 2 - (np.asarray(z) - centre) * scale, WIDTH / 2 + (np.asarray(x) - centre) * scale


def _in_shape(kind: int, dx: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """Whether points at (dx, dz) from a cell centre lie on the top-down silhouette of an object."""
    if kind == AGENT:
        return (np.abs(dx) <= 0.5) & (np.abs(dz) <= 0.5)
    if kind == RED_EX:  # the "+" bars turned 45 degrees about y
        dx, dz = (dx + dz) * np.sqrt(0.5), (dx - dz) * np.sqrt(0.5)
    ax, az = np.abs(dx), np.abs(dz)
    return ((ax <= 0.5) & (az <= BAR_HALF_WIDTH)) | ((ax <= BAR_HALF_WIDTH) & (az <= 0.5))


@dataclass(frozen=True)
class _Layout:
    """Everything a render of one grid size needs, built once per grid size.

    A cell's pixels (those whose centre falls in the cell) form a rectangle of R rows and w columns,
    w taking at most two values (floor and ceil of 64 / gridSize). Sprites are stored as that
    rectangle's rows, so painting an object is one contiguous w*3-float write per image row.
    """

    background: np.ndarray  # [H, W, 3] float32: floor, walls, clear colour
    cell_rows: np.ndarray  # [g*g, R] image rows of each cell (padded by repeating the last one)
    cell_col0: np.ndarray  # [g*g] first image column of each cell
    cell_width: np.ndarray  # [g*g] columns of each cell
    widths: tuple[int, ...]  # the distinct cell widths
    sprite_rows: np.ndarray  # [3 types, g*g, R, max width * 3] float32: the cell's rows with the object


def _base_colour(grid_size: int, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Colour of the scene without objects at world points: floor, walls (1 wide, around the grid), clear."""
    g = grid_size
    out = np.empty((*x.shape, 3))
    out[...] = CLEAR
    ring = (x >= -1.5) & (x <= g + 0.5) & (z >= -1.5) & (z <= g + 0.5)
    out[ring] = WALL
    floor = (x >= -0.5) & (x <= g - 0.5) & (z >= -0.5) & (z <= g - 0.5)
    out[floor] = FLOOR
    return out


def _quantise(colours: np.ndarray) -> np.ndarray:
    """float32 multiples of 1/255: the values an 8-bit render texture gives the camera sensor (the same
    floats as Visual3DBall's, uint8 * float32(1/255), so np.rint(obs * 255) recovers the bytes)."""
    return np.multiply(np.rint(colours * 255).astype(np.uint8), _F32(1 / 255), dtype=_F32)


def _samples(grid_size: int, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World (x, z) of the SUPERSAMPLE x SUPERSAMPLE sample points of pixels (rows, cols): [..., s, s]."""
    sub = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    r = np.asarray(rows)[..., None, None] + sub[:, None]
    c = np.asarray(cols)[..., None, None] + sub[None, :]
    return pixel_to_world(grid_size, *np.broadcast_arrays(r, c))


def build_layout(grid_size: int) -> _Layout:
    """Background and per-cell sprites of one grid size (supersampled, see the module docstring)."""
    g = grid_size
    x, z = _samples(g, np.arange(HEIGHT)[:, None], np.arange(WIDTH)[None, :])  # [H, W, s, s]
    background = _base_colour(g, x, z).mean(axis=(2, 3))

    # The cell of each pixel centre, then each cell's rectangle of pixels.
    xc, zc = pixel_to_world(g, np.arange(HEIGHT)[:, None] + 0.5, np.arange(WIDTH)[None, :] + 0.5)
    cx, cz = np.broadcast_arrays(np.floor(xc + 0.5).astype(np.int64), np.floor(zc + 0.5).astype(np.int64))
    rows_of_z = [np.flatnonzero(cz[:, 0] == k) for k in range(g)]
    cols_of_x = [np.flatnonzero(cx[0, :] == k) for k in range(g)]
    n_rows = max(len(r) for r in rows_of_z)
    cells = np.arange(g * g)
    cell_x, cell_z = np.divmod(cells, g)
    padded = [np.concatenate([r, np.full(n_rows - len(r), r[-1])]) for r in rows_of_z]  # pad: repeat the last
    cell_rows = np.stack([padded[k] for k in cell_z])
    cell_col0 = np.array([cols_of_x[k][0] for k in cell_x])
    cell_width = np.array([len(cols_of_x[k]) for k in cell_x])
    max_width = int(cell_width.max())

    # Sprites: per (type, cell) pixel, the mean over its samples of the object's colour where the sample
    # is on the object's silhouette (centred on the cell) and the scene's colour elsewhere.
    cols = np.minimum(cell_col0[:, None] + np.arange(max_width), WIDTH - 1)  # [g*g, Wm] (extra cols unused)
    sx, sz = _samples(g, cell_rows[:, :, None], cols[:, None, :])  # [g*g, R, Wm, s, s]
    under = _base_colour(g, sx, sz)
    dx = sx - cell_x[:, None, None, None, None]
    dz = sz - cell_z[:, None, None, None, None]
    sprites = np.empty((3, g * g, n_rows, max_width, 3))
    for kind in (GREEN_PLUS, RED_EX, AGENT):
        inside = _in_shape(kind, dx, dz)[..., None]
        sprites[kind] = np.where(inside, np.asarray(OBJECT_COLOURS[kind]), under).mean(axis=(3, 4))
    return _Layout(
        background=_quantise(background),
        cell_rows=cell_rows,
        cell_col0=cell_col0,
        cell_width=cell_width,
        widths=tuple(int(w) for w in np.unique(cell_width)),
        sprite_rows=_quantise(sprites.reshape(3, g * g, n_rows, max_width * 3)),
    )


def _paint(out: np.ndarray, layout: _Layout, owners: np.ndarray, cells: np.ndarray, kinds: np.ndarray) -> None:
    """Draw object sprites into images out [m, H, W, 3]: object i of kind kinds[i] on cell cells[i] of
    image owners[i]. Objects of one call must be on distinct cells of their image.

    Per cell width w, out is viewed as overlapping windows [m, H, W - w + 1, 3w] of w pixels, so each
    sprite row is one window: one fancy-indexed assignment writes every row of every object at once.
    """
    s0, s1, s2, s3 = out.strides
    for w in layout.widths:
        if len(layout.widths) > 1:
            keep = layout.cell_width[cells] == w
            o, c, k = owners[keep], cells[keep], kinds[keep]
        else:
            o, c, k = owners, cells, kinds
        # The overlapping view (what as_strided makes, built directly: as_strided costs ~15 us a call).
        windows = np.ndarray((out.shape[0], HEIGHT, WIDTH - w + 1, 3 * w), out.dtype, out, 0, (s0, s1, s2, s3))
        windows[o[:, None], layout.cell_rows[c], layout.cell_col0[c][:, None]] = layout.sprite_rows[k, c, :, : 3 * w]


class GridWorldEnv(NativeEnv):
    """``num_areas`` GridWorld areas, one agent each (agent id = area index), behaviour GridWorld."""

    behaviors = (BEHAVIOR_NAME,)
    parameter_defaults = DEFAULT_PARAMETERS
    max_decisions = MAX_STEP

    def __init__(self, num_areas: int = 9, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(
                ObservationSpec(shape=(HEIGHT, WIDTH, 3), name="CameraSensor"),
                ObservationSpec(shape=(2,), name="GoalSensor", observation_type=ObservationType.GOAL_SIGNAL),
            ),
            action_spec=ActionSpec(discrete_branches=(NUM_ACTIONS,)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        self._layouts: dict[int, _Layout] = {}
        # Per-area state; an area's grid size and goal counts are those of its current episode.
        self._grid = np.zeros(n, np.int64)
        self._pos = np.zeros((n, 2), np.int64)  # agent (x, z)
        self._goal_cells = np.zeros((n, 0), np.int64)  # cell = x * g + z; padding slots hold the agent's
        self._goal_types = np.zeros((n, 0), np.int64)  # GREEN_PLUS / RED_EX, -1 for padding
        self._goal = np.zeros(n, np.int64)  # the episode's goal colour
        self._action = np.zeros(n, np.int64)
        self._eye = np.eye(2, dtype=_F32)

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        self._action = discrete[:, 0].astype(np.int64)

    def _no_actions(self) -> None:
        self._action[:] = 0  # no new actions before the next step: no-op

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        """One decision for every agent: move (walls block), step penalty, goal test."""
        grid = self._grid
        target = self._pos + MOVES[self._action]
        inside = ((target >= 0) & (target < grid[:, None])).all(axis=1)
        self._pos[inside] = target[inside]
        cell = self._pos[:, 0] * grid + self._pos[:, 1]
        on_goal = (self._goal_cells == cell[:, None]) & (self._goal_types >= 0)  # [n, K]
        reached = on_goal.any(axis=1)
        kind = self._goal_types[self._ids, on_goal.argmax(axis=1)]
        reward = np.full(self.n, STEP_REWARD, _F32)
        reward[reached] = np.where(kind[reached] == self._goal[reached], GOAL_REWARD, WRONG_GOAL_REWARD)
        return reward, reached

    def _observe(self) -> list[np.ndarray]:
        return self._restart_observations(np.arange(self.n))

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return [self._render(idx), self._eye[self._goal[idx]]]

    def _mask(self) -> list[np.ndarray]:
        """Moves into the walls are masked (GridAgent.WriteDiscreteActionMask)."""
        grid = self._grid
        x, z = self._pos[:, 0], self._pos[:, 1]
        mask = np.ones((self.n, NUM_ACTIONS), bool)
        mask[:, 1] = z < grid - 1
        mask[:, 2] = z > 0
        mask[:, 3] = x > 0
        mask[:, 4] = x < grid - 1
        return [mask]

    # ------------------------------------------------------------------------------------------
    # state access for tests and tools
    # ------------------------------------------------------------------------------------------

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the per-area state: grid size, agent (x, z), goal cells (x, z) and kinds, goal colour.

        Goal arrays are [n, K]; slots of areas with fewer goals have kind -1.
        """
        grid = self._grid[:, None]
        return {
            "grid_size": self._grid.copy(),
            "agent": self._pos.copy(),
            "goal_xz": np.stack([self._goal_cells // grid, self._goal_cells % grid], axis=-1),
            "goal_kind": self._goal_types.copy(),
            "goal": self._goal.copy(),
            "steps": self._steps.copy(),
        }

    def debug_set_state(
        self,
        areas: np.ndarray | Sequence[int],
        agent: np.ndarray | None = None,
        goals: np.ndarray | None = None,
        goal: np.ndarray | None = None,
    ) -> None:
        """Overwrite some areas' state so tests can build exact situations; the current DecisionSteps
        (images, goal one-hots, masks) are refreshed, rewards and step counts kept.

        agent: (x, z) [m, 2]; goals: (x, z) [m, K, 2] of the area's K goals, in their current order (the
        kinds stay); goal: the goal colour [m] (GREEN_PLUS or RED_EX). Cells must be distinct and on the
        area's grid.
        """
        self._require_reset("debug_set_state")
        idx = np.asarray(areas, np.int64)
        grid = self._grid[idx]
        if agent is not None:
            self._pos[idx] = np.asarray(agent, np.int64)
        if goals is not None:
            xz = np.asarray(goals, np.int64)
            k = xz.shape[1]
            if ((xz < 0) | (xz >= grid[:, None, None])).any():
                raise EnvError("debug_set_state: goals must be on the area's grid")
            self._goal_cells[idx, :k] = xz[..., 0] * grid[:, None] + xz[..., 1]
        if goal is not None:
            self._goal[idx] = np.asarray(goal, np.int64)
        cells = self._pos[idx, 0] * grid + self._pos[idx, 1]
        real = self._goal_types[idx] >= 0
        self._goal_cells[idx] = np.where(real, self._goal_cells[idx], cells[:, None])  # padding under the agent
        on_grid = ((self._pos[idx] >= 0) & (self._pos[idx] < grid[:, None])).all()
        taken = np.where(real, self._goal_cells[idx], -1 - np.arange(real.shape[1]))
        if not on_grid or (taken == cells[:, None]).any() or any(len(set(r)) < len(r) for r in taken.tolist()):
            raise EnvError("debug_set_state: the agent and the goals must be on distinct cells of the grid")
        self._publish(self._observe(), self._decisions[0].reward, self._mask())

    def render(self, areas: np.ndarray | Sequence[int] | None = None) -> np.ndarray:
        """The camera images of the given areas (all by default) in their current state, as the bytes of
        the sensor's 8-bit render texture: uint8 [m, 64, 84, 3] (the observation is these / 255)."""
        idx = np.arange(self.n) if areas is None else np.asarray(areas, np.int64)
        return np.rint(self._render(idx) * 255).astype(np.uint8)

    # ------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------

    def _layout(self, grid_size: int) -> _Layout:
        layout = self._layouts.get(grid_size)
        if layout is None:
            layout = self._layouts[grid_size] = build_layout(grid_size)
        return layout

    def _render(self, idx: np.ndarray) -> np.ndarray:
        """Images of areas idx: background, then every goal's sprite, then every agent's sprite."""
        m = idx.size
        out = np.empty((m, HEIGHT, WIDTH, 3), _F32)
        grids = self._grid[idx]
        sizes = grids[:1] if m and (grids == grids[0]).all() else np.unique(grids)
        for g in sizes.tolist():  # one pass per distinct grid size (almost always one)
            layout = self._layout(g)
            if sizes.size == 1:
                rows, areas = np.arange(m), idx
                out[:] = layout.background
            else:
                rows = np.flatnonzero(grids == g)
                areas = idx[rows]
                out[rows] = layout.background
            kinds = self._goal_types[areas]
            if kinds.shape[1]:
                real = kinds >= 0
                owners = np.broadcast_to(rows[:, None], real.shape)[real]
                _paint(out, layout, owners, self._goal_cells[areas][real], kinds[real])
            pos = self._pos[areas]
            _paint(out, layout, rows, pos[:, 0] * g + pos[:, 1], np.full(rows.size, AGENT))
        return out

    def _reset_areas(self, idx: np.ndarray) -> None:
        """GridArea.AreaReset and GridAgent.OnEpisodeBegin for the given areas, with today's parameters."""
        g = int(self._params["gridSize"])
        plus, ex = int(self._params["numPlusGoals"]), int(self._params["numExGoals"])
        k = plus + ex
        if k > self._goal_cells.shape[1]:  # room for more goals per area
            extra = k - self._goal_cells.shape[1]
            self._goal_cells = np.pad(self._goal_cells, ((0, 0), (0, extra)))
            self._goal_types = np.pad(self._goal_types, ((0, 0), (0, extra)), constant_values=-1)
        m = idx.size
        # Distinct cells: the first k + 1 of a random permutation of the g*g cells, per area.
        cells = np.argsort(self._rng.random((m, g * g)), axis=1)[:, : k + 1]
        goal = self._rng.integers(0, 2, size=m)
        agent = cells[:, k]
        self._grid[idx] = g
        self._pos[idx, 0], self._pos[idx, 1] = np.divmod(agent, g)
        slots = self._goal_cells.shape[1]
        self._goal_cells[idx] = agent[:, None]  # padding slots sit under the agent, drawn over them
        self._goal_cells[idx, :k] = cells[:, :k]
        kinds = np.full(slots, -1, np.int64)
        kinds[:plus], kinds[plus:k] = GREEN_PLUS, RED_EX
        self._goal_types[idx] = kinds
        self._goal[idx] = goal

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        """Whole numbers, a grid of 2..32 cells a side, and a cell for the agent and every goal."""
        for key, value in values.items():
            if value != int(value):
                raise EnvError(f"environment parameter '{key}' must be a whole number (got {value})")
        g, plus, ex = (int(values[k]) for k in ("gridSize", "numPlusGoals", "numExGoals"))
        if not MIN_GRID <= g <= MAX_GRID:
            raise EnvError(f"environment parameter 'gridSize' must be in {MIN_GRID}..{MAX_GRID} (got {g})")
        if plus < 0 or ex < 0:
            raise EnvError(f"numPlusGoals and numExGoals must be >= 0 (got {plus} and {ex})")
        if plus + ex + 1 > g * g:
            raise EnvError(
                f"a {g}x{g} grid has no room for the agent and {plus + ex} goals "
                f"(numPlusGoals {plus} + numExGoals {ex}); raise gridSize or lower the goal counts"
            )

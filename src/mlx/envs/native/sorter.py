"""Sorter: a vectorised port of Unity ML-Agents' Sorter example, the one with a variable-length observation.

One agent per area stands in a circular room whose wall holds up to 20 numbered tiles; it must touch the
tiles shown this episode in ascending order of their numbers. It sees the tiles through a BufferSensor:
one entity per shown tile, as many as there are, so the trainer encodes them with attention
(mlx.trainers.nn.attention). Facts from upstream (Examples/Sorter: SorterAgent.cs, NumberTile.cs,
Prefabs/Area.prefab, Scenes/Sorter.unity, config/ppo/Sorter_curriculum.yaml; shared/reference/more-envs.md
section 3):

* Room: 20 tiles with values 0..19 (shown as 1..20); a tile's block (3.5 m wide, 1.52 m deep) sits at
  radius 20.5 m from the area centre, turned about the vertical axis by slot * 18 degrees, slot 0..19.
* Episode start: max_tiles = the environment parameter ``num_tiles`` (1..20, truncated to an integer as
  C#'s cast does; default 2, the docs' value); n uniform in 1..max_tiles; n distinct tiles drawn
  uniformly, each put in a distinct random slot and shown, the others hidden; the expected tile is the
  smallest shown. The agent goes back to its initial position with zero velocity; its rotation is kept.
* Actions: 3 branches of 3. Branch 0: none / forward / backward; branch 1: none / right / left, which
  replaces branch 0's direction when not none; branch 2: none / turn left / turn right at 200 deg/s.
  Moving is a velocity change of 2 m/s along the direction per physics step (ForceMode.VelocityChange).
* Rewards: -1/MaxStep per physics step; touching the expected tile +1 (it turns visited); touching a
  shown tile that is neither visited nor expected -1 and the episode ends; all shown tiles visited ends
  the episode. Touching a visited tile again does nothing. MaxStep 5000 interrupts the episode.
* Observations (ML-Agents 2.x sorts sensors by name, as its changelog says, so the buffer comes first):
  ``BufferSensor`` [20, 23]: one row per shown tile in ascending value order, from row 0: the value
  one-hot (20), (tile - agent) x and z / 20, visited (1/0); unused rows are zeros (never a real entity:
  its one-hot has a 1). ``VectorSensor_size4`` [4]: agent (x, z) relative to the area / 20, forward (x, z).

Decided here (not found upstream; more-envs.md section 11 item 2): a decision every 5 physics steps of
0.02 s with the action repeated in between (as PushBlock; MaxStep 5000 = 1000 decisions, -0.001 per
decision, the docs' -0.0002 per step); the agent's body is PushBlock's (a 1 m cube seen as a circle of
radius 0.5, drag 4: ``vel *= 1 - drag * dt`` per step, no floor friction), starting at the area centre
facing +z; the room's wall is a circle of radius 21.26 m (the tiles' back faces), so the agent meets
a tile's front or sides and can walk between tiles; a hidden tile has no collider; the entity layout is
the 23-float one (the final docs' text; one upstream variant has 22); the BufferSensor holds 20
entities and the sensor names are ML-Agents' defaults; the scene's 2.5 x gravity has nothing to act on
(no floor friction, no vertical motion); ``num_tiles`` may also be drawn per area by a sampler.

Approximations: tiles are boxes in their own frame and the agent a circle; a contact pushes the agent out
and removes its approaching velocity (no bounce, frictionless walls). Touches are judged at every
physics step, in value order within a step (the expected tile first). An episode ended by a tile ends at
the end of its decision (the terminal observation is the decision's final state; PushBlock's port does
the same), and touches after the end within that decision count for nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, EnvError, ObservationSpec
from mlx.envs.native.arena_env import episode_budget
from mlx.envs.native.base import F32, NativeEnv
from mlx.envs.native.render import FLOOR, VOID, Canvas, tag_colour

BEHAVIOR_NAME = "Sorter"
NUM_TILES = 20  # tiles in the room; values 0..19 (the one-hot's length) and slots 0..19
MAX_ENTITIES = 20  # BufferSensor MaxNumObservables
ENTITY_SIZE = NUM_TILES + 3  # one-hot, relative x and z, visited
DECISION_PERIOD = 5
MAX_STEP = 5000
MAX_DECISIONS, DECISION_PENALTY = episode_budget(MAX_STEP, DECISION_PERIOD)
DT = 0.02
TILE_RADIUS = 20.5  # the tile blocks' centres
TILE_HALF = (1.75, 0.76)  # half extents: along the wall, towards the centre
ROOM_RADIUS = TILE_RADIUS + TILE_HALF[1]  # decided: the wall behind the tiles
AGENT_RADIUS = 0.5
AGENT_DRAG = 4.0
RUN_SPEED = 2.0  # velocity change per physics step (m/s)
TURN_SPEED = math.radians(200.0) * DT  # radians per physics step
TOUCH_DISTANCE = 0.01  # two default contact offsets, as the arena engine
OBS_SCALE = 20.0
DEFAULT_PARAMETERS = {"num_tiles": 2.0}
SLOT_ANGLE = 2.0 * math.pi / NUM_TILES


def tile_frame(slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sin, cos) of the turn of tiles in these slots (slot * 18 degrees, Unity's yaw): a tile's centre is
    20.5 * (sin, cos), its axis along the wall (cos, -sin) and towards the wall (sin, cos)."""
    a = np.asarray(slot, np.float64) * SLOT_ANGLE
    return np.sin(a), np.cos(a)


class SorterEnv(NativeEnv):
    """``num_areas`` Sorter rooms, one agent each (agent id = area index), behaviour ``Sorter``."""

    behaviors = (BEHAVIOR_NAME,)
    parameter_defaults = DEFAULT_PARAMETERS
    sampled_parameters = ("num_tiles",)
    max_decisions = MAX_DECISIONS

    def __init__(self, num_areas: int = 32, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(
                ObservationSpec.entities(MAX_ENTITIES, ENTITY_SIZE, "BufferSensor"),
                ObservationSpec((4,), "VectorSensor_size4"),
            ),
            action_spec=ActionSpec(discrete_branches=(3, 3, 3)),
        )
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        self.pos = np.zeros((n, 2))
        self.vel = np.zeros((n, 2))
        self.heading = np.zeros(n)  # the prefab's agent faces +z; never reset (upstream keeps the rotation)
        self.shown = np.zeros((n, NUM_TILES), bool)  # by tile value
        self.visited = np.zeros((n, NUM_TILES), bool)
        self.slot = np.zeros((n, NUM_TILES), np.int64)  # each tile's slot on the wall (shown tiles only)
        self.order = np.zeros((n, NUM_TILES), np.int64)  # shown values ascending, then the hidden ones
        self.count = np.zeros(n, np.int64)  # tiles shown this episode
        self.expected = np.zeros(n, np.int64)  # index into order of the next tile to touch
        self.tile_sin = np.zeros((n, NUM_TILES))  # the tiles' turns (tile_frame), by value
        self.tile_cos = np.ones((n, NUM_TILES))
        self._move = np.zeros(n, np.int64)  # branch 0
        self._strafe = np.zeros(n, np.int64)  # branch 1
        self._turn = np.zeros(n, np.int64)  # branch 2

    # ---- hooks -------------------------------------------------------------------------------------------
    def _check_parameters(self, values: Mapping[str, float]) -> None:
        value = values.get("num_tiles")
        if value is not None and not 1 <= value < NUM_TILES + 1:
            raise EnvError(f"environment parameter 'num_tiles' must be in 1..{NUM_TILES} (got {value})")

    def _reset_areas(self, idx: np.ndarray) -> None:
        """OnEpisodeBegin for the given areas (see the module docstring)."""
        m = len(idx)
        max_tiles = self._params.draw("num_tiles", idx)
        bad = ~((max_tiles >= 1) & (max_tiles < NUM_TILES + 1))
        if bad.any():
            raise EnvError(f"environment parameter 'num_tiles' must be in 1..{NUM_TILES} (drew {max_tiles[bad][0]})")
        count = self._rng.integers(1, max_tiles.astype(np.int64) + 1)  # uniform in 1..max_tiles
        # n distinct tiles and n distinct slots: the first n of two random permutations per area.
        values = np.argsort(self._rng.random((m, NUM_TILES)), axis=1)
        slots = np.argsort(self._rng.random((m, NUM_TILES)), axis=1)
        rank = np.arange(NUM_TILES)[None, :]
        shown = np.zeros((m, NUM_TILES), bool)
        np.put_along_axis(shown, values, rank < count[:, None], axis=1)
        slot = np.zeros((m, NUM_TILES), np.int64)
        np.put_along_axis(slot, values, slots, axis=1)
        self.shown[idx] = shown
        self.slot[idx] = slot
        self.visited[idx] = False
        self.count[idx] = count
        self.expected[idx] = 0
        self.order[idx] = np.argsort(~shown, axis=1, kind="stable")  # shown values first, ascending
        self.tile_sin[idx], self.tile_cos[idx] = tile_frame(slot)
        self.pos[idx] = 0.0
        self.vel[idx] = 0.0

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        self._move, self._strafe, self._turn = (discrete[:, k].astype(np.int64) for k in range(3))

    def _no_actions(self) -> None:
        self._move, self._strafe, self._turn = (np.zeros(self.n, np.int64) for _ in range(3))

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        reward = np.full(n, DECISION_PENALTY, np.float64)
        ended = np.zeros(n, bool)
        sign = np.array([0.0, 1.0, -1.0])
        fwd, side, turn = sign[self._move], sign[self._strafe], np.array([0.0, -1.0, 1.0])[self._turn]
        rows = np.arange(n)
        for _ in range(DECISION_PERIOD):
            h = self.heading
            forward = np.stack([np.sin(h), np.cos(h)], axis=1)
            right = np.stack([np.cos(h), -np.sin(h)], axis=1)
            # Branch 1 replaces branch 0's direction (SorterAgent.MoveAgent), computed before the turn.
            direction = np.where((side != 0)[:, None], right * side[:, None], forward * fwd[:, None])
            self.vel += RUN_SPEED * direction
            self.heading = h + TURN_SPEED * turn
            self.vel *= max(0.0, 1.0 - AGENT_DRAG * DT)
            self.pos += self.vel * DT
            touching = self._collide()
            # Touches, judged per area: the expected tile first, then any other unvisited shown tile.
            live = ~ended
            target = self.order[rows, np.minimum(self.expected, NUM_TILES - 1)]
            hit = live & touching[rows, target] & ~self.visited[rows, target]
            self.visited[rows[hit], target[hit]] = True
            self.expected += hit
            reward += hit
            done = live & (self.expected >= self.count)
            wrong = live & ~done & (touching & ~self.visited).any(axis=1)
            reward -= wrong
            ended |= done | wrong
        return reward.astype(F32), ended

    def _collide(self) -> np.ndarray:
        """Push the agents out of the shown tiles and inside the wall; which tiles each touches [n, 20].

        Only agents near the wall can meet a tile (no point of a block is closer to the centre than its
        front face), so the tile maths runs for those rows alone. Per tile, in its frame: u along the wall,
        w towards it; components kept apart ([m, 20] arrays), as numpy's reductions over a trailing axis
        of 2 cost more than the arithmetic."""
        touching = np.zeros((self.n, NUM_TILES), bool)
        reach = TILE_RADIUS - TILE_HALF[1] - AGENT_RADIUS - TOUCH_DISTANCE
        near = np.flatnonzero(np.hypot(self.pos[:, 0], self.pos[:, 1]) >= reach)
        if len(near):
            self._tiles(near, touching)
        self._wall()
        return touching

    def _tiles(self, rows: np.ndarray, touching: np.ndarray) -> None:
        sn, cs, shown = self.tile_sin[rows], self.tile_cos[rows], self.shown[rows]
        pos, vel = self.pos[rows], self.vel[rows]
        dx = pos[:, 0:1] - TILE_RADIUS * sn
        dz = pos[:, 1:2] - TILE_RADIUS * cs
        u = dx * cs - dz * sn
        w = dx * sn + dz * cs
        du = u - np.clip(u, -TILE_HALF[0], TILE_HALF[0])
        dw = w - np.clip(w, -TILE_HALF[1], TILE_HALF[1])
        dist = np.hypot(du, dw)
        touching[rows] = shown & (dist < AGENT_RADIUS + TOUCH_DISTANCE)
        inside = dist == 0.0  # centre inside the block: out through the nearer face
        gap_u, gap_w = TILE_HALF[0] - np.abs(u), TILE_HALF[1] - np.abs(w)
        face_u = gap_u < gap_w
        safe = np.where(inside, 1.0, dist)
        nu = np.where(inside, np.where(face_u, np.where(u > 0.0, 1.0, -1.0), 0.0), du / safe)
        nw = np.where(inside, np.where(face_u, 0.0, np.where(w > 0.0, 1.0, -1.0)), dw / safe)
        depth = np.where(inside, AGENT_RADIUS + np.where(face_u, gap_u, gap_w), AGENT_RADIUS - dist)
        depth = np.where(shown & (depth > 0.0), depth, 0.0)
        nx, nz = nu * cs + nw * sn, nw * cs - nu * sn  # away from the tile
        pos[:, 0] += (depth * nx).sum(1)
        pos[:, 1] += (depth * nz).sum(1)
        approach = np.where(depth > 0.0, np.minimum(vel[:, 0:1] * nx + vel[:, 1:2] * nz, 0.0), 0.0)
        vel[:, 0] -= (approach * nx).sum(1)
        vel[:, 1] -= (approach * nz).sum(1)
        self.pos[rows], self.vel[rows] = pos, vel

    def _wall(self) -> None:
        """The round wall: agents beyond it are put back on it, their outward velocity removed."""
        r = np.hypot(self.pos[:, 0], self.pos[:, 1])
        out = r > ROOM_RADIUS - AGENT_RADIUS
        if out.any():
            radial = self.pos[out] / r[out, None]
            self.pos[out] = radial * (ROOM_RADIUS - AGENT_RADIUS)
            self.vel[out] -= np.maximum((self.vel[out] * radial).sum(1), 0.0)[:, None] * radial

    def _observe(self) -> list[np.ndarray]:
        return self._observations(np.arange(self.n))

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return self._observations(idx)

    def _observations(self, idx: np.ndarray) -> list[np.ndarray]:
        """The buffer [m, 20, 23] (shown tiles in ascending value order, then zero rows) and the vector [m, 4].

        Only the present entities are written (one fancy-indexed write per column over all of them), so the
        cost follows the tiles shown, not the buffer's capacity."""
        m = len(idx)
        buffer = np.zeros((m, MAX_ENTITIES, ENTITY_SIZE), F32)
        count = self.count[idx]
        k = int(count.max()) if m else 0
        row_of, slot = np.nonzero(np.arange(k)[None, :] < count[:, None])  # every present (area row, entity)
        area = idx[row_of]
        value = self.order[area, slot]
        buffer[row_of, slot, value] = 1.0
        buffer[row_of, slot, NUM_TILES] = (TILE_RADIUS * self.tile_sin[area, value] - self.pos[area, 0]) / OBS_SCALE
        buffer[row_of, slot, NUM_TILES + 1] = (TILE_RADIUS * self.tile_cos[area, value] - self.pos[area, 1]) / OBS_SCALE
        buffer[row_of, slot, NUM_TILES + 2] = self.visited[area, value]
        h = self.heading[idx]
        vector = np.stack([self.pos[idx, 0] / OBS_SCALE, self.pos[idx, 1] / OBS_SCALE, np.sin(h), np.cos(h)], axis=1)
        return [buffer, vector.astype(F32)]

    def render(self, areas: Sequence[int] | np.ndarray | None = None, pixels: int = 320) -> np.ndarray:
        """Top-down pictures uint8 [m, H, W, 3] (+x right, +z up): the round floor, the shown tiles as discs
        at their places (visited green, the expected one gold, the others orange), the agent in blue with a
        dot toward its heading."""
        idx = np.arange(self.n) if areas is None else np.arange(self.n)[np.asarray(areas)]
        edge = ROOM_RADIUS + 1.0
        canvas = Canvas((-edge, -edge, edge, edge), pixels)
        out = canvas.blank(len(idx), VOID)
        canvas.fill(out, 0.0, 0.0, 0.0, 0.0, FLOOR, radius=ROOM_RADIUS)
        expected = self.order[idx, np.minimum(self.expected[idx], NUM_TILES - 1)]
        colours = {k: np.array(tag_colour(k), np.uint8) for k in ("goal", "key", "block")}
        for value in range(NUM_TILES):  # 20 paints, each over every area at once
            shown = self.shown[idx, value]
            colour = np.where(
                self.visited[idx, value][:, None],
                colours["goal"],
                np.where((expected == value)[:, None], colours["key"], colours["block"]),
            )
            x, z = TILE_RADIUS * self.tile_sin[idx, value], TILE_RADIUS * self.tile_cos[idx, value]
            canvas.fill(out, x, z, 0.0, 0.0, colour, radius=TILE_HALF[0], present=shown)
        px, pz, h = self.pos[idx, 0], self.pos[idx, 1], self.heading[idx]
        canvas.fill(out, px, pz, 0.0, 0.0, tag_colour("agent"), radius=AGENT_RADIUS, min_pixels=2.0)
        canvas.heading(out, px, pz, np.sin(h), np.cos(h), AGENT_RADIUS)
        return out

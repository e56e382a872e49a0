"""Tennis: a vectorised port of Unity ML-Agents' Tennis (two rackets, one ball, self-play; removed upstream in 2021).

Facts from the last upstream version (Project/Assets/ML-Agents/Examples/Tennis: Scripts/TennisAgent.cs
@950d3c55, Scripts/HitWall.cs @da06f648, Scripts/TennisArea.cs @a22b62f7, Prefabs/TennisArea.prefab
@078e5556, Materials/Physic_Materials; the facts sheet §5.5), simulated in the vertical x-y plane (upstream
freezes every body's z), all areas at once with numpy.

Court (area-relative metres; the facts sheet marks the geometry NOT FOUND, it is read here from the
prefab's colliders: ``Invisible Walls`` at y -4 holding floorA/floorB/wallA/wallB, ``Scenery`` at y -7.5,
scale 0.01, holding the net):

* floors: the top faces of floorA (x < 0, player A's) and floorB (x > 0, player B's) at y = -6.9;
* net: a box x in [-0.061, 0.061], y up to -6.43 (0.47 m above the floors: a low net);
* back walls: wallA / wallB with inner faces at x = -11.88 / +11.88, 80 m tall (nothing flies over them:
  going "out" means hitting the back wall); no ceiling.
* ball: a sphere of diameter ``scale`` (environment parameter, default 0.5, so radius 0.25), mass 0.75;
  its material has bounciness 1 combined by maximum and friction 0, so every bounce (floors, walls, net,
  rackets) is elastic and frictionless. Its velocity components are clamped to [-9, 9] before every
  physics step (TennisArea.FixedUpdate), so it falls at 9 m/s at most and an elastic floor bounce takes it
  about 4.1 m up.
* rackets: the agent's box collider (0.988 x 0.127 x 2.31 m after its 0.005 scale) seen edge-on, a
  0.988 x 0.127 rectangle, vertical at angle action 0. Gravity 9.81 (the project's).

Agents: 2 per area, agent id = 2 * area + k, k = 0 player A (team 0, left, x < 0), k = 1 player B (team 1,
right; the prefab's TeamId values, which the facts sheet only infers); behaviour ``Tennis``, no groups
(group id None). ``invert`` is +1 for A and -1 for B: every x-related
observation and the move action are multiplied by it, so each player sees itself on the negative side
with the net at x = 0 on its right, and the same policy plays both sides (upstream's mirroring).

Decisions: every 5 physics steps of 0.02 s (the prefab's DecisionRequester: DecisionPeriod 5,
TakeActionsBetweenDecisions true), the last action re-applied on each of them (its x velocity and tilt are
then the same on all 5, so they are set once per decision; the jump test runs on each).

Actions (3 continuous, clipped to [-1, 1]; each physics step, before physics, as OnActionReceived):

* a0 move: x velocity = 30 * a0 * invert (towards the net for a0 > 0), y velocity kept;
* a1 jump: if a1 > 0.5 and the racket's y is below -1.5, its y velocity becomes 7 (the racket rests at
  y -6.4 to -6.6 depending on its tilt, so it can jump again until it is above -1.5: holding a1 makes
  it rise at 7 m/s and hover between -1.5 and about +1);
* a2 racket angle: the racket is tilted 55 degrees * a2 from vertical, its top towards the net for
  a2 > 0 (set at once, as upstream sets the rotation);
* then the racket's x is clamped to stay 1 m from the net (A: x <= -1, B: x >= 1), as upstream's
  teleport, before the physics step moves it (so it may end a step up to 0.6 m nearer; it never
  reaches the net). The rackets fall under gravity onto their floor and stop at the back walls.

Observations (9 floats, stacked 3 = 27, oldest first, the stack cleared at each point start):
invert * own x, own y, invert * own x velocity, own y velocity, invert * ball x, ball y, invert * ball
x velocity, ball y velocity, racket angle term. Deviation: upstream's 9th float is
``invert * transform.rotation.z``, the z component of the quaternion Euler(0, -180, angle), which is
identically 0 (the 180 degree y turn moves the angle into the quaternion's x and y); here it is the
racket's tilt in radians (55 degrees * a2 in the player's own frame), so it says something. Positions and
velocities are in metres and m/s, not normalised (the tuned config has ``normalize: true``, as upstream's).

Point rules (HitWall.OnCollisionEnter; ``last hit`` is the player who touched the ball last, nobody at the
serve; ``last floor`` is Service at the serve, Unset after a hit, else the floor of the last bounce; the
``net`` flag is set once the ball has bounced after a hit or been hit after a bounce). The ball is
dropped at each point start from y = 6, at rest, at x = +-U(6, 8) (either side with probability 1/2):
the player on that side must hit it before it lands. A player loses the point when:

* the ball lands on its floor after its own hit, at the serve (nobody hit it), or a second time in a row
  (double bounce); otherwise the bounce is recorded (``last floor``) and sets the net flag;
* it hits the ball twice in a row (two separate contacts of its racket, no other touch in between);
* the ball hits the net while the net flag is down after its hit (after the flag is up the net is only
  a wall the ball bounces off: upstream's quirk, kept);
* the ball hits its back wall after its own hit or after bouncing on its floor (the other's winner); the
  ball hitting the *other* player's back wall without a bounce there is that player's point (a long
  shot loses).

Rewards and episodes: each point is one episode for both players: the winner gets +1 and the loser -1
(individual rewards, SetReward), both end (done, not interrupted) and the area starts the next point at
the next decision. Events are taken in this order within a physics step: racket contacts (A, then B),
net, walls, floor; the first that decides the point wins and the area stands still for the rest of that
decision (its terminal observation is the moment the point was decided). Upstream has no time limit
(MaxStep 0); here a point is interrupted after ``MAX_DECISIONS`` = 300 decisions (30 s: a rally of about
15 shots): both players end with reward 0, ``interrupted``.

Physics (simplified from PhysX; each physics step): actions, the ball's velocity clamp, gravity,
semi-implicit Euler moves, rackets kept above their floor and inside their back wall, then the ball's
contacts resolved in order rackets, net, walls, floor: each pushes the ball out along the contact normal
and reflects its velocity relative to the surface (restitution 1). Deviations: rackets are not pushed by
the ball (upstream's rackets weigh 4 kg against the ball's 0.75 and their x velocity is overwritten every
step anyway); PhysX's bounce threshold (2 m/s) and contact offsets are not modelled; a racket contact is a
new hit only if that racket did not touch the ball in the previous physics step (OnCollisionEnter).
Environment parameter ``angle`` (upstream's racket angle before the first action, overwritten by it) is
not kept; ``scale`` is drawn per area at each point start (upstream's MatchReset resets the ball to 0.5
after reading it, so upstream's parameter has no effect).

Scores (``score_points`` below: player A's policy against player B's over 256 courts for 1000 decisions,
seed 0, points counted from TerminalSteps rewards; measured when this env was written, checked by
tests/test_tennis.py at 128 courts):

* ``scripted_actions`` (hand-written, on its own observations: stand under where the ball comes down,
  racket tilted back, jump into it so that it leaves at the speed limit, up and over the net) against
  uniformly random actions wins 0.981 of the points as A and 0.979 as B (``SCRIPTED_WIN`` 0.98; 29.5
  decisions per point, ``SCRIPTED_LENGTH``): it wins about 99% of the points served on its side and
  random loses about 98% of its own. This is the bar for a trained policy (>= 0.95 against random).
* random against random: 0.504 / 0.496 (``RANDOM_WIN`` 0.5; 19.5 decisions per point,
  ``RANDOM_LENGTH``): 79% of the points end without any hit (the ball lands on the side it was dropped
  over: a random racket is rarely under it) and the player on that side loses 98% of them.
* scripted against scripted: 0.49 / 0.51, 59 decisions per point (long rallies; some reach the
  ``MAX_DECISIONS`` limit).
* The serve needs precision in x: the racket moves at 30 m/s, so an action's noise of 0.1 moves it
  0.3 m in a decision. Gaussian noise (std 0.1 / 0.3 on every action) on the scripted player lowers
  its win rate against random to 0.93 / 0.65: a trained Gaussian policy is best scored on its mean
  (deterministic) actions.
* Learnability (a run of ``python -m mlx env=tennis trainer=ppo`` with the tuned file's self_play block,
  seed 0): with upstream's buffer_size 20480 / batch_size 2048 / time_horizon 1000 the policy after 400k
  steps wins only 0.53 against random (about 20 updates); with buffer_size 4096, batch_size 512,
  time_horizon 64, after 500k steps (90 s) its deterministic actions win 0.987 of the points against
  random as A and as B (0.66 sampling from its policy, whose std is still about 1); seed 1 after 300k
  steps: 0.95.

Throughput with random actions (``benchmarks/env_throughput.py``'s ``measure``, agent steps per second,
2-core dev machine under load 4.5): 8,100 at 1 court, 136,000 at 32 (the conf's num_areas), 223,000 at
64, 516,000 at 256. Each decision is 5 vectorised physics steps; the racket and net contacts are
computed only where the ball is within reach of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import (
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    ObservationSpec,
    TerminalSteps,
)
from mlx.envs.native.base import F32, FrameStack, NativeEnv
from mlx.envs.native.render import FLOOR, VOID, Canvas

BEHAVIOR = "Tennis"
AGENTS = 2  # per area: k = 0 player A (team 0), k = 1 player B (team 1)
TEAMS = (0, 1)
INVERT = np.array([1.0, -1.0], F32)  # A plays on x < 0, B on x > 0
FRAME, STACKS = 9, 3
MAX_DECISIONS = 300  # mlx's: upstream has no limit
DECISION_PERIOD = 5  # physics steps per decision
DT = 0.02
GRAVITY = 9.81

# Court (area-relative metres, from TennisArea.prefab's colliders).
FLOOR_Y = -6.9
NET_HALF_WIDTH, NET_TOP, NET_BOTTOM = 0.061, -6.43, -7.5
WALL_X = 11.88
BALL_START_Y = 6.0
SERVE_LOW, SERVE_HIGH = 6.0, 8.0  # the ball's and the rackets' start distance from the net
BALL_SPEED_LIMIT = 9.0

# Rackets (TennisAgent.cs, the agent's collider).
RACKET_HALF_LENGTH, RACKET_HALF_THICKNESS = 0.494, 0.0634
RACKET_START_Y = -1.5
MOVE_SPEED, JUMP_SPEED, JUMP_BELOW = 30.0, 7.0, -1.5
RACKET_REACH = float(np.hypot(RACKET_HALF_LENGTH, RACKET_HALF_THICKNESS))  # centre to corner
MAX_TILT = np.deg2rad(55.0)
NET_GAP = 1.0  # a racket's x stays this far from the net

# Rule state codes.
NOBODY = -1  # last hit at the serve
UNSET, SERVICE = -1, 2  # last floor: 0 / 1 the floor of player A / B

# The scripted player's settings (scripted_actions).
SCRIPTED_MEET_Y, SCRIPTED_OFFSET, SCRIPTED_HOME, SCRIPTED_REACH = -5.0, 0.2, -8.0, 2.5

# Scores measured when this env was written (score_points; tests/test_tennis.py).
SCRIPTED_WIN = 0.98
RANDOM_WIN = 0.5
SCRIPTED_LENGTH = 29.5
RANDOM_LENGTH = 19.5

BALL_COLOUR = (225, 240, 60)
PLAYER_COLOURS = ((45, 105, 235), (235, 90, 45))  # A blue, B orange
NET_COLOUR, WALL_COLOUR = (235, 235, 235), (150, 150, 150)


def _box_contact(
    px: np.ndarray, py: np.ndarray, cx: np.ndarray, cy: np.ndarray, ux: np.ndarray, uy: np.ndarray,
    half_u: float | np.ndarray, half_v: float | np.ndarray, radius: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """A circle (centre p, radius) against boxes centred at c with unit axis u (half extent half_u) and
    the perpendicular axis v = (-uy, ux) (half extent half_v). Returns (touching, normal x, normal y,
    depth): the normal points from the box to the circle, depth is how far the circle must move along it.
    A centre inside the box leaves by the nearer face."""
    dx, dy = px - cx, py - cy
    a = dx * ux + dy * uy
    b = dy * ux - dx * uy
    ca, cb = np.minimum(np.maximum(a, -half_u), half_u), np.minimum(np.maximum(b, -half_v), half_v)
    ea, eb = a - ca, b - cb
    dist = np.sqrt(ea * ea + eb * eb)
    inside = dist <= 1e-9
    # Inside: out through the face with the least penetration.
    out_a, out_b = half_u - np.abs(a), half_v - np.abs(b)
    by_a = out_a < out_b
    na = np.where(inside, np.where(by_a, np.sign(a) + (a == 0), 0.0), ea / np.maximum(dist, 1e-9))
    nb = np.where(inside, np.where(by_a, 0.0, np.sign(b) + (b == 0)), eb / np.maximum(dist, 1e-9))
    depth = np.where(inside, radius + np.minimum(out_a, out_b), radius - dist)
    nx, ny = na * ux - nb * uy, na * uy + nb * ux
    return depth > 0, nx, ny, depth


class TennisEnv(NativeEnv):
    """Two rackets per area hit a ball over a net; each point is one episode (+1 winner, -1 loser)."""

    behaviors = (BEHAVIOR,)
    agents_per_area = AGENTS
    parameter_defaults = {"scale": 0.5}  # the ball's diameter
    sampled_parameters = ("scale",)
    max_decisions = MAX_DECISIONS

    def __init__(self, num_areas: int = 32, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec((ObservationSpec((FRAME * STACKS,), "StackingSensor_size3_VectorSensor_size9"),),
                            ActionSpec(continuous_size=3))  # fmt: skip
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        self.ball = np.zeros((n, 4), np.float64)  # x, y, vx, vy
        self.radius = np.full(n, 0.25)
        self.racket = np.zeros((n, AGENTS, 4), np.float64)  # x, y, vx, vy
        self.tilt = np.zeros((n, AGENTS))  # radians from vertical, + towards the net (own frame)
        self.action = np.zeros((n, AGENTS, 3))
        self.last_hit = np.full(n, NOBODY, np.int64)
        self.last_floor = np.full(n, SERVICE, np.int64)
        self.net_flag = np.zeros(n, bool)
        self.touching = np.zeros((n, AGENTS), bool)
        self.points = np.zeros((n, AGENTS), np.int64)  # points won per player since construction
        self.stack = FrameStack(n * AGENTS, FRAME, STACKS)
        self.agent_ids = np.arange(n * AGENTS, dtype=np.int32)
        self.agent_ids.flags.writeable = False
        self.team_ids = np.tile(np.array(TEAMS, np.int32), n)
        self.team_ids.flags.writeable = False
        self._rows[0] = np.arange(n * AGENTS)  # every player decides at every step (set_actions' row count)
        self._invert = INVERT.astype(np.float64)
        self._empty_terminal = TerminalSteps(
            [np.zeros((0, FRAME * STACKS), F32)], np.zeros(0, F32), np.zeros(0, np.int32), np.zeros(0, bool),
            team_id=np.zeros(0, np.int32),
        )  # fmt: skip

    def teams(self, behavior_name: str) -> tuple[int, ...]:
        super().teams(behavior_name)  # refuses unknown names
        return TEAMS

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        if not 0.05 <= values["scale"] <= 2.0:
            raise EnvError(
                f"environment parameter 'scale' (the ball's diameter) must be in [0.05, 2] (got {values['scale']})"
            )

    # ---- simulation ---------------------------------------------------------------------------------

    def _reset_areas(self, idx: np.ndarray) -> None:
        """MatchReset and both agents' OnEpisodeBegin: the ball dropped over a random side, the rackets
        at U(6, 8) from the net on their sides, 1.5 m up (they fall to the floor), at rest."""
        m = len(idx)
        rng = self._rng
        side = np.where(rng.integers(0, 2, m) == 0, -1.0, 1.0)
        self.ball[idx] = 0.0
        self.ball[idx, 0] = side * rng.uniform(SERVE_LOW, SERVE_HIGH, m)
        self.ball[idx, 1] = BALL_START_Y
        self.radius[idx] = 0.5 * self._params.draw("scale", idx)
        self.racket[idx] = 0.0
        self.racket[idx, :, 0] = -self._invert * rng.uniform(SERVE_LOW, SERVE_HIGH, (m, AGENTS))
        self.racket[idx, :, 1] = RACKET_START_Y
        self.tilt[idx] = 0.0
        self.last_hit[idx] = NOBODY
        self.last_floor[idx] = SERVICE
        self.net_flag[idx] = False
        self.touching[idx] = False

    def _features(self) -> np.ndarray:
        """[n * 2, 9] every player's newest frame, in its own (mirrored) frame."""
        inv = self._invert
        r, b = self.racket, self.ball
        f = np.empty((self.n, AGENTS, FRAME), F32)
        f[:, :, 0] = r[:, :, 0] * inv
        f[:, :, 1] = r[:, :, 1]
        f[:, :, 2] = r[:, :, 2] * inv
        f[:, :, 3] = r[:, :, 3]
        f[:, :, 4] = b[:, None, 0] * inv
        f[:, :, 5] = b[:, None, 1]
        f[:, :, 6] = b[:, None, 2] * inv
        f[:, :, 7] = b[:, None, 3]
        f[:, :, 8] = self.tilt
        return f.reshape(self.n * AGENTS, FRAME)

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        np.clip(continuous, -1.0, 1.0, out=self.action.reshape(-1, 3))

    def _no_actions(self) -> None:
        self.action.fill(0.0)

    def _physics_step(self, active: np.ndarray | None, jump: np.ndarray, shape: tuple[np.ndarray, ...]) -> np.ndarray:
        """One physics step of the areas still playing (``active`` [n]; None: all of them), the rackets'
        x velocities and tilts already set from the actions (``_decide``); ``jump`` [n, 2] the players
        asking to jump, ``shape`` the rackets' (half height, half width, axis x, axis y) [n, 2] each.
        Returns each area's point winner (0 A, 1 B, -1 none yet)."""
        inv = self._invert
        r, b, radius = self.racket, self.ball, self.radius
        rx, ry, rvx, rvy = r[:, :, 0], r[:, :, 1], r[:, :, 2], r[:, :, 3]
        bx, by, bvx, bvy = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
        half_h, half_w, ux, uy = shape
        if active is None:
            dt: np.ndarray | float = DT
            rdt: np.ndarray | float = DT
        else:
            dt = np.where(active, DT, 0.0)
            rdt = dt[:, None]
            jump = jump & active[:, None]
        # OnActionReceived, both players: jump, then stay 1 m from the net.
        np.copyto(rvy, JUMP_SPEED, where=jump & (ry < JUMP_BELOW))
        rx[:] = np.minimum(rx * inv, -NET_GAP) * inv
        # TennisArea.FixedUpdate: the ball's speed limit.
        np.minimum(b[:, 2:], BALL_SPEED_LIMIT, out=b[:, 2:])
        np.maximum(b[:, 2:], -BALL_SPEED_LIMIT, out=b[:, 2:])
        # Gravity and moves.
        bvy -= GRAVITY * dt
        bx += bvx * dt
        by += bvy * dt
        rvy -= GRAVITY * rdt
        rx += rvx * rdt
        ry += rvy * rdt
        # Rackets: on their floor, inside their back wall.
        low = FLOOR_Y + half_h
        grounded = ry < low
        if grounded.any():
            np.copyto(ry, low, where=grounded)
            np.copyto(rvy, 0.0, where=grounded & (rvy < 0))
        rx[:] = np.maximum(rx * inv, -WALL_X + half_w) * inv
        # The ball against both rackets (only where it is within reach of one).
        dx, dy = bx[:, None] - rx, by[:, None] - ry
        reach = RACKET_REACH + radius[:, None]
        near = dx * dx + dy * dy < reach * reach
        if active is not None:
            near &= active[:, None]
        if near.any():
            touch, nx, ny, depth = _box_contact(
                bx[:, None], by[:, None], rx, ry, ux, uy, RACKET_HALF_LENGTH, RACKET_HALF_THICKNESS, radius[:, None]
            )
            touch &= near
            for k in range(AGENTS):  # two bodies: the ball leaves A's racket before it meets B's
                t = touch[:, k]
                if t.any():
                    self._bounce(t, nx[:, k], ny[:, k], depth[:, k], rvx[:, k], rvy[:, k])
        else:
            touch = near
        hits = touch & ~self.touching
        self.touching = touch
        # The net: an axis-aligned box (only where the ball is beside it and low enough).
        net = (np.abs(bx) < NET_HALF_WIDTH + radius) & (by - radius < NET_TOP)
        if active is not None:
            net &= active
        if net.any():
            half_net = 0.5 * (NET_TOP - NET_BOTTOM)
            touch_net, nx, ny, depth = _box_contact(
                bx, by, 0.0, NET_BOTTOM + half_net, 0.0, 1.0, half_net, NET_HALF_WIDTH, radius
            )
            net &= touch_net
            self._bounce(net, nx, ny, depth, 0.0, 0.0)
        # Back walls and floor.
        wall = np.abs(bx) + radius > WALL_X
        if active is not None:
            wall &= active
        if wall.any():
            side = np.sign(bx)
            np.copyto(bx, side * (WALL_X - radius), where=wall)
            np.copyto(bvx, -side * np.abs(bvx), where=wall)
        floor = by - radius < FLOOR_Y
        if active is not None:
            floor &= active
        if floor.any():
            np.copyto(by, FLOOR_Y + radius, where=floor)
            np.copyto(bvy, np.abs(bvy), where=floor)
        return self._rules(hits, net, wall, floor)

    def _bounce(self, where: np.ndarray, nx: np.ndarray, ny: np.ndarray, depth: np.ndarray,
                sx: np.ndarray | float, sy: np.ndarray | float) -> None:  # fmt: skip
        """Elastic, frictionless bounce of the ball off a surface moving at (sx, sy) where ``where``:
        pushed out along the normal, the approaching part of its relative velocity reversed."""
        b = self.ball
        b[:, 0] += np.where(where, nx * depth, 0.0)
        b[:, 1] += np.where(where, ny * depth, 0.0)
        approach = (b[:, 2] - sx) * nx + (b[:, 3] - sy) * ny
        kick = np.where(where & (approach < 0), -2.0 * approach, 0.0)
        b[:, 2] += kick * nx
        b[:, 3] += kick * ny

    def _rules(self, hits: np.ndarray, net: np.ndarray, wall: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """HitWall's point rules on this physics step's contacts, in a fixed order; returns the winners."""
        winner = np.full(self.n, -1, np.int64)
        last_hit, last_floor = self.last_hit, self.last_floor
        for k in range(AGENTS):
            e = hits[:, k]
            if not e.any():
                continue
            e = e & (winner < 0)
            double = e & (last_hit == k)
            winner[double] = 1 - k
            ok = e & ~double
            self.net_flag |= ok & (last_floor != SERVICE)
            last_hit[ok] = k
            last_floor[ok] = UNSET
        if net.any():
            e = net & (winner < 0) & ~self.net_flag & (last_hit != NOBODY)
            winner[e] = 1 - last_hit[e]
        side = (self.ball[:, 0] > 0).astype(np.int64)  # whose half: 0 A, 1 B
        if wall.any():
            e = wall & (winner < 0)
            own = (last_hit == side) | (last_floor == side)
            winner[e] = np.where(own, 1 - side, side)[e]
        if floor.any():
            e = floor & (winner < 0)
            lose = e & ((last_hit == side) | (last_floor == side) | (last_floor == SERVICE))
            winner[lose] = 1 - side[lose]
            ok = e & ~lose
            last_floor[ok] = side[ok]
            self.net_flag |= ok
        return winner

    def _decide(self) -> tuple[np.ndarray, np.ndarray]:
        """One decision: DECISION_PERIOD physics steps, the action re-applied on each (its x velocity and
        tilt are the same on all of them, so they are set once). Returns (reward [n, 2], point decided [n])."""
        a = self.action
        self.racket[:, :, 2] = MOVE_SPEED * a[:, :, 0] * self._invert
        self.tilt = MAX_TILT * a[:, :, 2]
        sin, cos = np.sin(self.tilt), np.cos(self.tilt)
        shape = (
            RACKET_HALF_LENGTH * cos + RACKET_HALF_THICKNESS * sin,  # half height
            RACKET_HALF_LENGTH * sin + RACKET_HALF_THICKNESS * cos,  # half width
            self._invert * sin,  # the long axis, x
            cos,  # and y
        )
        jump = a[:, :, 1] > 0.5
        winner = np.full(self.n, -1, np.int64)
        active = None
        for _ in range(DECISION_PERIOD):
            won = self._physics_step(active, jump, shape)
            winner = won if active is None else np.where(active, won, winner)
            if (winner >= 0).any():
                active = winner < 0
        decided = winner >= 0
        reward = np.zeros((self.n, AGENTS), F32)
        if decided.any():
            k = np.arange(AGENTS)
            reward[decided] = np.where(k[None, :] == winner[decided, None], F32(1.0), F32(-1.0))
            np.add.at(self.points, (np.flatnonzero(decided), winner[decided]), 1)
        return reward, decided

    # ---- the env API (two agents per area, both always deciding) -------------------------------------

    def reset(self) -> None:
        """New points in every area; every player then decides, with reward 0."""
        every = np.arange(self.n)
        self._begin(every)
        self.stack.restart(np.arange(self.n * AGENTS), self._features())
        self._no_actions()
        self._started = True
        self._terminals[0] = self._empty_terminal
        self._publish_all(np.zeros(self.n * AGENTS, F32))

    def step(self) -> None:
        self._require_reset("step")
        reward, decided = self._decide()
        steps = self._steps
        steps += 1
        obs = self.stack.push(self._features())
        ended = decided | (steps >= self.max_decisions)
        reward = reward.reshape(-1)
        if ended.any():
            areas = np.flatnonzero(ended)
            rows = (areas[:, None] * AGENTS + np.arange(AGENTS)).reshape(-1)
            interrupted = np.repeat(~decided[areas], AGENTS)
            self._terminals[0] = TerminalSteps(
                [obs[rows].copy()], reward[rows], self.agent_ids[rows], interrupted, team_id=self.team_ids[rows]
            )
            self._begin(areas)
            self.stack.restart(rows, self._features()[rows])
            reward = reward.copy()
            reward[rows] = 0.0
        else:
            self._terminals[0] = self._empty_terminal
        self._no_actions()  # until set_actions, rackets stand still, vertical, no jump
        self._publish_all(reward)

    def _publish_all(self, reward: np.ndarray) -> None:
        decision = DecisionSteps([self.stack.data.copy()], reward, self.agent_ids, team_id=self.team_ids)
        if self._decisions:
            self._decisions[0] = decision
        else:
            self._decisions.append(decision)

    # ---- pictures ------------------------------------------------------------------------------------

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Side views [m, 182, 320, 3] of the court (x -12.5..12.5, y -7.6..6.6): floors, back walls, the
        net, both rackets (A blue on the left, B orange; drawn as a row of discs along the tilted
        racket) and the ball."""
        pick = np.arange(self.n) if areas is None else np.asarray(areas)
        canvas = Canvas((-12.5, -7.6, 12.5, 6.6), pixels=320)
        out = canvas.blank(len(pick), VOID)
        canvas.fill(out, 0.0, -7.25, WALL_X, FLOOR_Y + 7.25, FLOOR)
        for side in (-1.0, 1.0):
            canvas.fill(out, side * (WALL_X + 0.25), 0.0, 0.25, 7.6, WALL_COLOUR)
        half_net = 0.5 * (NET_TOP - FLOOR_Y)
        canvas.fill(out, 0.0, FLOOR_Y + half_net, NET_HALF_WIDTH, half_net, NET_COLOUR, min_pixels=0.6)
        r, tilt = self.racket[pick], self.tilt[pick]
        for k in range(AGENTS):
            ux, uy = self._invert[k] * np.sin(tilt[:, k]), np.cos(tilt[:, k])
            for s in np.linspace(-1.0, 1.0, 9):
                d = s * (RACKET_HALF_LENGTH - RACKET_HALF_THICKNESS)
                canvas.fill(out, r[:, k, 0] + d * ux, r[:, k, 1] + d * uy, 0.0, 0.0, PLAYER_COLOURS[k],
                            radius=RACKET_HALF_THICKNESS, min_pixels=1.0)  # fmt: skip
        b = self.ball[pick]
        canvas.fill(out, b[:, 0], b[:, 1], 0.0, 0.0, BALL_COLOUR, radius=self.radius[pick], min_pixels=1.5)
        return out


# ---- players and scoring (tests, benchmarks, the lead's "policy A against policy B") ----------------------


def random_actions(decision: DecisionSteps, rng: np.random.Generator) -> np.ndarray:
    """Uniform random actions in [-1, 1] for every deciding player [m, 3]."""
    return rng.uniform(-1.0, 1.0, (len(decision), 3)).astype(F32)


def scripted_actions(decision: DecisionSteps, rng: np.random.Generator | None = None) -> np.ndarray:
    """A hand-written player on its own (mirrored) newest observation: it predicts where the ball will
    come down to 1.9 m above the floor, stands SCRIPTED_OFFSET behind that point (away from the net; back
    at SCRIPTED_HOME while the ball is bound for the other half), keeps the racket tilted fully back
    (its face turned up and towards the net) and jumps into the ball once it falls within
    SCRIPTED_REACH of the racket: the racket rising at 7 m/s meets the ball falling at up to 9 m/s, and
    the ball leaves at about the speed limit, (9, 9) m/s, up and over the net. ``rng`` is unused."""
    f = decision.obs[0][:, -FRAME:]
    x, y = f[:, 0], f[:, 1]
    bx, by, bvx, bvy = f[:, 4], f[:, 5], f[:, 6], f[:, 7]
    drop = np.maximum(by - SCRIPTED_MEET_Y, 0.0)
    t = (bvy + np.sqrt(bvy * bvy + 2.0 * GRAVITY * drop)) / GRAVITY  # until the ball is down there
    land = bx + bvx * t
    land = np.where(land < -WALL_X, -2.0 * WALL_X - land, land)  # off the back wall
    mine = land < 0
    target = np.where(mine, np.minimum(land - SCRIPTED_OFFSET, -NET_GAP), SCRIPTED_HOME)
    move = np.clip((target - x) / (MOVE_SPEED * DT * DECISION_PERIOD), -1.0, 1.0)
    jump = np.where(mine & (bvy < 0) & (by - y < SCRIPTED_REACH), 1.0, -1.0)
    return np.stack([move, jump, np.full(len(f), -1.0)], axis=1).astype(F32)


def score_points(
    players: tuple, areas: int = 256, decisions: int = 2000, seed: int = 0
) -> tuple[np.ndarray, int, float]:
    """Play ``players[0]`` as A (team 0) against ``players[1]`` as B (team 1): each a function
    (DecisionSteps of its rows, rng) -> actions [m, 3]. Returns (points won [2] by team, points decided,
    mean decisions per point over every ended point, interruptions included). Points are counted from
    TerminalSteps rewards (+1 marks the winner), the way to score any two policies (``points_won``)."""
    env = TennisEnv(num_areas=areas, seed=seed)
    rng = np.random.default_rng(seed)
    env.reset()
    won = np.zeros(AGENTS, np.int64)
    ended = 0
    for _ in range(decisions):
        decision, _ = env.get_steps(BEHAVIOR)
        actions = np.empty((len(decision), 3), F32)
        for team, player in enumerate(players):
            rows = np.flatnonzero(decision.team_id == team)
            part = DecisionSteps([decision.obs[0][rows]], decision.reward[rows], decision.agent_id[rows],
                                 team_id=decision.team_id[rows])  # fmt: skip
            actions[rows] = player(part, rng)
        env.set_actions(BEHAVIOR, _tuple(actions))
        env.step()
        _, terminal = env.get_steps(BEHAVIOR)
        won += points_won(terminal)
        ended += len(terminal) // AGENTS
    decided = int(won.sum())
    return won, decided, areas * decisions / max(ended, 1)


def points_won(terminal: TerminalSteps) -> np.ndarray:
    """Points won per team [2] in one TerminalSteps batch: each decided point gives +1 to its winner's
    row (interrupted points, reward 0, count for nobody)."""
    wins = (terminal.reward > 0) & ~terminal.interrupted
    return np.bincount(terminal.team_id[wins], minlength=AGENTS)[:AGENTS]


def _tuple(continuous: np.ndarray) -> ActionTuple:
    return ActionTuple(continuous, np.zeros((len(continuous), 0), np.int32))

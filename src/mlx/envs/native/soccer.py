"""The soccer field engine shared by SoccerTwos and StrikersVsGoalie (ML-Agents' Soccer examples).

Both examples run the same scripts (AgentSoccer.cs, SoccerEnvController.cs, SoccerBallController.cs) on
the same kind of field; they differ in who plays (roles, behaviours, teams, sensors) and in the
existential reward. ``SoccerEnv`` holds everything else, vectorised over fields with numpy on the 2-D
arena engine (mlx.envs.native.arena); ``mlx.envs.native.soccertwos`` and ``mlx.envs.native.strikersvsgoalie``
only declare their roles. Facts: the facts sheet §5.1, §5.2, §4.1, §6 pitfalls 1-2, and upstream's final
``Soccer/Prefabs/SoccerFieldTwos.prefab`` (read for the goal nets, the agents' prefab positions, the sensor
names and the purple agents' tag lists, which the facts sheet left open).

Field (field-local metres; x runs goal to goal, z across; blue defends -x and attacks +x):

* Walls (tag ``wall``): the pitch is 31 x 15 m (the floor collider), side walls' inner faces at z = +-7.5,
  end walls at |x| = 15.5 (the goal lines) with the goal mouth open for |z| < 4.15. Upstream's walls are
  mesh colliders whose shapes the prefab does not show: these planes are a decision from the floor's
  size and the nets' placement.
* Goals: behind each mouth a net 1.85 m deep (|x| from 15.5 to 17.35) and 8.3 m wide (inner faces at
  |z| = 4.15), upstream's GoalNet box colliders (sides 2.0 m long at z = +-4.2, a back plate at |x| =
  17.41, 3.84 m tall) read from the prefab (scaled 0.01). Every net collider carries the goal's tag:
  ``blueGoal`` at -x (the goal blue defends), ``purpleGoal`` at +x. **Goal width** is NOT FOUND in the
  facts sheet; 8.3 m is the prefab's net. The ball scores when it touches the net (the back plate or a
  side plate), so all of it has crossed the goal line. The side plates are 0.5 m thick here (0.1
  upstream; the end wall stands behind them) so that a fast ball cannot pass through them in one
  physics step; the net's roof is left out (the ball's height is frozen at 0.5).
* Ball (tag ``ball``): a sphere of radius 0.624 (mesh scale 0.015 x collider 41.61), mass 3, drag 1,
  angular drag 1, height frozen. **Friction** is NOT FOUND; the ball rolls, and a rolling sphere slides
  on nothing: here it has no floor friction, and its linear drag 1 stands for the rolling decay (a
  rolling solid sphere with linear drag 1 and angular drag 1 decays at (1 + 0.4 * 1) / 1.4 = 1 per second
  too). Contacts have restitution 0 (PhysX's default material): the ball stops dead on walls.
* Agents (tags ``blueAgent`` / ``purpleAgent``): spheres of radius 0.5, mass 50, drag 3, every rotation
  frozen (constraints 116), so they slide: floor friction is PhysX's default 0.6 (the floor's and the
  agents' materials are default; the arena engine averages body and floor coefficients, so the floor is
  given 0 and the agents 1.2, which also keeps the ball frictionless on the floor and gives agent-ball
  contacts 0.6; agent-agent contacts get 1.2 where PhysX would use 0.6, a deviation that only matters
  while two agents slide against each other).

Actions (AgentSoccer.MoveAgent), 3 discrete branches of 3, each decision repeated for its 5 physics steps:
branch 0 forward axis (0 none, 1 forward: also kick power 1, 2 backward), branch 1 lateral (0 none, 1
right, 2 left), branch 2 rotation (0 none, 1 turn left, 2 turn right; 100 degrees per second). Every
physics step the agent gets a velocity change of ``agentRunSpeed`` 2 times the chosen direction times
its role's speed (forward / lateral: Generic 1.0 / 0.3, Striker 1.3 / 0.3, Goalie 1.0 / 1.0). **Pitfall 2
is kept**: a lateral choice *replaces* the forward/backward move (the forward choice still sets the kick
power). With drag 3 and friction 0.6 a Generic agent running forward tops out near 29 m/s, as upstream's
numbers give.

Kick (AgentSoccer.OnCollisionEnter): when an agent starts touching the ball (a contact that was not
there on the previous physics step), the ball gets a force of 2000 x kick power along the unit vector from
the agent's centre to the contact point (between two spheres: centre to centre), for one physics step: a
velocity change of 2000 x 0.02 / 3 = 13.3 m/s (kick power 1 after a forward action, else 0; goalies
always 1). Each such touch also adds the individual reward 0.2 x ``ball_touch`` (environment parameter,
default 0 as upstream).

Rewards and episodes (SoccerEnvController): the ball touching the nets of ``purpleGoal`` means blue
scored, and vice versa. The scoring group gets the **group reward +1** and the other **-1**; both groups'
episodes end (not interrupted) and the field resets. **Pitfall 1 is kept**: upstream writes the scorer's
reward as 1 - timer / MaxEnvironmentSteps with integer division, which is exactly 1 (the docs' "time
penalty" never happens). After ``MAX_ENVIRONMENT_STEPS`` = 5000 physics steps (1000 decisions) without a
goal, both groups are *interrupted* (no reward) and the field resets. Roles may add an existential
individual reward per physics step (StrikersVsGoalie: -1/5000 strikers, +1/5000 goalie), counted while
the field's episode runs. Events are checked after every physics step; a field whose episode ended in a
decision ignores later events of that decision, and its episode ends at the decision's end (the terminal
observation is the decision's last state, at most 4 physics steps later than upstream, which resets at
once). Rewards earned in a decision arrive with the next decision or terminal step.

Reset (SoccerEnvController.ResetScene): every agent at its prefab position shifted 5 m towards its own
goal, plus U(-5, 5) m along x, yaw +U(80, 100) degrees for blue (facing +x) and -U(80, 100) for purple;
the ball at the centre plus U(-2.5, 2.5) m on both axes; all velocities zero. Overlaps at the start are
pushed apart by the first physics step, as PhysX does.

Observations (ML-Agents' RayPerceptionSensor, §4.1 encoding, 3 stacks, sphere radius 0.5, length 20,
rays 0.5 m above the agent's centre): each role lists its sensors in ML-Agents' order (by sensor name).
Tags are *semantic*, so that one policy plays either colour: a purple agent's lists name its own goal and
team where a blue agent's name blue's (upstream's purple prefabs list ``ball, purpleGoal, blueGoal, wall,
purpleAgent, blueAgent``). A ray ends at the first collider it meets; an agent never sees itself. The
sphere cast is exact against the spheres (the ray's sphere centre passes 0.5 m above the agents' and
the ball's centres, so it meets an agent within 0.866 m and the ball within 1.002 m in the plane) and
against the tall walls and nets (0.5 m).

Speed: each behaviour casts all its rays (forward and backward sensors together) for all its agents on
every field in one set of array operations (``_cast``), and the body pairs (agents and ball) are solved in
one Jacobi pass per physics step (``arena.JacobiArena``) instead of the engine's pair after pair. Other
approximations are the arena engine's (mlx.envs.native.arena: 2-D, position projection, no spin: a
kicked ball does not curl, a ball hitting a wall keeps its tangential speed).

``soccer_scripted.scripted_actions`` is a hand-written player that reads the env's state (for the scores).

Agent ids are ``field * agents_per_area + k`` (k in role order), group ids ``2 * field + team + 1``
(one group per team and field, nonzero and unique), team ids 0 (blue) and 1 (purple) on every
DecisionSteps and TerminalSteps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from mlx.envs.api import (
    ActionSpec,
    BehaviorSpec,
    DecisionSteps,
    EnvError,
    ObservationSpec,
    TerminalSteps,
    unknown_behavior,
)
from mlx.envs.native.arena import Arena, BodySpec, StaticSpec
from mlx.envs.native.base import F32, NativeEnv
from mlx.envs.native.jacobi import JacobiArena
from mlx.envs.native.rays import cast_bounds, cast_rounded_boxes, encode_frame, ray_angles
from mlx.envs.native.render import FLOOR, HEADING, Canvas
from mlx.envs.native.soccer_roles import Role, SoccerSensor

BLUE, PURPLE = 0, 1
DECISION_PERIOD = 5
MAX_ENVIRONMENT_STEPS = 5000  # physics steps (the field prefabs' MaxEnvironmentSteps)
MAX_DECISIONS = MAX_ENVIRONMENT_STEPS // DECISION_PERIOD
DT = 0.02
GRAVITY = 9.81
RUN_SPEED = 2.0  # SoccerSettings.agentRunSpeed
TURN_SPEED = 100.0  # degrees per second
GOAL_REWARD = 1.0  # 1 - timer / MaxEnvironmentSteps in integer arithmetic (pitfall 1)
KICK_FORCE = 2000.0  # AgentSoccer k_Power
BALL_TOUCH_REWARD = 0.2  # times the ball_touch parameter
# Field geometry (module doc).
HALF_X, HALF_Z = 15.5, 7.5  # goal lines, side walls' inner faces
GOAL_HALF = 4.15  # the net's inner half width
GOAL_BACK = 17.35  # the back plate's inner face
BOUND_X = 17.5  # the outer bounds behind the nets
SIDE_PLATE = 0.5  # thickness given to the nets' side plates (upstream 0.1; solid wall lies behind them)
WALL_HEIGHT = (-0.5, 3.5)
GOAL_HEIGHT = (0.0, 3.84)
AGENT_RADIUS, AGENT_MASS, AGENT_DRAG = 0.5, 50.0, 3.0
BALL_RADIUS, BALL_MASS, BALL_DRAG = 0.624, 3.0, 1.0
AGENT_FRICTION = (1.2, 1.2)  # averaged with the floor's 0: PhysX's default 0.6 (module doc)
BALL_FRICTION = (0.0, 0.0)
KICK_DV = KICK_FORCE * DT / BALL_MASS  # 13.3 m/s
# Rays: 0.5 m above the agent's centre (0.5), sphere radius 0.5: reach in the plane against each kind.
RAY_HEIGHT = 1.0
RAY_RADIUS = 0.5
AGENT_REACH = math.sqrt((RAY_RADIUS + AGENT_RADIUS) ** 2 - (RAY_HEIGHT - 0.5) ** 2)
BALL_REACH = math.sqrt((RAY_RADIUS + BALL_RADIUS) ** 2 - (RAY_HEIGHT - 0.5) ** 2)
# Reset (SoccerEnvController.ResetScene / AgentSoccer.Initialize).
START_SHIFT = 5.0
START_SPREAD = 5.0
START_YAW = (80.0, 100.0)
BALL_SPREAD = 2.5
# Semantic ray tags (the viewer's own goal and team vs the other's).
BALL, OWN_GOAL, OPP_GOAL, WALL, MATE, OPPONENT = "ball", "ownGoal", "oppGoal", "wall", "teammate", "opponent"
ACTION_BRANCHES = (3, 3, 3)


class SoccerEnv(NativeEnv):
    """``num_areas`` soccer fields; subclasses set ``roles`` (module doc). Public state after each step:
    ``ended`` [n] (the field's episode ended in it), ``winner`` [n] (0 blue, 1 purple, -1 none: a timeout
    or still playing); ``arena`` holds positions (agents first in role order, then the ball)."""

    roles: ClassVar[tuple[Role, ...]]
    parameter_defaults = {"ball_touch": 0.0}
    max_decisions = MAX_DECISIONS

    def __init__(self, num_areas: int = 16, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        roles = self.roles
        specs = {
            r.behavior: BehaviorSpec(
                tuple(ObservationSpec((s.size,), s.observation_name) for s in r.sensors),
                ActionSpec(discrete_branches=ACTION_BRANCHES),
            )
            for r in roles
        }
        super().__init__(num_areas, seed, parameters, specs[roles[0].behavior])
        self._specs = specs
        n = self.n
        self.A = A = sum(len(r.starts) for r in roles)
        # Per agent (role order): role index, team, speeds, kick, existential reward, start, sign.
        role_of = np.concatenate([np.full(len(r.starts), i) for i, r in enumerate(roles)])
        self.role_of = role_of
        self.team = np.array([roles[i].team for i in role_of], np.int32)
        self._fspeed = np.array([roles[i].forward_speed for i in role_of], F32)
        self._lspeed = np.array([roles[i].lateral_speed for i in role_of], F32)
        self._always_kick = np.array([roles[i].always_kick for i in role_of], bool)
        self._existential = np.array([roles[i].existential for i in role_of], F32)
        sign = np.where(self.team == BLUE, -1.0, 1.0)
        starts = np.array([p for r in roles for p in r.starts], np.float64)
        self._start_x = (starts[:, 0] + sign * START_SHIFT).astype(F32)
        self._start_z = starts[:, 1].astype(F32)
        self._yaw_sign = np.where(self.team == BLUE, 1.0, -1.0).astype(F32)
        self.arena = self._build_arena(n, self.team)
        ar = self.arena
        self.ball = A  # body index
        self._ball_pairs = np.array([ar.pair_index[(k, A)] for k in range(A)], np.intp)
        self._goal_slots = [
            np.array([ar.slot[f"{c}_goal_{p}"] for p in ("back", "left", "right")], np.intp) for c in ("blue", "purple")
        ]
        # Agent ids, group ids, team ids per [field, agent].
        self.agent_ids = np.arange(n * A, dtype=np.int32).reshape(n, A)
        self.group_ids = (2 * np.arange(n, dtype=np.int32)[:, None] + self.team[None, :] + 1).astype(np.int32)
        self.team_ids = np.broadcast_to(self.team, (n, A)).astype(np.int32)
        # Behaviours (several roles may share one: SoccerTwos' two colours): their agents within a field,
        # flat rows (ids), sensors, ray layouts and per-viewer tag lookups.
        behavior_of = np.array([self._index[roles[i].behavior] for i in role_of], np.intp)
        self._members = [np.flatnonzero(behavior_of == b) for b in range(len(self.behaviors))]
        self._flat = [self.agent_ids[:, m].reshape(-1) for m in self._members]
        self._rows = [f.copy() for f in self._flat]
        self._sensors: list[tuple[SoccerSensor, ...]] = []
        self._basis = []
        self._luts: list[list[np.ndarray]] = []
        for b, name in enumerate(self.behaviors):
            mine = [r for r in roles if r.behavior == name]
            sensors = mine[0].sensors
            if any(r.sensors != sensors for r in mine):
                raise EnvError(f"roles of behaviour {name} must share their sensors")
            self._sensors.append(sensors)
            angles = np.concatenate(
                [ray_angles(s.rays_per_direction, s.max_ray_degrees) + (180.0 if s.backward else 0.0) for s in sensors]
            )
            rad = np.radians(angles)
            self._basis.append((np.cos(rad).astype(F32)[:, None], np.sin(rad).astype(F32)[:, None]))
            self._luts.append([np.stack([self._lut(s, int(self.team[k])) for k in self._members[b]]) for s in sensors])
        self._stacks = [
            [np.zeros((n, self._members[b].size, s.size), F32) for s in self._sensors[b]]
            for b in range(len(self.behaviors))
        ]
        self._empty = [
            TerminalSteps(
                [np.zeros((0, *o.shape), F32) for o in specs[name].observation_specs],
                np.zeros(0, F32),
                np.zeros(0, np.int32),
                np.zeros(0, bool),
                np.zeros(0, np.int32),
                np.zeros(0, F32),
                np.zeros(0, np.int32),
            )
            for name in self.behaviors
        ]
        self._terminals = list(self._empty)
        # Cast targets: every slot; the in-plane distance at which the ray's sphere meets each (rounding
        # radius of its footprint: 0.5 for the tall boxes, the sphere-sphere reach for agents and ball).
        reach = np.full(ar.S, RAY_RADIUS, F32)
        reach[ar.W : ar.W + A] = AGENT_REACH
        reach[ar.W + A] = BALL_REACH
        self._reach = np.repeat(reach[:, None], n, 1)
        self._actions = np.zeros((n, A, 3), np.int64)
        self._touching = np.zeros((A, n), bool)
        self.ended = np.zeros(n, bool)
        self.winner = np.full(n, -1, np.int8)

    # ---- set-up -------------------------------------------------------------------------------------

    @staticmethod
    def _build_arena(n: int, teams: np.ndarray) -> Arena:
        """The field (module doc): walls and nets as statics, the agents (in role order) then the ball."""
        statics: list[StaticSpec] = []
        wall_half_z = (HALF_Z - GOAL_HALF - SIDE_PLATE) / 2
        end_x, end_half = (BOUND_X + HALF_X) / 2, (BOUND_X - HALF_X) / 2
        back_half = (BOUND_X - GOAL_BACK) / 2
        for colour, sx in (("blue", -1.0), ("purple", 1.0)):
            tag = f"{colour}Goal"
            statics.append(
                StaticSpec(f"{colour}_goal_back", (sx * (GOAL_BACK + back_half), 0.0), (back_half, GOAL_HALF),
                           GOAL_HEIGHT, tag=tag)
            )  # fmt: skip
            for side, sz in (("left", 1.0), ("right", -1.0)):
                wall_z, plate_z = sz * (HALF_Z - wall_half_z), sz * (GOAL_HALF + SIDE_PLATE / 2)
                statics.append(
                    StaticSpec(f"{colour}_end_{side}", (sx * end_x, wall_z), (end_half, wall_half_z), WALL_HEIGHT,
                               tag="wall")
                )  # fmt: skip
                statics.append(
                    StaticSpec(f"{colour}_goal_{side}", (sx * end_x, plate_z), (end_half, SIDE_PLATE / 2), GOAL_HEIGHT,
                               tag=tag)
                )  # fmt: skip
        bodies = [
            BodySpec.circle(f"agent{k}", AGENT_RADIUS, height=(0.0, 1.0), mass=AGENT_MASS, drag=AGENT_DRAG,
                            friction=AGENT_FRICTION, tag="blueAgent" if t == BLUE else "purpleAgent")
            for k, t in enumerate(teams)
        ]  # fmt: skip
        ball_height = (0.5 - BALL_RADIUS, 0.5 + BALL_RADIUS)
        bodies.append(BodySpec.circle("ball", BALL_RADIUS, height=ball_height, mass=BALL_MASS, drag=BALL_DRAG,
                                      friction=BALL_FRICTION, tag="ball"))  # fmt: skip
        return JacobiArena(n, bodies, statics, bounds=(-BOUND_X, -HALF_Z, BOUND_X, HALF_Z), bounds_height=WALL_HEIGHT,
                           bounds_tag="wall", num_agents=len(teams), run_speed=RUN_SPEED, turn_speed=TURN_SPEED,
                           dt=DT, gravity=GRAVITY, ground_friction=(0.0, 0.0),
                           extra_tags=("blueAgent", "purpleAgent"))  # fmt: skip

    def _lut(self, sensor: SoccerSensor, team: int) -> np.ndarray:
        """Arena slot -> one-hot index of ``sensor`` for a viewer of ``team`` (-1: not detectable), plus a
        last entry for the outer bounds (walls)."""
        ar = self.arena
        out = np.full(ar.S + 1, -1, np.int16)
        mine, theirs = ("blue", "purple") if team == BLUE else ("purple", "blue")
        for s in range(ar.S):
            tag = ar.tags[ar.tag[s, 0]] if ar.tag[s, 0] >= 0 else None
            meaning = {
                "ball": BALL,
                "wall": WALL,
                f"{mine}Goal": OWN_GOAL,
                f"{theirs}Goal": OPP_GOAL,
                f"{mine}Agent": MATE,
                f"{theirs}Agent": OPPONENT,
            }.get(tag or "")
            if meaning in sensor.tags:
                out[s] = sensor.tags.index(meaning)
        out[ar.S] = sensor.tags.index(WALL) if WALL in sensor.tags else -1
        return out

    # ---- the env API --------------------------------------------------------------------------------

    @property
    def behavior_specs(self) -> dict[str, BehaviorSpec]:
        return dict(self._specs)

    def teams(self, behavior_name: str) -> tuple[int, ...]:
        if behavior_name not in self._specs:
            raise unknown_behavior(behavior_name, self.behaviors)
        return tuple(sorted({r.team for r in self.roles if r.behavior == behavior_name}))

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        if not math.isfinite(values["ball_touch"]):
            raise EnvError(f"environment parameter 'ball_touch' must be finite (got {values['ball_touch']})")

    def reset(self) -> None:
        """New episodes on every field; every agent then decides, with reward 0."""
        every = np.arange(self.n)
        self._begin(every)
        obs = self._observe(every, restart=True)
        self._started = True
        self._no_actions()
        self._no_terminal()
        self.ended[:] = False
        self.winner[:] = -1
        self._publish_all(obs, np.zeros((self.n, self.A), F32))

    def step(self) -> None:
        self._require_reset("step")
        reward, scored, winner = self._advance()
        steps = self._steps
        steps += 1
        timeout = (steps >= self.max_decisions) & ~scored
        over = scored | timeout
        every = np.arange(self.n)
        obs = self._observe(every)
        if over.any():
            idx = np.flatnonzero(over)
            group = np.zeros((idx.size, self.A), F32)
            won = winner[idx]
            group[self.team[None, :] == won[:, None]] = GOAL_REWARD
            group[(self.team[None, :] != won[:, None]) & (won[:, None] >= 0)] = -GOAL_REWARD
            interrupted = np.broadcast_to(timeout[idx, None], (idx.size, self.A))
            for b, members in enumerate(self._members):
                self._terminals[b] = TerminalSteps(
                    [o[idx].reshape(idx.size * len(members), -1) for o in obs[b]],
                    reward[idx][:, members].reshape(-1),
                    self.agent_ids[idx][:, members].reshape(-1),
                    interrupted[:, members].reshape(-1).copy(),
                    self.group_ids[idx][:, members].reshape(-1),
                    group[:, members].reshape(-1),
                    self.team_ids[idx][:, members].reshape(-1),
                )
            self._begin(idx)
            first = self._observe(idx, restart=True)
            for b in range(len(self.behaviors)):
                for o, f in zip(obs[b], first[b], strict=True):
                    o[idx] = f
            reward[idx] = 0.0
        else:
            self._no_terminal()
        self.ended[:] = over
        self.winner[:] = np.where(over, winner, -1)
        self._no_actions()
        self._publish_all(obs, reward)

    def _publish_all(self, obs: list[list[np.ndarray]], reward: np.ndarray) -> None:
        """DecisionSteps of every behaviour: all its agents, in id order (every agent decides)."""
        self._decisions = []
        for b, members in enumerate(self._members):
            m = self._flat[b].size
            self._decisions.append(
                DecisionSteps(
                    [o.reshape(m, -1) for o in obs[b]],
                    reward[:, members].reshape(-1),
                    self._flat[b],
                    None,
                    self.group_ids[:, members].reshape(-1),
                    np.zeros(m, F32),
                    self.team_ids[:, members].reshape(-1),
                )
            )

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        self._actions.reshape(-1, 3)[rows] = discrete

    def _no_actions(self) -> None:
        self._actions.fill(0)

    def area_of(self, agent_ids: np.ndarray) -> np.ndarray:
        return np.asarray(agent_ids) // self.A

    # ---- episodes -----------------------------------------------------------------------------------

    def _reset_areas(self, idx: np.ndarray) -> None:
        """ResetScene (module doc) for the given fields."""
        ar, rng, m, A = self.arena, self._rng, idx.size, self.A
        dx = rng.uniform(-START_SPREAD, START_SPREAD, (A, m)).astype(F32)
        ar.pos[0, :A, idx] = (self._start_x[:, None] + dx).T
        ar.pos[1, :A, idx] = np.broadcast_to(self._start_z[:, None], (A, m)).T
        yaw = rng.uniform(*START_YAW, (A, m)).astype(F32)
        ar.heading[:, idx] = np.radians(self._yaw_sign[:, None] * yaw).astype(F32)
        ball = rng.uniform(-BALL_SPREAD, BALL_SPREAD, (2, m)).astype(F32)
        ar.pos[:, A, idx] = ball
        ar.stop(idx)
        self._touching[:, idx] = False

    # ---- physics ------------------------------------------------------------------------------------

    def _advance(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One decision: DECISION_PERIOD physics steps with kicks and goals after each (module doc).
        Returns (individual reward [n, A], scored [n], winner [n]: the scoring team or -1)."""
        n, A, ar = self.n, self.A, self.arena
        a = self._actions
        axis = np.array([0.0, 1.0, -1.0], F32)
        forward = axis[a[:, :, 0]] * self._fspeed
        lateral = axis[a[:, :, 1]] * self._lspeed
        forward = np.where(lateral != 0, F32(0.0), forward)  # pitfall 2: lateral replaces forward
        turn = axis[a[:, :, 2]] * F32(-1.0)  # 1: yaw - (left), 2: yaw + (right)
        power = (self._always_kick | (a[:, :, 0] == 1)).T  # [A, n]
        ar.drive(forward.T, lateral.T, turn.T)
        reward = np.zeros((A, n), F32)
        going = np.ones(n, bool)
        winner = np.full(n, -1, np.int8)
        touch_reward = F32(BALL_TOUCH_REWARD * self._params["ball_touch"])
        existential = self._existential[:, None]
        has_existential = bool(existential.any())
        for _ in range(DECISION_PERIOD):
            if has_existential:
                reward += existential * going
            ar.clear_touches()
            ar.step(1)
            touch = ar.touch_pair[self._ball_pairs]  # [A, n]
            enter = touch & ~self._touching
            self._touching = touch
            if enter.any():
                d = ar.pos[:, A][:, None, :] - ar.pos[:, :A]  # agent -> ball [2, A, n]
                dist = np.maximum(np.hypot(d[0], d[1]), F32(1e-6))
                kick = enter & power
                ar.vel[:, A] += (d * (kick * (F32(KICK_DV) / dist))).sum(1)
                if touch_reward:
                    reward += (enter & going) * touch_reward
            ts = ar.touch_static[A]  # [W, n]
            blue_net = ts[self._goal_slots[BLUE]].any(0) & going
            purple_net = ts[self._goal_slots[PURPLE]].any(0) & going
            winner[purple_net] = BLUE
            winner[blue_net] = PURPLE
            going &= ~(blue_net | purple_net)
        return reward.T.copy(), ~going, winner

    # ---- observations -------------------------------------------------------------------------------

    def _cast(self, b: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All rays of behaviour b's agents on fields idx at once: distances tmin [R, g * m] and the hit
        slot [R, g * m] (arena slot, ``S`` for the outer bounds, -1 for nothing), columns agent-major."""
        ar = self.arena
        members = self._members[b]
        g = members.size
        heading = ar.heading[members][:, idx].reshape(-1)
        ox = ar.pos[0, members][:, idx].reshape(-1)
        oz = ar.pos[1, members][:, idx].reshape(-1)
        cos_a, sin_a = self._basis[b]
        sh, ch = np.sin(heading), np.cos(heading)
        dx = cos_a * ch + sin_a * sh
        dz = sin_a * ch - cos_a * sh
        tile = (1, g)
        rx = np.tile(ar.center[0][:, idx], tile) - ox
        rz = np.tile(ar.center[1][:, idx], tile) - oz
        t = cast_rounded_boxes(
            dx,
            dz,
            rx,
            rz,
            np.tile(ar.half[0][:, idx], tile),
            np.tile(ar.half[1][:, idx], tile),
            np.tile(self._reach[:, idx], tile),
            np.tile(ar.active[:, idx], tile),
        )  # [R, S, g*m]
        best = t.argmin(1)
        tmin = np.take_along_axis(t, best[:, None, :], 1)[:, 0, :]
        slot = best.astype(np.int16)
        tb = cast_bounds(dx, dz, ox, oz, np.tile(ar.bounds[:, idx], tile), F32(RAY_RADIUS))
        closer = tb < tmin
        tmin = np.where(closer, tb, tmin)
        slot = np.where(closer, np.int16(ar.S), slot)
        return tmin, slot

    def _observe(self, idx: np.ndarray, restart: bool = False) -> list[list[np.ndarray]]:
        """Each behaviour's observations on fields idx, one [m, g, size] array per sensor: a new frame
        pushed onto the stacks (``restart``: the stacks cleared first, a new episode)."""
        out: list[list[np.ndarray]] = []
        m = idx.size
        every = m == self.n
        for b in range(len(self.behaviors)):
            g = self._members[b].size
            tmin, slot = self._cast(b, idx)
            viewer = np.repeat(np.arange(g), m)[None, :]  # the column's agent (agent-major columns)
            frames = []
            start = 0
            for s, sensor in enumerate(self._sensors[b]):
                rays = slice(start, start + sensor.num_rays)
                start += sensor.num_rays
                tags = self._luts[b][s][viewer, slot[rays]]
                frame = encode_frame(tmin[rays], tags, len(sensor.tags), sensor.length)  # [g*m, frame]
                frame = frame.reshape(g, m, -1).transpose(1, 0, 2)  # [m, g, frame]
                stack = self._stacks[b][s]
                size = sensor.frame_size
                if restart:
                    fresh = np.zeros((m, g, sensor.size), F32)
                    fresh[:, :, -size:] = frame
                    stack[idx] = fresh
                    frames.append(fresh)
                else:
                    if every:
                        stack[:, :, :-size] = stack[:, :, size:]
                        stack[:, :, -size:] = frame
                        frames.append(stack.copy())
                    else:
                        rolled = np.concatenate([stack[idx][:, :, size:], frame], axis=2)
                        stack[idx] = rolled
                        frames.append(rolled)
            out.append(frames)
        return out

    # ---- pictures -----------------------------------------------------------------------------------

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Top-down pictures of fields: grey walls, the blue and purple nets, the agents in their team's
        colour (a white dot where they face) and the white ball."""
        ar = self.arena
        idx = np.arange(self.n) if areas is None else np.asarray(areas)
        canvas = Canvas((-BOUND_X - 1.0, -HALF_Z - 1.0, BOUND_X + 1.0, HALF_Z + 1.0), 400)
        out = canvas.blank(len(idx), WALL_COLOUR)
        canvas.fill(out, 0.0, 0.0, BOUND_X, HALF_Z, FLOOR)
        canvas.fill(out, 0.0, 0.0, 0.05, HALF_Z, LINE_COLOUR)  # halfway line
        for s in range(ar.W):
            tag = ar.tags[ar.tag[s, 0]]
            colour = GOAL_COLOURS.get(tag, WALL_COLOUR)
            canvas.fill(out, ar.center[0, s, idx], ar.center[1, s, idx], ar.half[0, s, idx], ar.half[1, s, idx], colour)
        for k in range(self.A):
            colour = TEAM_COLOURS[int(self.team[k])]
            x, z = ar.pos[0, k, idx], ar.pos[1, k, idx]
            canvas.fill(out, x, z, 0.0, 0.0, colour, AGENT_RADIUS, min_pixels=3.0)
            h = ar.heading[k, idx]
            canvas.heading(out, x, z, np.sin(h), np.cos(h), AGENT_RADIUS)
        canvas.fill(out, ar.pos[0, self.A, idx], ar.pos[1, self.A, idx], 0.0, 0.0, HEADING, BALL_RADIUS, min_pixels=3.0)
        return out


WALL_COLOUR = (150, 150, 150)
LINE_COLOUR = (120, 120, 126)
TEAM_COLOURS = {BLUE: (45, 105, 235), PURPLE: (150, 60, 200)}
GOAL_COLOURS = {"blueGoal": (110, 150, 245), "purpleGoal": (190, 120, 230)}


# ---- a scripted player (privileged state), for the documented scores ---------------------------------

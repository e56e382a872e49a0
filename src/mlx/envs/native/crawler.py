"""Crawler: a port of Unity ML-Agents' Crawler example on MuJoCo (locomotion.py has the shared machinery).

Facts from upstream (Examples/Crawler: CrawlerAgent.cs, Prefabs/Crawler.prefab; shared/reference/
more-envs.md 5):

* A sphere body (r 0.5, mass 20) 2.15 m above the floor with four legs on the diagonals: each upper leg a
  capsule (r 0.15, length 0.95, mass 2) centred 0.9 m out and 0.15 m below the body's centre, jointed
  0.5 m inward of its centre (X in [-60, 0], Y +-20 degrees, Z locked); each lower leg a capsule (r 0.15,
  length 1.5, mass 1) centred 1.08 m further out, jointed 0.75 m inward of its centre (X in [0, 150]).
  JointDriveController: maxJointSpring 40000, jointDampen 5000, maxJointForceLimit 20000.
* 20 continuous actions: upper legs 0-3 (x, y), lower legs 0-3 (x) joint targets, then the strengths of
  upper legs 0-3 and lower legs 0-3. A decision every 5 physics steps (actions set once, kept).
* Reward every physics step: velocity match (1 - (d / S)^2)^2, d = min(|v_avg - cube.forward * S|, S),
  v_avg the mean velocity of the 9 bodies, times (cube.forward . body.forward + 1) / 2. S, the target
  speed, is drawn from U(0.1, 15) at every episode start. The body or an upper leg touching the ground
  sets that step's reward to -1 and ends the episode (terminal); MaxStep 5000 interrupts it.
* Episode start: every part back at rest, the crawler turned by a random yaw about its body.
* Observations: a vector of 32 (|v_goal - v_avg|, v_avg and v_goal in the cube's frame,
  FromToRotation(body.forward, cube.forward), the target in the cube's frame, the body's downward ray,
  then per part in registration order touching the ground and, for the legs, the strength fraction) and
  the physics-body sensor's 140 (the cube as virtual root, then the 9 bodies: model-space position and
  rotation of each, then their model-space velocities, then their local rotations). ML-Agents orders
  sensors by name, so the specs are ``PhysicsBodySensor`` (140) then ``VectorSensor`` (32) -- the sensor
  name is this port's assumption (more-envs.md 5.3 leaves the order open).

Inferred, not in the facts: which way the X hinges turn (here a positive X angle lowers the part's far
end, so upper legs can only rise and lower legs fold down: a spider's stance), and the legs' rest
orientation (this port's limbs rest at identity, so local rotations read identity at rest where Unity's
legs carry their prefab rotations). The ray is measured to the flat floor. MuJoCo steps of 0.01 s (two
per physics step) with the ``implicit`` integrator: with ``implicitfast`` (no Coriolis derivatives) a
crawler spun up to hundreds of rad/s and blew the scene up within 100-300 decisions of random play at
0.01 and 0.005 s; ``implicit`` at 0.01 s held over 5,200 agent-decisions in three seeded runs and is the
fastest stable choice measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.envs.native.base import F32
from mlx.envs.native.limbs import (
    Creature,
    Dof,
    Limb,
    from_to_rotation,
    quat_conj,
    quat_mul,
    quat_rotate,
    to_unity_quat,
    to_unity_vec,
)
from mlx.envs.native.locomotion import LocomotionEnv, ground_ray, look_reward, speed_reward, to_cube

BEHAVIOR_NAME = "Crawler"
MIN_SPEED, MAX_SPEED = 0.1, 15.0
VECTOR_SIZE, PHYSICS_SIZE = 32, 140
# Leg k's direction from the body (MuJoCo axes): Unity's leg0 (+x, -z), leg1 (-x, -z), leg2 (-x, +z), leg3 (+x, +z).
LEG_DIRECTIONS = ((-1.0, -1.0), (-1.0, 1.0), (1.0, 1.0), (1.0, -1.0))
# The physics sensor's parent of each pose (0: the cube, the virtual root; then body, upper0, lower0, ...).
POSE_PARENT = (0, 0, 1, 2, 1, 4, 1, 6, 1, 8)


def _legs(k: int) -> tuple[Limb, Limb]:
    r = np.array([*LEG_DIRECTIONS[k], 0.0]) / math.sqrt(2.0)
    down = tuple(np.cross([0.0, 0.0, 1.0], r))  # a positive angle about it lowers the far end
    radial = tuple(r)
    upper = Limb(
        f"leg{k}Upper",
        "body",
        "capsule",
        (0.15, 0.95 / 2 - 0.15),
        tuple(0.9 * r),
        2.0,
        axis=radial,
        anchor=tuple(0.4 * r),
        dofs=(Dof("x", down, -60.0, 0.0), Dof("y", radial, -20.0, 20.0)),
        ground="end",
    )
    lower = Limb(
        f"leg{k}Lower",
        f"leg{k}Upper",
        "capsule",
        (0.15, 1.5 / 2 - 0.15),
        tuple(1.98 * r),
        1.0,
        axis=radial,
        anchor=tuple(1.23 * r),
        dofs=(Dof("x", down, 0.0, 150.0),),
    )
    return upper, lower


CRAWLER = Creature(
    limbs=(
        Limb("body", None, "sphere", (0.5,), (0.0, 0.0, 0.15), 20.0, ground="end"),
        *(limb for k in range(4) for limb in _legs(k)),
    ),
    spring=40000.0,
    damper=5000.0,
    max_force=20000.0,
    height=2.0,
    timestep=0.01,
    integrator="implicit",  # kv and the Coriolis terms implicit (see the module doc)
)
FORWARD = np.array([1.0, 0.0, 0.0])


class CrawlerEnv(LocomotionEnv):
    """``num_areas`` Crawler areas, one agent each (agent id = area index), behaviour ``Crawler``."""

    behaviors = (BEHAVIOR_NAME,)
    creature = CRAWLER
    cube_limb = "body"
    action_targets = (
        *((f"leg{k}Upper", axis) for k in range(4) for axis in ("x", "y")),
        *((f"leg{k}Lower", "x") for k in range(4)),
    )
    action_strengths = (*(f"leg{k}Upper" for k in range(4)), *(f"leg{k}Lower" for k in range(4)))

    def __init__(self, num_areas: int = 10, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(
                ObservationSpec((PHYSICS_SIZE,), "PhysicsBodySensor"),
                ObservationSpec((VECTOR_SIZE,), "VectorSensor"),
            ),
            action_spec=ActionSpec(continuous_size=20),
        )
        super().__init__(num_areas, seed, parameters, spec)
        self.speed = np.full(self.n, MAX_SPEED)  # this episode's target walking speed

    def _reset_areas(self, idx: np.ndarray) -> None:
        super()._reset_areas(idx)
        self.speed[idx] = np.clip(self._rng.uniform(MIN_SPEED, MAX_SPEED, idx.size), MIN_SPEED, MAX_SPEED)

    def _average_velocity(self, rows: np.ndarray) -> np.ndarray:
        lin, _ = self.part_velocities(rows)
        return lin.mean(axis=1)

    def _physics_reward(self) -> np.ndarray:
        rows = np.arange(self.n)
        _, forward, _ = self.cube(rows)
        speed = self.speed[rows]
        match = speed_reward(self._average_velocity(rows), forward * speed[:, None], speed)
        body_forward = quat_rotate(self.data.xquat[self.body[rows, 0]], FORWARD)
        return match * look_reward(forward, body_forward)

    def _observations(self, rows: np.ndarray) -> list[np.ndarray]:
        m = rows.size
        d = self.data
        cube_pos, forward, cube_q = self.cube(rows)
        goal = forward * self.speed[rows, None]
        avg = self._average_velocity(rows)
        body_q = d.xquat[self.body[rows, 0]]
        vector = np.concatenate(
            [
                np.linalg.norm(goal - avg, axis=1, keepdims=True),
                to_unity_vec(to_cube(avg, forward)),
                to_unity_vec(to_cube(goal, forward)),
                from_to_rotation(quat_rotate(body_q, FORWARD), forward),
                to_unity_vec(to_cube(self.target_position(rows) - cube_pos, forward)),
                ground_ray(d.xpos[self.body[rows, 0], 2])[:, None],
                self.touching[rows].astype(float),
                self.strength[rows],
            ],
            axis=1,
        )
        # Physics-body sensor: poses = [cube, 9 bodies]; the cube is the virtual root.
        lin, _ = self.part_velocities(rows)
        quats = np.concatenate([cube_q[:, None], d.xquat[self.body[rows]]], axis=1)  # [m, 10, 4]
        pos = np.concatenate([cube_pos[:, None], d.xpos[self.body[rows]]], axis=1)
        vel = np.concatenate([np.zeros((m, 1, 3)), lin], axis=1)
        inv_cube = quat_conj(cube_q)[:, None]
        model_pos = to_unity_vec(to_cube(pos - cube_pos[:, None], forward))
        model_rot = to_unity_quat(quat_mul(np.broadcast_to(inv_cube, quats.shape), quats))
        model_vel = to_unity_vec(to_cube(vel, forward))
        parent = quats[:, list(POSE_PARENT)]
        local_rot = to_unity_quat(quat_mul(quat_conj(parent), quats))
        local_rot[:, 0] = (0.0, 0.0, 0.0, 1.0)  # the root's local pose is the identity
        physics = np.concatenate(
            [
                np.concatenate([model_pos, model_rot], axis=2).reshape(m, -1),
                model_vel.reshape(m, -1),
                local_rot.reshape(m, -1),
            ],
            axis=1,
        )
        assert vector.shape == (m, VECTOR_SIZE) and physics.shape == (m, PHYSICS_SIZE)
        return [physics.astype(F32), vector.astype(F32)]

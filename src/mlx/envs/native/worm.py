"""Worm: a port of Unity ML-Agents' Worm example on MuJoCo (locomotion.py has the shared machinery).

Facts from upstream (Examples/Worm: WormAgent.cs, Prefabs/Worm.prefab; shared/reference/more-envs.md 7):

* A head and three body segments in a chain, each a capsule of mass 10 with its long axis forward:
  segment 1 r 0.33 length 1.5, 1.316 m behind the head; segment 2 r 0.28 length 1.48, 1.125 m behind it;
  segment 3 r 0.26 length 1.46, 1.116 m behind that. The root sits 1.65 m above the floor. The joints
  live on the head and segments 1 and 2 and hold each to the next segment back, anchored 0.55 m behind
  the segment's centre: X in [-60, 60] and Y in [-60, 60] degrees, Z locked. JointDriveController:
  maxJointSpring 3000, jointDampen 30, maxJointForceLimit 10000.
* 9 continuous actions: head (x, y), segment 1 (x, y), segment 2 (x, y) joint targets, then the
  strengths of head, segment 1, segment 2. A decision every 5 physics steps (actions set once, kept).
* Reward every physics step: (1 - (d / 10)^2)^2 with d = min(|v_head - cube.forward * 10|, 10), times
  1 - angle / 180 when the angle between the cube's rotation and the head's is under 30 degrees, else 0.
  The target speed is a fixed 10 m/s.
* Episode: MaxStep 5000 (interruption); ends (terminal) when, at a decision, the head is more than 2 m
  below its start height. Each episode starts with the worm at rest turned by a random yaw about its
  head. No limb ends the episode by touching the ground.
* Observations (64, one vector): the head's downward ray (distance / 10), the goal velocity in the
  cube's frame, the cube-head rotation angle / 180, FromToRotation(head.forward, cube.forward), the
  target in the cube's frame; then per segment (head first): touching the ground, velocity and angular
  velocity in the cube's frame, for segments 1-3 the position relative to the head in the cube's frame
  and the rotation (as Unity's localRotation under the fixed agent root: the world rotation), for the
  jointed segments the strength fraction.

Not ported or assumed: the head's collider and mass are not in the facts (taken equal to segment 1);
the decorative eyes (two spheres on free joints) are left out; the ray is measured to the flat floor.
The worm is integrated with RK4 at 0.01 s: its drives (spring 3000 on 10 kg segments, so about 6 Hz,
and little damping) whip the chain to tens of rad/s under random actions, and ``implicitfast`` and
``implicit`` (at 0.01 and 0.02 s) blew up within a few decisions of random play; RK4 at 0.01 s held for
300 decisions in 10 areas.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from mlx.envs.native.base import F32
from mlx.envs.native.limbs import (
    Creature,
    Dof,
    Limb,
    from_to_rotation,
    quat_rotate,
    rotation_angle,
    to_unity_pseudo,
    to_unity_quat,
    to_unity_vec,
)
from mlx.envs.native.locomotion import LocomotionEnv, ground_ray, speed_reward, to_cube

BEHAVIOR_NAME = "Worm"
TARGET_SPEED = 10.0
FACING_LIMIT = 30.0  # degrees
FALL_LIMIT = 2.0  # metres below the head's start height
OBS_SIZE = 64


def _segment(name: str, parent: str | None, x: float, radius: float, length: float) -> Limb:
    """A segment at x metres along the worm (forward +x), its joint 0.55 m behind its centre."""
    dofs = (Dof("x", (0.0, 1.0, 0.0), -60.0, 60.0), Dof("y", (0.0, 0.0, -1.0), -60.0, 60.0)) if parent else ()
    return Limb(
        name,
        parent,
        "capsule",
        (radius, length / 2 - radius),
        (x, 0.0, 0.0),
        10.0,
        axis=(1.0, 0.0, 0.0),
        anchor=(x - 0.55, 0.0, 0.0),
        dofs=dofs,
    )


SEG1, SEG2, SEG3 = -1.316, -1.316 - 1.125, -1.316 - 1.125 - 1.116
WORM = Creature(
    limbs=(
        _segment("head", "segment1", 0.0, 0.33, 1.5),
        _segment("segment1", "segment2", SEG1, 0.33, 1.5),
        _segment("segment2", "segment3", SEG2, 0.28, 1.48),
        _segment("segment3", None, SEG3, 0.26, 1.46),
    ),
    spring=3000.0,
    damper=30.0,
    max_force=10000.0,
    height=1.65,
    timestep=0.01,
    integrator="RK4",
)
FORWARD = np.array([1.0, 0.0, 0.0])


class WormEnv(LocomotionEnv):
    """``num_areas`` Worm areas, one agent each (agent id = area index), behaviour ``Worm``."""

    behaviors = (BEHAVIOR_NAME,)
    creature = WORM
    cube_limb = "head"
    action_targets = (
        ("head", "x"),
        ("head", "y"),
        ("segment1", "x"),
        ("segment1", "y"),
        ("segment2", "x"),
        ("segment2", "y"),
    )
    action_strengths = ("head", "segment1", "segment2")

    def __init__(self, num_areas: int = 10, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(ObservationSpec((OBS_SIZE,), "VectorSensor"),),
            action_spec=ActionSpec(continuous_size=9),
        )
        super().__init__(num_areas, seed, parameters, spec)

    def _head(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        body = self.body[rows, 0]
        return self.data.xpos[body], self.data.xquat[body]

    def _physics_reward(self) -> np.ndarray:
        rows = np.arange(self.n)
        _, forward, cube_q = self.cube(rows)
        lin, _ = self.part_velocities(rows)
        _, head_q = self._head(rows)
        angle = rotation_angle(cube_q, head_q)
        facing = np.where(angle < FACING_LIMIT, 1.0 - angle / 180.0, 0.0)
        return speed_reward(lin[:, 0], forward * TARGET_SPEED, TARGET_SPEED) * facing

    def _decision_end(self) -> np.ndarray:
        return self.data.xpos[self.body[:, 0], 2] < WORM.height - FALL_LIMIT

    def _observations(self, rows: np.ndarray) -> list[np.ndarray]:
        m = rows.size
        cube_pos, forward, cube_q = self.cube(rows)
        head_pos, head_q = self._head(rows)
        lin, ang = self.part_velocities(rows)
        quats = self.data.xquat[self.body[rows]]
        head_forward = quat_rotate(head_q, FORWARD)
        goal = to_unity_vec(to_cube(forward * TARGET_SPEED, forward))
        target = to_unity_vec(to_cube(self.target_position(rows) - cube_pos, forward))
        vel = to_unity_vec(to_cube(lin, forward))
        spin = to_unity_pseudo(to_cube(ang, forward))
        rel = to_unity_vec(to_cube(self.data.xpos[self.body[rows]] - head_pos[:, None], forward))
        local = to_unity_quat(quats)
        touch = self.touching[rows].astype(float)
        strength = self.strength[rows]
        columns = [
            ground_ray(head_pos[:, 2])[:, None],
            goal,
            (rotation_angle(cube_q, head_q) / 180.0)[:, None],
            from_to_rotation(head_forward, forward),
            target,
        ]
        for p in range(4):
            columns += [touch[:, p : p + 1], vel[:, p], spin[:, p]]
            if p > 0:
                columns += [rel[:, p], local[:, p]]
            if p < 3:
                columns.append(strength[:, p : p + 1])
        obs = np.concatenate(columns, axis=1).astype(F32)
        assert obs.shape == (m, OBS_SIZE)
        return [obs]

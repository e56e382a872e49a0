"""Walker: a port of Unity ML-Agents' Walker example (a humanoid) on MuJoCo (locomotion.py has the machinery).

Facts from upstream: WalkerAgent.cs and more-envs.md 6 (observations, actions, reward, episode), and the
ragdoll prefab Walker/Prefabs/Ragdoll/WalkerRagdoll.prefab (read at commit 8a4c5d86) for the body:

* 16 rigid bodies in Unity's T-pose, every transform unrotated; the root 0.953 m above the floor at the
  hips. Sizes (capsule radius / full height / axis), masses and joints, positions relative to the hips in
  Unity's (x right, y up, z forward) and joint limits in degrees (X low..high, Y +-, Z +-; 0: locked):
  hips capsule 0.10/0.42/x, mass 8 (prefab 15, reset to ``hip_mass``); spine (0, 0.225) capsule
  0.08/0.36/x, 8 (prefab 10, ``spine_mass``), joint to hips at -0.1 in y, X -20..20 Y 20 Z 15; chest
  (0, 0.491) capsule 0.13/0.45/x, 8 (``chest_mass``), to spine at -0.16, X -20..20 Y 20 Z 15; head
  (0, 0.941) sphere 0.22, 6, to chest at -0.28, X -30..10 Y 20; thighs (-+0.132, -0.264) capsule
  0.09/0.30/y, 14, to hips at +0.16, X -90..60 Y 40; shins 0.33 below the thighs, capsule 0.06/0.32/y, 7,
  to thighs at +0.17, X 0..120; feet 0.198 below the shins, box 0.128 x 0.043 x 0.230 centred 0.033
  forward, 5, to shins at +0.03, X -20..20 Y 20 Z 20; upper arms (-+0.4125, 0.491) capsule 0.08/0.33/x, 4,
  to chest at 0.18 inward, X -60..120 Y 100; forearms 0.33 further out, capsule 0.08/0.30/x, 3, to upper
  arms at 0.16 inward, X 0..160; hands 0.231 further out, sphere 0.08, 2, welded to the forearms.
  Joint axes (X / secondary Y): spine, chest, head (1,0,0)/(0,0,-1); thighs (-1,0,0)/(0,0,-1); shins
  (-1,0,0); feet (1,0,0)/(0,1,0); left arm and forearm (0,-1,0)/(0,0,1); right (0,1,0)/(0,0,1).
  Touching the ground ends the episode with -1 for every part but the shins and feet. All drag 0.05.
  JointDriveController: maxJointSpring 40000, jointDampen 5000, maxJointForceLimit 20000. MaxStep 5000,
  a decision every 5 physics steps (actions set once, kept); target speed 10 m/s, randomised each episode
  (randomizeWalkSpeedEachEpisode is on): U(0.1, 10).
* 39 continuous actions: targets of chest (x, y, z), spine (x, y, z), thighL (x, y), thighR (x, y),
  shinL, shinR, footR (x, y, z), footL (x, y, z), armL (x, y), armR (x, y), forearmL, forearmR, head
  (x, y); then the strengths of chest, spine, head, thighL, shinL, footL, thighR, shinR, footR, armL,
  forearmL, armR, forearmR.
* Reward every physics step: the walker reward (velocity match of the 16 bodies' mean velocity times
  (cube.forward . head.forward + 1) / 2), ground contact as above.
* Observations (243, one vector): |v_goal - v_avg|, v_avg and v_goal in the cube's frame,
  FromToRotation(hips.forward, cube.forward), FromToRotation(head.forward, cube.forward), the target in
  the cube's frame; then per part (hips, chest, spine, head, thighL, shinL, footL, thighR, shinR, footR,
  armL, forearmL, handL, armR, forearmR, handR): touching the ground, velocity, angular velocity and
  position relative to the hips in the cube's frame, and for all but the hips and hands the local
  rotation (to the parent in the hierarchy) and the strength fraction.
* Environment parameters ``hip_mass``, ``spine_mass``, ``chest_mass`` (default 8), applied at each
  episode start (per area when sampled).

Assumed: the hinge sign convention (limbs.py), under which the limits bend knees and elbows the human way;
the target behaves as the DynamicTarget (its settings for the Walker are not in the facts). MuJoCo steps
of 0.0025 s (eight per physics step) with ``implicitfast``: measured over 200 decisions of random play in 10
areas, steps of 0.01, 0.005 and 0.004 s (and ``implicit`` at 0.01 and 0.005 s, and hinge armature) each
blew the scene up once; 0.0025 s did not.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, EnvError, ObservationSpec
from mlx.envs.native.base import F32
from mlx.envs.native.limbs import (
    Creature,
    Dof,
    Limb,
    from_to_rotation,
    quat_conj,
    quat_mul,
    quat_rotate,
    to_unity_pseudo,
    to_unity_quat,
    to_unity_vec,
)
from mlx.envs.native.locomotion import LocomotionEnv, look_reward, speed_reward, to_cube

BEHAVIOR_NAME = "Walker"
MIN_SPEED, MAX_SPEED = 0.1, 10.0
OBS_SIZE = 243
MASS_PARAMETERS = {"hip_mass": "hips", "spine_mass": "spine", "chest_mass": "chest"}
CHEST, ARMS = 0.49104, 0.4125
# MuJoCo hinge axes of the prefab's joint axes (limbs.py: Unity axis a -> (a_z, -a_x, a_y)).
BACK, SIDE, TWIST = (0.0, -1.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0)  # spine, chest, head X / Y / Z
HIP_X, HIP_Y = (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0)
FOOT_X, FOOT_Y, FOOT_Z = (0.0, -1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)


def _dofs(axes: tuple[tuple[float, float, float], ...], limits: tuple[tuple[float, float], ...]) -> tuple[Dof, ...]:
    return tuple(Dof(name, axis, lo, hi) for name, axis, (lo, hi) in zip("xyz", axes, limits, strict=False))


def _leg(side: str, y: float) -> tuple[Limb, ...]:
    return (
        Limb(
            f"thigh{side}",
            "hips",
            "capsule",
            (0.09, 0.06),
            (0.0, y, -0.264),
            14.0,
            axis=(0, 0, 1),
            anchor=(0.0, y, -0.104),
            dofs=_dofs((HIP_X, HIP_Y), ((-90, 60), (-40, 40))),
            ground="end",
        ),
        Limb(
            f"shin{side}",
            f"thigh{side}",
            "capsule",
            (0.06, 0.10),
            (0.0, y, -0.594),
            7.0,
            axis=(0, 0, 1),
            anchor=(0.0, y, -0.424),
            dofs=_dofs((HIP_X,), ((0, 120),)),
        ),
        Limb(
            f"foot{side}",
            f"shin{side}",
            "box",
            (0.230 / 2, 0.128 / 2, 0.043 / 2),
            (0.0, y, -0.792),
            5.0,
            anchor=(0.0, y, -0.762),
            dofs=_dofs((FOOT_X, FOOT_Y, FOOT_Z), ((-20, 20), (-20, 20), (-20, 20))),
            offset=(0.0328, 0.0, -0.0002),
        ),
    )


def _arm(side: str, sign: float) -> tuple[Limb, ...]:
    """An arm out to the side (sign +1: left, +y), elbow axis pointing so that positive X bends forward."""
    elbow = (0.0, 0.0, -sign)
    return (
        Limb(
            f"arm{side}",
            "chest",
            "capsule",
            (0.08, 0.085),
            (0.0, sign * ARMS, CHEST),
            4.0,
            axis=(0, 1, 0),
            anchor=(0.0, sign * 0.2325, CHEST),
            dofs=_dofs((elbow, (1.0, 0.0, 0.0)), ((-60, 120), (-100, 100))),
            ground="end",
        ),
        Limb(
            f"forearm{side}",
            f"arm{side}",
            "capsule",
            (0.08, 0.07),
            (0.0, sign * 0.7425, CHEST),
            3.0,
            axis=(0, 1, 0),
            anchor=(0.0, sign * 0.5825, CHEST),
            dofs=_dofs((elbow,), ((0, 160),)),
            ground="end",
        ),
        Limb(f"hand{side}", f"forearm{side}", "sphere", (0.08,), (0.0, sign * 0.9735, CHEST), 2.0, ground="end"),
    )


_BODY = {
    limb.name: limb
    for limb in (
        Limb("hips", None, "capsule", (0.10, 0.11), (0.0, 0.0, 0.0), 8.0, axis=(0, 1, 0), ground="end"),
        Limb(
            "spine",
            "hips",
            "capsule",
            (0.08, 0.10),
            (0.0, 0.0, 0.22539),
            8.0,
            axis=(0, 1, 0),
            anchor=(0.0, 0.0, 0.12539),
            dofs=_dofs((BACK, SIDE, TWIST), ((-20, 20), (-20, 20), (-15, 15))),
            ground="end",
        ),
        Limb(
            "chest",
            "spine",
            "capsule",
            (0.13, 0.095),
            (0.0, 0.0, CHEST),
            8.0,
            axis=(0, 1, 0),
            anchor=(0.0, 0.0, 0.33104),
            dofs=_dofs((BACK, SIDE, TWIST), ((-20, 20), (-20, 20), (-15, 15))),
            ground="end",
        ),
        Limb(
            "head",
            "chest",
            "sphere",
            (0.22,),
            (0.0, 0.0, 0.9405),
            6.0,
            anchor=(0.0, 0.0, 0.6605),
            dofs=_dofs((BACK, SIDE), ((-30, 10), (-20, 20))),
            ground="end",
        ),
        *_leg("L", 0.132),
        *_leg("R", -0.132),
        *_arm("L", 1.0),
        *_arm("R", -1.0),
    )
}
ORDER = (
    *("hips", "chest", "spine", "head"),
    *("thighL", "shinL", "footL", "thighR", "shinR", "footR"),
    *("armL", "forearmL", "handL", "armR", "forearmR", "handR"),
)
WALKER = Creature(
    limbs=tuple(_BODY[name] for name in ORDER),
    spring=40000.0,
    damper=5000.0,
    max_force=20000.0,
    height=0.953,
    timestep=0.0025,
    integrator="implicitfast",
)
FORWARD = np.array([1.0, 0.0, 0.0])
WITH_ROTATION = [i for i, name in enumerate(ORDER) if name not in ("hips", "handL", "handR")]
PARENT = [ORDER.index(_BODY[name].parent) if _BODY[name].parent else 0 for name in ORDER]


def _part_layout() -> np.ndarray:
    """Column order of the per-part block: [16 x 10 part floats, 13 x 5 joint floats] -> per part, its 10
    floats then, when it has a joint, its 5 (upstream's loop over body parts)."""
    order: list[int] = []
    for p in range(len(ORDER)):
        order += range(10 * p, 10 * p + 10)
        if p in WITH_ROTATION:
            k = WITH_ROTATION.index(p)
            order += range(10 * len(ORDER) + 5 * k, 10 * len(ORDER) + 5 * k + 5)
    return np.array(order)


PART_LAYOUT = _part_layout()


class WalkerEnv(LocomotionEnv):
    """``num_areas`` Walker areas, one agent each (agent id = area index), behaviour ``Walker``."""

    behaviors = (BEHAVIOR_NAME,)
    creature = WALKER
    cube_limb = "hips"
    camera_distance = 4.5
    parameter_defaults = {key: 8.0 for key in MASS_PARAMETERS}
    sampled_parameters = tuple(MASS_PARAMETERS)
    action_targets = (
        *(("chest", a) for a in "xyz"),
        *(("spine", a) for a in "xyz"),
        ("thighL", "x"),
        ("thighL", "y"),
        ("thighR", "x"),
        ("thighR", "y"),
        ("shinL", "x"),
        ("shinR", "x"),
        *(("footR", a) for a in "xyz"),
        *(("footL", a) for a in "xyz"),
        ("armL", "x"),
        ("armL", "y"),
        ("armR", "x"),
        ("armR", "y"),
        ("forearmL", "x"),
        ("forearmR", "x"),
        ("head", "x"),
        ("head", "y"),
    )
    action_strengths = (
        *("chest", "spine", "head", "thighL", "shinL", "footL", "thighR", "shinR", "footR"),
        *("armL", "forearmL", "armR", "forearmR"),
    )

    def __init__(self, num_areas: int = 10, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec(
            observation_specs=(ObservationSpec((OBS_SIZE,), "VectorSensor"),),
            action_spec=ActionSpec(continuous_size=39),
        )
        super().__init__(num_areas, seed, parameters, spec)
        self.speed = np.full(self.n, MAX_SPEED)  # this episode's target walking speed
        self._mass_body = {key: self.body[:, ORDER.index(part)] for key, part in MASS_PARAMETERS.items()}
        # Inertia per unit mass of the bodies whose mass the parameters set (the shape stays, the mass scales).
        self._unit_inertia = {
            key: self.model.body_inertia[bodies] / self.model.body_mass[bodies, None]
            for key, bodies in self._mass_body.items()
        }

    def _reset_areas(self, idx: np.ndarray) -> None:
        m = self.model
        for key, bodies in self._mass_body.items():  # WalkerAgent.SetTorsoMass, before the bodies settle
            mass = self._params.draw(key, idx)
            m.body_mass[bodies[idx]] = mass
            m.body_inertia[bodies[idx]] = self._unit_inertia[key][idx] * mass[:, None]
        super()._reset_areas(idx)
        self.speed[idx] = np.clip(self._rng.uniform(MIN_SPEED, MAX_SPEED, idx.size), MIN_SPEED, MAX_SPEED)

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            if key in MASS_PARAMETERS and not value > 0:
                raise EnvError(f"environment parameter '{key}' must be > 0 (got {value}); it is a mass in kg")

    def _head_forward(self, rows: np.ndarray) -> np.ndarray:
        return quat_rotate(self.data.xquat[self.body[rows, ORDER.index("head")]], FORWARD)

    def _physics_reward(self) -> np.ndarray:
        rows = np.arange(self.n)
        _, forward, _ = self.cube(rows)
        speed = self.speed
        lin, _ = self.part_velocities(rows)
        match = speed_reward(lin.mean(axis=1), forward * speed[:, None], speed)
        return match * look_reward(forward, self._head_forward(rows))

    def _observations(self, rows: np.ndarray) -> list[np.ndarray]:
        m = rows.size
        d = self.data
        cube_pos, forward, _ = self.cube(rows)
        goal = forward * self.speed[rows, None]
        lin, ang = self.part_velocities(rows)
        avg = lin.mean(axis=1)
        quats = d.xquat[self.body[rows]]
        hips = d.xpos[self.body[rows, 0]]
        local = to_unity_quat(quat_mul(quat_conj(quats[:, PARENT]), quats))
        touch = self.touching[rows].astype(float)[..., None]
        vel = to_unity_vec(to_cube(lin, forward))
        spin = to_unity_pseudo(to_cube(ang, forward))
        rel = to_unity_vec(to_cube(d.xpos[self.body[rows]] - hips[:, None], forward))
        per_part = np.concatenate([touch, vel, spin, rel], axis=2).reshape(m, -1)  # 16 parts x 10
        # the jointed limbs are exactly the parts with a rotation observation, in the same order
        jointed = np.concatenate([local[:, WITH_ROTATION], self.strength[rows, :, None]], axis=2).reshape(m, -1)
        obs = np.concatenate(
            [
                np.linalg.norm(goal - avg, axis=1, keepdims=True),
                to_unity_vec(to_cube(avg, forward)),
                to_unity_vec(to_cube(goal, forward)),
                from_to_rotation(quat_rotate(quats[:, 0], FORWARD), forward),
                from_to_rotation(self._head_forward(rows), forward),
                to_unity_vec(to_cube(self.target_position(rows) - cube_pos, forward)),
                np.concatenate([per_part, jointed], axis=1)[:, PART_LAYOUT],
            ],
            axis=1,
        ).astype(F32)
        assert obs.shape == (m, OBS_SIZE)
        return [obs]

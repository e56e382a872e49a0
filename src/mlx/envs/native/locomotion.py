"""The base of ML-Agents' walkers on MuJoCo (Worm, Crawler, Walker): one MuJoCo scene holds every area.

Each area is one agent on its own patch of an endless floor (areas sit 100 m apart and their collision
bits keep them from touching each other), with its dynamic target (SharedAssets DynamicTarget /
TargetController) and orientation cube (OrientationCubeController). A decision is ``DECISION_PERIOD``
physics steps of 0.02 s (each ``0.02 / timestep`` MuJoCo steps); after every physics step the base
reads contacts (GroundContact: which limbs touch the ground; TargetController: a target touched by its
agent moves), asks the port for that step's reward, and applies the ground-contact rule: a limb marked
``ground="end"`` touching the ground sets that step's reward to -1 and ends the episode (terminal).
An agent whose episode ended earlier in the decision gets no more reward in it; the episode is closed
at the decision's end (upstream ends it at once, mid-decision).

All areas live in one MjModel, so every observation is a numpy gather over areas from one MjData.
benchmarks/walker_layout.py measured the alternatives: at 10 areas (upstream's scene) one model, models of
ten and one model per area step alike; at 100 areas too, except the Crawler, whose ``implicit``
integrator runs twice as fast as ten models of ten than as one model (not done here). Ports subclass
``LocomotionEnv`` and write ``_physics_reward`` and the observations from the helpers here (part
velocities, the cube frame); see worm.py, crawler.py and walker.py.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from mlx.envs.api import BehaviorSpec, EnvError
from mlx.envs.native.base import F32, NativeEnv
from mlx.envs.native.limbs import (
    PHYSICS_DT,
    TARGET_HALF,
    Creature,
    horizontal_unit,
    quat_mul,
    quat_rotate,
    scene_xml,
    yaw_quat,
)

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering without a display (read when mujoco loads)
import mujoco  # noqa: E402

log = logging.getLogger(__name__)


def _mujoco_warning(message: str) -> None:
    """MuJoCo's warnings go to logging, not to a MUJOCO_LOG.TXT in the working directory (its default)."""
    log.debug("MuJoCo: %s", message)


mujoco.set_mju_user_warning(_mujoco_warning)

DECISION_PERIOD = 5  # DecisionRequester.DecisionPeriod of every walker
MAX_STEP = 5000  # Agent.MaxStep (physics steps) of every walker
MAX_DECISIONS = MAX_STEP // DECISION_PERIOD
SPACING = 100.0  # metres between areas
SPAWN_RADIUS = 40.0  # TargetController.spawnRadius
FALL_DISTANCE = 5.0  # TargetController.fallDistance
RENDER_SIZE = (240, 320)  # height, width of mode=watch pictures


class LocomotionEnv(NativeEnv):
    """``num_areas`` areas of one walker, one agent each (agent id = area index); see the module doc."""

    creature: ClassVar[Creature]
    cube_limb: ClassVar[str]  # the limb the orientation cube follows (and turns about at episode start)
    action_targets: ClassVar[tuple[tuple[str, str], ...]]  # (limb, axis) of each target action, upstream's order
    action_strengths: ClassVar[tuple[str, ...]]  # the limb of each strength action, upstream's order
    camera_distance: ClassVar[float] = 9.0  # metres from the cube limb, for mode=watch
    max_decisions = MAX_DECISIONS

    def __init__(self, num_areas: int, seed: int, parameters: Mapping[str, float] | None, spec: BehaviorSpec) -> None:
        super().__init__(num_areas, seed, parameters, spec)
        n, c = self.n, self.creature
        cols = math.ceil(math.sqrt(n))
        grid = np.arange(n)
        self.origins = np.stack([grid % cols, grid // cols], axis=1).astype(float) * SPACING
        self.model = mujoco.MjModel.from_xml_string(scene_xml(c, self.origins))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.substeps = max(1, round(PHYSICS_DT / c.timestep))

        def ids(kind: mujoco.mjtObj, names: Sequence[str]) -> np.ndarray:
            return np.array([mujoco.mj_name2id(m, kind, name) for name in names], np.int64)

        parts = [[f"a{k}_{name}" for name in c.names] for k in range(n)]
        self.body = ids(mujoco.mjtObj.mjOBJ_BODY, [p for row in parts for p in row]).reshape(n, -1)
        self.target_body = ids(mujoco.mjtObj.mjOBJ_BODY, [f"a{k}_target" for k in range(n)])
        root_joint = ids(mujoco.mjtObj.mjOBJ_JOINT, [f"a{k}_root" for k in range(n)])
        target_joint = ids(mujoco.mjtObj.mjOBJ_JOINT, [f"a{k}_target" for k in range(n)])
        dof_names = [f"a{k}_{c.limbs[i].name}_{dof.name}" for k in range(n) for i, dof in c.dofs]
        hinge = ids(mujoco.mjtObj.mjOBJ_JOINT, dof_names).reshape(n, -1)
        self.qroot, self.vroot = m.jnt_qposadr[root_joint], m.jnt_dofadr[root_joint]
        self.qtarget, self.vtarget = m.jnt_qposadr[target_joint], m.jnt_dofadr[target_joint]
        self.qhinge, self.vhinge = m.jnt_qposadr[hinge], m.jnt_dofadr[hinge]
        self.actuator = ids(mujoco.mjtObj.mjOBJ_ACTUATOR, dof_names).reshape(n, -1)
        dofs = c.dofs
        self.dof_low = np.radians([d.low for _, d in dofs])
        self.dof_high = np.radians([d.high for _, d in dofs])
        self.joint_target = np.zeros(hinge.shape)  # radians, creature.dofs order (_apply writes MjData.ctrl)
        # Every geom's area and limb (-1: the target, -2: the ground / none).
        self.geom_area = np.full(m.ngeom, -1, np.int64)
        self.geom_part = np.full(m.ngeom, -2, np.int64)
        for k in range(n):
            for p in range(len(c.names)):
                g = m.body_geomadr[self.body[k, p]]
                self.geom_area[g], self.geom_part[g] = k, p
            g = m.body_geomadr[self.target_body[k]]
            self.geom_area[g], self.geom_part[g] = k, -1
        self.ground_geom = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "ground")
        self.ends_on_ground = np.array([limb.ground == "end" for limb in c.limbs])
        self.cube_index = c.names.index(self.cube_limb)
        self.jointed = np.array(c.jointed, np.int64)
        self.dof_limb = np.array([i for i, _ in c.dofs], np.int64)
        # Which joint (of ``jointed``) each hinge belongs to, for the strength actions.
        self.dof_joint = np.searchsorted(self.jointed, self.dof_limb)
        # Action columns -> hinges (creature.dofs order) and -> jointed limbs.
        dof_keys = [(c.limbs[i].name, dof.name) for i, dof in c.dofs]
        self.target_order = np.array([dof_keys.index(key) for key in self.action_targets], np.int64)
        joint_names = [c.names[i] for i in self.jointed]
        self.strength_order = np.array([joint_names.index(name) for name in self.action_strengths], np.int64)
        if sorted(self.target_order) != list(range(len(dof_keys))) or sorted(self.strength_order) != list(
            range(len(joint_names))
        ):
            raise ValueError(f"{type(self).__name__}: actions must cover every joint axis and joint once")
        self.rest_qpos = m.qpos0.copy()
        self.home = np.concatenate([self.origins, np.full((n, 1), c.height)], axis=1)  # the target's p0
        self.touching = np.zeros((n, len(c.names)), bool)
        self.strength = np.ones((n, len(self.jointed)))  # currentStrength / maxJointForceLimit
        self._renderer: mujoco.Renderer | None = None
        self._placed = False
        self.blowups = 0  # times MuJoCo found the scene unstable and reset it (every area restarted)

    # ------------------------------------------------------------------------------------------------
    # the joint drives (JointDriveController)
    # ------------------------------------------------------------------------------------------------

    def set_drives(self, rows: np.ndarray, targets: np.ndarray, strengths: np.ndarray) -> None:
        """Joint targets [m, dofs] and strengths [m, jointed] of the given areas: actions in [-1, 1], in
        upstream's action order (``action_targets``, ``action_strengths``)."""
        per_dof = np.empty_like(targets)
        per_dof[:, self.target_order] = targets
        per_joint = np.empty_like(strengths)
        per_joint[:, self.strength_order] = strengths
        u = (np.clip(per_dof, -1.0, 1.0) + 1.0) * 0.5
        self.joint_target[rows] = self.dof_low + (self.dof_high - self.dof_low) * u
        self.strength[rows] = (np.clip(per_joint, -1.0, 1.0) + 1.0) * 0.5
        self._apply(rows)

    def _apply(self, rows: np.ndarray) -> None:
        """The given areas' targets and strengths into MuJoCo: ctrl, and kp, kv scaled by the strength."""
        m, c = self.model, self.creature
        act = self.actuator[rows]
        self.data.ctrl[act] = self.joint_target[rows]
        scale = self.strength[rows][:, self.dof_joint]
        m.actuator_gainprm[act, 0] = scale * c.spring
        m.actuator_biasprm[act, 1] = -scale * c.spring
        m.actuator_biasprm[act, 2] = -scale * c.damping

    # ------------------------------------------------------------------------------------------------
    # NativeEnv hooks
    # ------------------------------------------------------------------------------------------------

    def _reset_areas(self, idx: np.ndarray) -> None:
        """OnEpisodeBegin: every limb back to its start pose at rest, the creature turned by a random yaw
        about its cube limb; drives relaxed to their rest targets at full strength."""
        d, m = self.data, self.model
        q = np.concatenate([self.qroot[idx, None] + np.arange(7), self.qhinge[idx]], axis=1)
        d.qpos[q] = self.rest_qpos[q]
        v = np.concatenate([self.vroot[idx, None] + np.arange(6), self.vhinge[idx]], axis=1)
        d.qvel[v] = 0.0
        yaw = yaw_quat(self._rng.uniform(0.0, 2.0 * math.pi, idx.size))
        root = self.qroot[idx]
        pivot = self.home[idx] + np.asarray(self.creature.limbs[self.cube_index].pos)
        pos = d.qpos[root[:, None] + np.arange(3)]
        d.qpos[root[:, None] + np.arange(3)] = pivot + quat_rotate(yaw, pos - pivot)
        d.qpos[root[:, None] + np.arange(3, 7)] = quat_mul(yaw, d.qpos[root[:, None] + np.arange(3, 7)])
        self.joint_target[idx] = 0.0
        self.strength[idx] = 1.0
        self._apply(idx)
        if not self._placed:  # the targets' first placement (TargetController.OnEnable)
            self._placed = True
            self._move_targets(np.arange(self.n))
        mujoco.mj_forward(m, d)
        self._read_contacts()

    def _move_targets(self, idx: np.ndarray) -> None:
        """New target positions: p0 plus a uniform point in a ball of SPAWN_RADIUS, at p0's height."""
        if idx.size == 0:
            return
        d = self.data
        ball = self._rng.normal(size=(idx.size, 3))
        ball *= (SPAWN_RADIUS * self._rng.uniform(size=(idx.size, 1)) ** (1 / 3)) / np.linalg.norm(
            ball, axis=1, keepdims=True
        )
        pos = self.home[idx] + ball
        pos[:, 2] = self.home[idx, 2]
        q = self.qtarget[idx, None]
        d.qpos[q + np.arange(3)] = pos
        d.qpos[q + np.arange(3, 7)] = (1.0, 0.0, 0.0, 0.0)
        d.qvel[self.vtarget[idx, None] + np.arange(6)] = 0.0

    def _read_contacts(self) -> np.ndarray:
        """Update ``touching`` from the current contacts; returns which areas' targets their agent touches."""
        d = self.data
        self.touching[:] = False
        touched = np.zeros(self.n, bool)
        if d.ncon == 0:
            return touched
        g1 = d.contact.geom1[: d.ncon]
        g2 = d.contact.geom2[: d.ncon]
        for a, b in ((g1, g2), (g2, g1)):
            on_ground = (a == self.ground_geom) & (self.geom_part[b] >= 0)
            self.touching[self.geom_area[b[on_ground]], self.geom_part[b[on_ground]]] = True
            hits = (self.geom_part[a] == -1) & (self.geom_part[b] >= 0) & (self.geom_area[a] == self.geom_area[b])
            touched[self.geom_area[a[hits]]] = True
        return touched

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        m, d = self.model, self.data
        reward = np.zeros(self.n)
        done = np.zeros(self.n, bool)
        unstable = d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number
        for _ in range(DECISION_PERIOD):
            touched = np.zeros(self.n, bool)
            for _ in range(self.substeps):
                mujoco.mj_step(m, d)
                touched |= self._read_contacts()  # a hit during the step counts (OnCollisionEnter)
            if d.warning[mujoco.mjtWarning.mjWARN_BADQACC].number != unstable:
                return self._blown_up()
            mujoco.mj_forward(m, d)  # kinematics and contacts of the state the step reached
            touched |= self._read_contacts()
            fallen = d.xpos[self.target_body, 2] < self.home[:, 2] - FALL_DISTANCE
            moved = np.flatnonzero(touched | fallen)
            if moved.size:
                self._move_targets(moved)
                mujoco.mj_forward(m, d)
            step = self._physics_reward()
            ends = (self.touching & self.ends_on_ground).any(axis=1) & ~done
            step[ends] = -1.0
            reward += np.where(done, 0.0, step)
            done |= ends
        done |= self._decision_end()
        return reward.astype(F32), done

    def _blown_up(self) -> tuple[np.ndarray, np.ndarray]:
        """MuJoCo reset the whole scene (its answer to a diverging step): every episode is cut short as an
        interruption, with no reward for this decision, and restarts; counted in ``blowups``."""
        self.blowups += 1
        log.warning(
            "%s: MuJoCo found the scene unstable and reset it (%d so far); every episode was interrupted",
            type(self).__name__,
            self.blowups,
        )
        self._steps[:] = max(self.max_decisions, 1)  # the base class then ends them all as interrupted
        self._move_targets(np.arange(self.n))
        self._apply(np.arange(self.n))  # MuJoCo's reset zeroed ctrl: restore this decision's drives
        mujoco.mj_forward(self.model, self.data)
        self._read_contacts()
        return np.zeros(self.n, F32), np.zeros(self.n, bool)

    def _observe(self) -> list[np.ndarray]:
        return self._observations(np.arange(self.n))

    def _restart_observations(self, idx: np.ndarray) -> list[np.ndarray]:
        return self._observations(idx)

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        rows = np.arange(self.n) if rows is None else rows
        dofs = len(self.creature.dofs)
        self.set_drives(rows, continuous[:, :dofs], continuous[:, dofs:])

    # ------------------------------------------------------------------------------------------------
    # for the ports
    # ------------------------------------------------------------------------------------------------

    def _physics_reward(self) -> np.ndarray:
        """This physics step's reward of every area [n] (before the ground-contact rule)."""
        raise NotImplementedError

    def _decision_end(self) -> np.ndarray:
        """Episodes the task ends at a decision (beyond ground contact) [n] bool."""
        return np.zeros(self.n, bool)

    def _observations(self, rows: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def part_velocities(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World linear velocity of each limb's centre of mass and its angular velocity, [m, parts, 3] each."""
        d, m = self.data, self.model
        body = self.body[rows]
        cvel = d.cvel[body]  # (angular, linear) at the subtree centre of the body's root
        offset = d.xipos[body] - d.subtree_com[m.body_rootid[body]]
        ang = cvel[..., :3]
        return cvel[..., 3:] + np.cross(ang, offset), ang

    def cube(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The orientation cube of the given areas: position [m, 3], forward [m, 3] (horizontal unit,
        towards the target) and rotation (w, x, y, z) [m, 4] (a yaw: its up is world up)."""
        pos = self.data.xpos[self.body[rows, self.cube_index]]
        forward = horizontal_unit(self.data.xpos[self.target_body[rows]] - pos)
        yaw = np.arctan2(forward[:, 1], forward[:, 0])
        return pos, forward, yaw_quat(yaw)

    def target_position(self, rows: np.ndarray) -> np.ndarray:
        return self.data.xpos[self.target_body[rows]].copy()

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Each area's creature and target seen by MuJoCo's offscreen renderer, uint8 [m, H, W, 3]."""
        rows = np.arange(self.n) if areas is None else np.asarray(areas)
        if self._renderer is None:
            try:
                self._renderer = mujoco.Renderer(self.model, *RENDER_SIZE)
            except Exception as exc:  # no OpenGL: say how to get one
                raise EnvError(
                    f"MuJoCo cannot render here ({exc}); set MUJOCO_GL=egl (GPU/EGL) or MUJOCO_GL=osmesa (software) "
                    "before starting mlx"
                ) from exc
            self._renderer.update_scene(self.data)
            self._renderer.render()  # a new context's first picture came out different from the later ones
        camera = mujoco.MjvCamera()
        # looking down steeply enough that the horizon stays out of the picture (MuJoCo drew it unsteadily)
        camera.distance, camera.elevation, camera.azimuth = self.camera_distance, -40.0, 135.0
        pictures = np.zeros((rows.size, *RENDER_SIZE, 3), np.uint8)
        for i, k in enumerate(rows):  # one camera per area: a picture each
            camera.lookat[:] = self.data.xpos[self.body[k, self.cube_index]]
            self._renderer.update_scene(self.data, camera)
            pictures[i] = self._renderer.render()
        return pictures

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().close()


def speed_reward(v: np.ndarray, goal: np.ndarray, speed: np.ndarray | float) -> np.ndarray:
    """Velocity match in [0, 1]: (1 - (min(|v - goal|, S) / S)^2)^2 (upstream GetMatchingVelocityReward)."""
    d = np.minimum(np.linalg.norm(v - goal, axis=-1), speed)
    return (1.0 - (d / speed) ** 2) ** 2


def look_reward(cube_forward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Facing the target in [0, 1]: (cube.forward . forward + 1) / 2."""
    return (np.sum(cube_forward * forward, axis=-1) + 1.0) * 0.5


def to_cube(v: np.ndarray, cube_forward: np.ndarray) -> np.ndarray:
    """World vectors [m, ..., 3] in the cube's frame, MuJoCo axes (forward, left, up); cube_forward [m, 3]."""
    f = cube_forward.reshape(cube_forward.shape[0], *([1] * (v.ndim - 2)), 3)
    left = np.stack([-f[..., 1], f[..., 0], np.zeros_like(f[..., 0])], axis=-1)
    return np.stack([np.sum(v * f, -1), np.sum(v * left, -1), v[..., 2]], axis=-1)


def ground_ray(height: np.ndarray) -> np.ndarray:
    """The downward 10 m ray of Crawler and Worm on a flat floor: distance / 10, or 1 beyond 10 m."""
    return np.where(height < 10.0, np.maximum(height, 0.0) / 10.0, 1.0)


TARGET_SIZE = 2 * TARGET_HALF

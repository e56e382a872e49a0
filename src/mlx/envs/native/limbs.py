"""Body-part tables to MuJoCo scenes: the JointDriveController of ML-Agents' walkers, on MuJoCo.

ML-Agents' Crawler, Walker and Worm are chains of rigid bodies joined by ConfigurableJoints whose slerp
drives pull each joint towards a target rotation (SharedAssets JointDriveController.cs). A port describes
its creature as a table of ``Limb`` rows (shape, mass, parent, joint axes and limits, what touching the
ground does) and this module builds the MJCF of a scene holding many copies of it, plus the index arrays
that let the env read and write every copy at once with numpy.

Conventions. MuJoCo is right-handed with z up; Unity is left-handed with y up. Tables are written in
MuJoCo axes with the creature's forward along +x, left +y, up +z (Unity's +z, -x, +y). Observations are
converted back to Unity's axes (``to_unity_vec``, ``to_unity_quat``) so their layout and signs read as
upstream's. A ``Dof``'s hinge axis is given in MuJoCo axes; a port derives it from the prefab's joint axes
(ConfigurableJoint axis = X, secondary axis = Y, their cross product = Z). The same numbers mean a mirrored
axis in the other engine, and PhysX measures a joint's angle as the connected body's turn relative to the
jointed one; with both, a Unity joint axis a becomes the hinge axis (a_z, -a_x, a_y), and the Walker's
limits then bend knees and elbows the human way (walker.py).

Joint drive (JointDriveController.SetJointTargetRotation / SetJointStrength): an action in [-1, 1] maps to
u = (a + 1) / 2; the X target is lerp(low, high, u), Y and Z lerp(-limit, +limit, u), in degrees. The
slerp drive (spring maxJointSpring, damper jointDampen on the rotation error) becomes one MuJoCo position
actuator per free axis, kp = spring and kv = damper + spring * 0.02: PhysX integrates a drive's spring
implicitly, which over its 0.02 s step acts as that much extra damping, and ``implicitfast`` integrates kv
implicitly too, so the stiff drives stay stable. The strength action s in [-1, 1] sets upstream's maximum
force (s + 1) / 2 * maxJointForceLimit; here the fraction (s + 1) / 2 scales the drive's kp and kv
instead. Measured: a force cap on these stiff actuators is an explicit bang-bang force on a light limb and
blew the scene up within a few steps, as did torques computed outside MuJoCo (implicitly, then capped)
for the Walker's light spine. Per-axis drives approximate PhysX's slerp drive, which acts on the whole
rotation error at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Vec = tuple[float, float, float]
Shape = Literal["capsule", "sphere", "box"]
Ground = Literal["touch", "end"]  # "end": touching the ground ends the episode with reward -1 (GroundContact)

# Every geometry's material: Unity's default physics material (friction 0.6, no bounce).
FRICTION = 0.6
TARGET_HALF = 1.2357 / 2  # DynamicTarget.prefab: a cube of scale 1.2357
TARGET_MASS = 1.0
PHYSICS_DT = 0.02  # Unity's fixedDeltaTime in the walker scenes


@dataclass(frozen=True)
class Dof:
    """One driven axis of a joint: Unity's X (limits low..high) or Y / Z (+-limit), in degrees."""

    name: Literal["x", "y", "z"]
    axis: Vec  # hinge axis in the creature's rest frame (MuJoCo axes, sign as in the module doc)
    low: float
    high: float


@dataclass(frozen=True)
class Limb:
    """One body part at rest, in the creature's frame (MuJoCo axes, metres; the creature's root at 0).

    ``size``: capsule (radius, half length of the cylinder), sphere (radius,), box (half extents).
    ``axis``: a capsule's long axis. ``anchor``: where its joint to ``parent`` sits; ``dofs``: the driven
    axes of that joint (the hinges are chained in Unity's Euler order, Y then X then Z); none welds the
    limb to its parent (the Walker's hands), and the root has none.
    """

    name: str
    parent: str | None
    shape: Shape
    size: tuple[float, ...]
    pos: Vec
    mass: float
    axis: Vec = (1.0, 0.0, 0.0)
    anchor: Vec = (0.0, 0.0, 0.0)
    dofs: tuple[Dof, ...] = ()
    ground: Ground = "touch"
    offset: Vec = (0.0, 0.0, 0.0)  # the collider's centre from the body's origin (Unity's collider center)


@dataclass(frozen=True)
class Creature:
    """A walker's body-part table and its JointDriveController settings."""

    limbs: tuple[Limb, ...]  # registration order (= upstream's bodyPartsList order = observation order)
    spring: float  # maxJointSpring
    damper: float  # jointDampen
    max_force: float  # maxJointForceLimit
    height: float  # the root's height above the ground at rest
    timestep: float = 0.02  # MuJoCo's step; a physics step of 0.02 s is 0.02 / timestep of them
    integrator: str = "implicitfast"  # see the creature's module for why
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(limb.name for limb in self.limbs))
        roots = [limb for limb in self.limbs if limb.parent is None]
        if len(roots) != 1 or any(limb.parent not in (None, *self.names) for limb in self.limbs):
            raise ValueError("a creature has one root limb (parent None) and every other limb's parent is a limb")

    @property
    def root(self) -> Limb:
        return next(limb for limb in self.limbs if limb.parent is None)

    @property
    def damping(self) -> float:
        """The drives' kv: jointDampen plus the damping PhysX's implicit spring adds over its 0.02 s step."""
        return self.damper + self.spring * PHYSICS_DT

    @property
    def dofs(self) -> list[tuple[int, Dof]]:
        """Every driven axis as (limb index, Dof), in table order."""
        return [(i, dof) for i, limb in enumerate(self.limbs) for dof in limb.dofs]

    @property
    def jointed(self) -> list[int]:
        """The limbs that have a joint drive (and so a strength), in table order."""
        return [i for i, limb in enumerate(self.limbs) if limb.dofs]


def _fmt(values: tuple[float, ...] | np.ndarray) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _geom(limb: Limb, name: str, bits: tuple[int, int]) -> str:
    common = (
        f'name="{name}" mass="{limb.mass:.6g}" friction="{FRICTION} 0.005 0.0001" '
        f'contype="{bits[0]}" conaffinity="{bits[1]}"'
    )
    at = np.asarray(limb.offset, float)
    if limb.shape == "sphere":
        return f'<geom type="sphere" size="{limb.size[0]:.6g}" pos="{_fmt(at)}" {common}/>'
    if limb.shape == "box":
        return f'<geom type="box" size="{_fmt(limb.size)}" pos="{_fmt(at)}" {common}/>'
    half = np.asarray(limb.axis, float) / np.linalg.norm(limb.axis) * limb.size[1]
    return f'<geom type="capsule" size="{limb.size[0]:.6g}" fromto="{_fmt(at - half)} {_fmt(at + half)}" {common}/>'


def scene_xml(creature: Creature, origins: np.ndarray) -> str:
    """The MJCF of one scene: a copy of ``creature`` and its target at each of ``origins`` [A, 2] (x, y).

    Copies collide with the ground, themselves and their own target only (collision bit 1 + a % 30), so
    areas never touch each other; their names are ``a<k>_<limb>``, ``a<k>_target``.
    """
    limbs = creature.limbs
    children: dict[str | None, list[Limb]] = {}
    for limb in limbs:
        children.setdefault(limb.parent, []).append(limb)
    parts: list[str] = []
    actuators: list[str] = []

    def body(limb: Limb, k: int, parent_pos: np.ndarray, bits: tuple[int, int]) -> None:
        pos = np.asarray(limb.pos, float)
        parts.append(f'<body name="a{k}_{limb.name}" pos="{_fmt(pos - parent_pos)}">')
        if limb.parent is None:
            parts.append(f'<freejoint name="a{k}_root"/>')
        for dof in sorted(limb.dofs, key=lambda dof: "yxz".index(dof.name)):  # Unity's Euler order: Y(X(Z))
            joint = f"a{k}_{limb.name}_{dof.name}"
            anchor = np.asarray(limb.anchor, float) - pos
            parts.append(
                f'<joint name="{joint}" type="hinge" axis="{_fmt(dof.axis)}" pos="{_fmt(anchor)}" '
                f'range="{dof.low:.6g} {dof.high:.6g}" limited="true"/>'
            )
            actuators.append(
                f'<position name="{joint}" joint="{joint}" kp="{creature.spring:.6g}" kv="{creature.damping:.6g}"/>'
            )
        parts.append(_geom(limb, f"a{k}_{limb.name}", bits))
        for child in children.get(limb.name, []):
            body(child, k, pos, bits)
        parts.append("</body>")

    for k, (x, y) in enumerate(np.asarray(origins, float)):
        bit = 1 << (1 + k % 30)
        bits = (bit, bit | 1)
        # The root is a top-level body (MuJoCo's free joints need that), placed at the area's origin.
        body(creature.root, k, -np.array([x, y, creature.height]), bits)
        parts.append(
            f'<body name="a{k}_target" pos="{x:.6g} {y:.6g} {TARGET_HALF:.6g}"><freejoint name="a{k}_target"/>'
            f'<geom type="box" size="{TARGET_HALF:.6g} {TARGET_HALF:.6g} {TARGET_HALF:.6g}" mass="{TARGET_MASS}" '
            f'friction="{FRICTION} 0.005 0.0001" contype="{bit}" conaffinity="{bit | 1}" rgba="0.2 0.8 0.3 1"/></body>'
        )
    return f"""<mujoco model="walkers">
  <compiler angle="degree" autolimits="true"/>
  <option timestep="{creature.timestep:.6g}" integrator="{creature.integrator}"/>
  <visual><global offwidth="640" offheight="480"/></visual>
  <worldbody>
    <light directional="true" pos="0 0 30" dir="0 -0.3 -1"/>
    <!-- a plain floor: MuJoCo drew a textured one differently depending on the previous picture -->
    <geom name="ground" type="plane" size="0 0 1" rgba="0.3 0.3 0.32 1" friction="{FRICTION} 0.005 0.0001"
      contype="1" conaffinity="1"/>
    {"".join(parts)}
  </worldbody>
  <actuator>{"".join(actuators)}</actuator>
</mujoco>"""


# ------------------------------------------------------------------------------------------------
# Unity axes and quaternions, vectorised over any leading shape
# ------------------------------------------------------------------------------------------------


def to_unity_vec(v: np.ndarray) -> np.ndarray:
    """A vector in MuJoCo axes (forward x, left y, up z) in Unity's (right, up, forward)."""
    return np.stack([-v[..., 1], v[..., 2], v[..., 0]], axis=-1)


def to_unity_pseudo(w: np.ndarray) -> np.ndarray:
    """An angular velocity (a pseudovector) in MuJoCo axes in Unity's axes and handedness."""
    return np.stack([w[..., 1], -w[..., 2], -w[..., 0]], axis=-1)


def to_unity_quat(q: np.ndarray) -> np.ndarray:
    """A MuJoCo quaternion (w, x, y, z) as Unity writes the same rotation: (x, y, z, w), w >= 0."""
    q = np.where(q[..., :1] < 0, -q, q)
    return np.stack([q[..., 2], -q[..., 3], -q[..., 1], q[..., 0]], axis=-1)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton products a * b of (w, x, y, z) quaternions."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectors v rotated by unit quaternions q (broadcast)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def yaw_quat(angle: np.ndarray) -> np.ndarray:
    """Rotations about the vertical axis by ``angle`` radians, (w, x, y, z)."""
    half = np.asarray(angle, float) * 0.5
    z = np.zeros_like(half)
    return np.stack([np.cos(half), z, z, np.sin(half)], axis=-1)


def from_to_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Unity's Quaternion.FromToRotation(a, b) for unit vectors in MuJoCo axes, written as Unity's (x, y, z, w).

    The shortest-arc rotation, computed on the vectors' Unity coordinates (quaternion maths is the same
    arithmetic in both engines; only the axes' meaning differs).
    """
    au, bu = to_unity_vec(a), to_unity_vec(b)
    axis = np.cross(au, bu)
    w = 1.0 + np.sum(au * bu, axis=-1, keepdims=True)
    q = np.concatenate([axis, w], axis=-1)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    opposite = norm[..., 0] < 1e-9
    if np.any(opposite):  # a = -b: half a turn about up (Unity picks some perpendicular axis)
        q[opposite] = (0.0, 1.0, 0.0, 0.0)
        norm[opposite] = 1.0
    return q / norm


def rotation_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Quaternion.Angle(a, b) in degrees (0..180) between rotations given as (w, x, y, z)."""
    dot = np.abs(np.sum(a * b, axis=-1))
    return np.degrees(2.0 * np.arccos(np.clip(dot, 0.0, 1.0)))


def horizontal_unit(v: np.ndarray) -> np.ndarray:
    """v with its vertical part removed, normalised (zero stays zero: Unity's LookRotation identity case
    is handled by the caller)."""
    flat = v.copy()
    flat[..., 2] = 0.0
    norm = np.linalg.norm(flat, axis=-1, keepdims=True)
    return np.where(norm > 1e-9, flat / np.maximum(norm, 1e-9), np.array([1.0, 0.0, 0.0]))

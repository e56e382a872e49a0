"""The camera of the 3DBall scene: Visual3DBall's CameraSensor, and 3DBall's pictures for people.

The camera is the Visual3DBall prefab's: a child of the area at (0, 7, -8) from the platform centre, pitched
down 30 degrees about x, perspective with a 60 degree vertical field of view. The sensor renders at full
viewport (ML-Agents resets the camera rect before rendering), so the aspect is 1 and the horizontal
field is 60 degrees too. It clears to black, which is also all it sees around the platform.

The picture is ray cast for every pixel, for all areas at once: each pixel's ray (fixed, as the camera
does not move with the platform) is intersected with the platform cube (5 m, rotated: the face of each
axis that faces the camera, tested in the cube's frame) and with the ball (radius 0.5 * ``scale`` of
the area's episode), and the nearer hit is shown, so a ball behind or below the platform is hidden.
How it approximates Unity's render: geometry, camera and occlusion are exact (one sample per pixel
centre, no anti-aliasing), but the surfaces are flat colours (a blue platform for the AgentCube_Blue
model, without its face details, and a light grey ball for its texture) lit by the scene's directional
light (the direction of its rotation in Visual3DBall.unity) with Lambert shading plus a constant
ambient term: no shadows, no specular. Colours are stored as 8-bit values (multiples of 1/255), as the
sensor's render texture holds them.

Every ray test is an affine function of the pixel coordinates (see Renderer), evaluated over the box
bounding the projected cubes (the ball: a window around its projection), in chunks of areas sized for the
CPU cache, each a fixed sequence of array operations over (areas x pixels); no Python loop runs per area
or per pixel.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

HALF_SIZE = 2.5  # the platform cube's half width (a 5 m cube; mlx.envs.native.ball3d simulates it)
SIZE = 84  # Visual3DBall's CameraSensor width and height
CHANNELS = 3

CAMERA_POSITION = np.array([0.0, 7.0, -8.0])  # from the platform centre, world axes
CAMERA_PITCH_DEG = 30.0  # rotation about x: looks down toward +z
VERTICAL_FOV_DEG = 60.0
_PITCH = math.radians(CAMERA_PITCH_DEG)
CAMERA_RIGHT = np.array([1.0, 0.0, 0.0])
CAMERA_UP = np.array([0.0, math.cos(_PITCH), math.sin(_PITCH)])
CAMERA_FORWARD = np.array([0.0, -math.sin(_PITCH), math.cos(_PITCH)])
_TAN_HALF_FOV = math.tan(math.radians(VERTICAL_FOV_DEG) / 2)

# Toward the scene's directional light (minus its forward axis; rotation (0.316, -0.360, 0.131, 0.868)).
LIGHT = np.array([0.5417, 0.6428, -0.5416]) / np.linalg.norm([0.5417, 0.6428, -0.5416])
AMBIENT, DIFFUSE = 0.35, 0.65
PLATFORM_COLOUR = np.array([0.16, 0.38, 0.92])
BALL_COLOUR = np.array([0.86, 0.86, 0.86])
_CHUNK_PIXELS = 16 * SIZE * SIZE  # areas x pixels per chunk: float32 arrays of <= 450 kB, within the L2 cache

_F32 = np.float32


def project(points: np.ndarray, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) in pixel units (row 0 at the top edge, col 0 at the left) of points [..., 3] given
    relative to the platform centre: the camera's perspective projection onto a size x size image."""
    rel = np.asarray(points, np.float64) - CAMERA_POSITION
    depth = rel @ CAMERA_FORWARD
    scale = (size / 2) / (_TAN_HALF_FOV * depth)
    return size / 2 - (rel @ CAMERA_UP) * scale, size / 2 + (rel @ CAMERA_RIGHT) * scale


def _pixel_coordinates(size: int = SIZE) -> np.ndarray:
    """Camera-plane coordinate of the pixel centres along a row or column, at unit depth: [size]. The ray
    through pixel (row i, col j) is forward + c[j] * right - c[i] * up."""
    return (np.arange(size) + 0.5 - size / 2) / (size / 2) * _TAN_HALF_FOV


def rotation_matrices(q: np.ndarray) -> np.ndarray:
    """Rotation matrices [m, 3, 3] (columns: images of the local axes) of unit quaternions (x, y, z, w)."""
    x, y, z, w = np.asarray(q, np.float64).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def _affine(coef: np.ndarray, u: np.ndarray, v: np.ndarray, dtype: type = _F32) -> np.ndarray:
    """Evaluate per-area affine functions c0 + cu * u + cv * v of the pixel coordinates on an image grid.

    coef [m, 3] holds (c0, cu, cv); u [m or 1, cols] and v [m or 1, rows] the pixel coordinates. Rays
    are affine in (u, v) (d = forward + u * right + v * up), so every linear function of the ray, in any
    frame, is one of these: one broadcast addition of a row term and a column term, [m, rows, cols].
    """
    rows = coef[:, 0, None] + coef[:, 2, None] * v  # [m, rows]
    cols = coef[:, 1, None] * u  # [m, cols]
    return np.add(rows.astype(dtype)[:, :, None], cols.astype(dtype)[:, None, :])


class Renderer:
    """Draws the camera image of platforms and balls, for many areas at once (see the module doc).

    Rays are never built per pixel: every quantity the ray tests need is linear in the ray, so affine in
    the pixel coordinates, and is evaluated as one broadcast addition (_affine). The platform test runs
    over the box bounding the chunk's projected cubes, the ball test over a window around each ball.
    ``size`` is the image's width and height: the sensor's 84, or larger for watching a policy (mlx.modes.watch).
    """

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self.coords = _pixel_coordinates(size)  # [size]
        self.u = self.coords[None, :]  # column coordinate, rightward
        self.v = -self.coords[None, :]  # row coordinate, upward
        self.basis = np.stack([CAMERA_FORWARD, CAMERA_RIGHT, CAMERA_UP])  # [3 (const, u, v), 3 xyz]
        self.chunk = max(1, _CHUNK_PIXELS // (size * size))
        self.focal = (size / 2) / _TAN_HALF_FOV  # pixels per unit of camera-plane coordinate
        self.corners = HALF_SIZE * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])

    def render(
        self, rotation: np.ndarray, ball: np.ndarray, radius: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """uint8 images [m, size, size, 3] of platforms rotated by quaternions (x, y, z, w) [m, 4] with balls at
        ``ball`` [m, 3] (from the platform centre) of radius [m], written into ``out`` when given (any
        strides: the env renders straight into its frame stack)."""
        m = len(rotation)
        if out is None:
            out = np.empty((m, self.size, self.size, CHANNELS), np.uint8)
        rot = rotation_matrices(rotation)
        ball = np.asarray(ball, np.float64)
        radius = np.asarray(radius, np.float64)
        for start in range(0, m, self.chunk):  # chunks of areas, each array small enough for the cache
            part = slice(start, min(m, start + self.chunk))
            faces = self._platform(rot[part], out[part])
            self._ball(faces, ball[part], radius[part], out[part])
        return out

    def _platform(self, rot: np.ndarray, out: np.ndarray) -> list[tuple[np.ndarray, ...]]:
        """Draw the platforms (black elsewhere) into out [m, size, size, 3]; return their faces' ray tests.

        A ray enters the cube through the face of axis k on the camera's side (only when the camera is
        outside that slab) iff the entry point t_k = c_k / dl_k (c_k = s_k h - o_k, o the camera and dl
        the ray in cube coordinates) is ahead and within the face: |o_j dl_k + c_k dl_j| <= -s_k h dl_k
        for both other axes j. All three sides are affine in the pixel coordinates. Faces seen from
        outside a convex body do not overlap, so each pixel shows at most one.
        """
        m = len(rot)
        h, size = HALF_SIZE, self.size
        rot_t = rot.transpose(0, 2, 1)
        o = rot_t @ CAMERA_POSITION  # [m, 3] camera in cube coordinates
        dl = np.einsum("mij,aj->mia", rot_t, self.basis)  # [m, axis, (const, u, v)]: the ray, per axis
        facing = np.einsum("mjk,j->mk", rot, LIGHT)  # [m, axis]: the +k face normal . L
        side = np.where(o >= 0, 1.0, -1.0)  # s_k: the face of axis k on the camera's side
        shade = AMBIENT + DIFFUSE * np.maximum(side * facing, 0.0)  # [m, axis]
        colour = np.rint(255 * shade[:, :, None] * PLATFORM_COLOUR).astype(np.uint8)  # [m, axis, rgb]
        # Only the box around the chunk's silhouettes (the hulls of their projected corners) is tested.
        row, col = project(np.einsum("mij,cj->mci", rot, self.corners), size)
        r0, r1 = max(0, int(np.floor(row.min()))), min(size, int(np.ceil(row.max())) + 1)
        c0, c1 = max(0, int(np.floor(col.min()))), min(size, int(np.ceil(col.max())) + 1)
        u, v = self.u[:, c0:c1], self.v[:, r0:r1]
        faces = []
        seen = np.zeros((3, m, r1 - r0, c1 - c0), bool)
        for k in range(3):
            j1, j2 = [j for j in range(3) if j != k]
            c = side[:, k] * h - o[:, k]
            bound = -(side[:, k] * h)[:, None] * dl[:, k]
            bound[np.abs(o[:, k]) <= h] = (-1.0, 0.0, 0.0)  # camera inside this slab: no face to enter
            a1 = o[:, j1, None] * dl[:, k] + c[:, None] * dl[:, j1]
            a2 = o[:, j2, None] * dl[:, k] + c[:, None] * dl[:, j2]
            reach = np.fmax(np.abs(_affine(a1, u, v)), np.abs(_affine(a2, u, v)))
            np.less_equal(reach, _affine(bound, u, v), out=seen[k])
            faces.append((c, bound, a1, a2))
        out[:, :r0] = 0
        out[:, r1:] = 0
        out[:, r0:r1, :c0] = 0
        out[:, r0:r1, c1:] = 0
        box = out[:, r0:r1, c0:c1]
        for ch in range(CHANNELS):
            acc = np.multiply(seen[0], colour[:, 0, ch, None, None])
            for k in (1, 2):
                np.maximum(acc, np.multiply(seen[k], colour[:, k, ch, None, None]), out=acc)
            box[..., ch] = acc
        return [(f, dl[:, k]) for k, f in enumerate(faces)]

    def _ball(self, faces: list, ball: np.ndarray, radius: np.ndarray, out: np.ndarray) -> None:
        """Draw the balls over out where they are in front of the platform, in a window around each."""
        m, full = len(ball), self.size
        rel = ball - CAMERA_POSITION  # [m, 3] sphere centre from the camera
        depth = rel @ CAMERA_FORWARD
        # Window: a bound on the projected radius (a sphere off the axis projects to a stretched ellipse).
        near = np.maximum(depth - radius, 1e-3)
        reach = 1.8 * self.focal * radius / near + 2
        size = int(min(full, 2 * np.ceil(reach.max()) + 1))
        row, col = project(ball, full)
        r0 = np.clip(np.round(row).astype(np.int64) - size // 2, 0, full - size)
        c0 = np.clip(np.round(col).astype(np.int64) - size // 2, 0, full - size)
        span = np.arange(size)
        u = self.coords[c0[:, None] + span]  # [m, size]
        v = -self.coords[r0[:, None] + span]
        f64 = np.float64
        # Ray-sphere with d = forward + u right + v up: |d|^2 = 1 + u^2 + v^2, b = d . rel.
        b = _affine(rel @ self.basis.T, u, v, f64)
        dd = (1 + v * v)[:, :, None] + (u * u)[:, None, :]
        disc = b * b - dd * (np.einsum("mk,mk->m", rel, rel) - radius**2)[:, None, None]
        t = (b - np.sqrt(np.maximum(disc, 0))) / dd
        visible = (disc > 0) & (t > 0)
        for (c, bound, a1, a2), dlk in faces:  # hidden where the platform is nearer
            on = np.fmax(np.abs(_affine(a1, u, v, f64)), np.abs(_affine(a2, u, v, f64))) <= _affine(bound, u, v, f64)
            with np.errstate(divide="ignore", invalid="ignore"):
                t_face = c[:, None, None] / _affine(dlk, u, v, f64)
            visible &= ~(on & (t_face < t))
        # Lambert: normal . L = (t d . L - rel . L) / r.
        cos = t * _affine((self.basis @ LIGHT)[None, :].repeat(m, 0), u, v, f64) - (rel @ LIGHT)[:, None, None]
        cos /= radius[:, None, None]
        shade = AMBIENT + DIFFUSE * np.maximum(cos, 0.0)
        colour = np.rint(255 * shade[..., None] * BALL_COLOUR).astype(np.uint8)  # [m, size, size, 3]
        s0, s1, s2, s3 = out.strides
        windows = as_strided(out, (m, full - size + 1, full - size + 1, size, size, CHANNELS), (s0, s1, s2, s1, s2, s3))
        areas = np.arange(m)
        current = windows[areas, r0, c0]
        windows[areas, r0, c0] = np.where(visible[..., None], colour, current)

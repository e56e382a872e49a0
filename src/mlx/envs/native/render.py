"""Pictures of native envs for people: the drawing pieces behind ``BaseEnv.render``.

``python -m mlx mode=watch`` (mlx.modes.watch) turns a trained policy's play into a GIF or MP4 from
``env.render(areas)``: uint8 RGB [m, H, W, 3], one picture per area in its current state. These are
pictures, not observations: nothing here runs when an env steps, and envs with a camera sensor
(GridWorld, Visual3DBall) reuse their sensor's drawing rather than a second one.

This module holds what several envs share: ``Canvas``, a flat orthographic view of a rectangle of a
plane that paints rounded boxes (circles, boxes) for all areas at once (the top-down views of the arena
envs and WallJump's two views), and a colour per ML-Agents tag, so a block, a goal or a wall looks the
same in every env. Each paint is a few array operations over (areas x pixels of the shape's box).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

RGB = tuple[int, int, int]

# Colours of the tags the example envs use (chosen, not Unity's materials); other tags get a stable
# colour from their name (tag_colour).
TAG_COLOURS: dict[str, RGB] = {
    "agent": (45, 105, 235),
    "block": (235, 145, 35),
    "goal": (45, 190, 75),
    "wall": (150, 150, 150),
    "stone": (125, 105, 85),
    "switchOff": (205, 45, 45),
    "switchOn": (250, 220, 60),
    "symbol_O": (30, 200, 210),
    "symbol_O_Goal": (20, 130, 140),
    "symbol_X": (225, 70, 205),
    "symbol_X_Goal": (145, 45, 135),
    # DungeonEscape: the door apart from the agents' blue, the key as gold, the dragon red, its cave dark.
    "dragon": (215, 40, 40),
    "key": (250, 210, 40),
    "lock": (150, 90, 40),
    "portal": (95, 40, 130),
    # PushBlockCollab's blocks by size, lighter to darker orange.
    "blockSmall": (250, 190, 90),
    "blockLarge": (235, 145, 35),
    "blockVeryLarge": (190, 100, 20),
    # FoodCollector: green food, red bad food, frozen agents pale blue.
    "food": (80, 215, 60),
    "badFood": (225, 55, 55),
    "frozenAgent": (160, 200, 245),
}
UNTAGGED: RGB = (110, 110, 110)
FLOOR: RGB = (62, 62, 66)
VOID: RGB = (18, 18, 24)  # beyond the floor (where things fall)
HEADING: RGB = (255, 255, 255)  # the dot that shows where an agent faces


def tag_colour(tag: str | None) -> RGB:
    """The colour of a tag: TAG_COLOURS, else a bright hue from a hash of the name (stable across runs)."""
    if tag is None:
        return UNTAGGED
    if tag in TAG_COLOURS:
        return TAG_COLOURS[tag]
    hue = (zlib.crc32(tag.encode()) % 360) / 60.0
    x = 1 - abs(hue % 2 - 1)
    r, g, b = [(1, x, 0), (x, 1, 0), (0, 1, x), (0, x, 1), (x, 0, 1), (1, 0, x)][int(hue) % 6]
    return (int(60 + 180 * r), int(60 + 180 * g), int(60 + 180 * b))


def palette(tags: Sequence[str]) -> np.ndarray:
    """uint8 [len(tags) + 1, 3]: row 0 for untagged (id -1), then one row per tag id; index with id + 1."""
    return np.array([UNTAGGED, *(tag_colour(t) for t in tags)], np.uint8)


class Canvas:
    """An orthographic view of the rectangle ``window`` = (a0, b0, a1, b1) of a plane: coordinate a grows
    to the right, b upwards (row 0 is b1). ``scale`` is metres per pixel; by default the longer side of
    the window spans ``pixels`` pixels. Pixels show what covers their centre (no anti-aliasing)."""

    def __init__(
        self, window: tuple[float, float, float, float], pixels: int = 320, scale: float | None = None
    ) -> None:
        a0, b0, a1, b1 = (float(v) for v in window)
        if not (a1 > a0 and b1 > b0):
            raise ValueError(f"empty canvas window {window}")
        self.scale = scale if scale is not None else max(a1 - a0, b1 - b0) / pixels
        self.a0, self.b1 = a0, b1
        self.width = max(1, math.ceil((a1 - a0) / self.scale - 1e-9))
        self.height = max(1, math.ceil((b1 - b0) / self.scale - 1e-9))
        self.a = a0 + (np.arange(self.width) + 0.5) * self.scale  # pixel centres, left to right
        self.b = b1 - (np.arange(self.height) + 0.5) * self.scale  # top to bottom

    def blank(self, m: int, colour: RGB) -> np.ndarray:
        out = np.empty((m, self.height, self.width, 3), np.uint8)
        out[...] = colour
        return out

    def fill(
        self,
        out: np.ndarray,
        ca: np.ndarray | float,
        cb: np.ndarray | float,
        ha: np.ndarray | float,
        hb: np.ndarray | float,
        colour: np.ndarray | RGB,
        radius: np.ndarray | float = 0.0,
        present: np.ndarray | bool = True,
        min_pixels: float = 0.0,
    ) -> None:
        """Paint one rounded box per area into out [m, H, W, 3]: centre (ca, cb), half extents (ha, hb),
        rounding radius (a circle: zero half extents), each a scalar or one value per area [m]; colour
        [3] or [m, 3]; only where ``present``. ``min_pixels`` keeps small shapes visible on a coarse
        canvas: the radius is at least that many pixels."""
        m = out.shape[0]
        ca, cb, ha, hb, radius = (np.broadcast_to(np.asarray(v, np.float64), (m,)) for v in (ca, cb, ha, hb, radius))
        if min_pixels:
            radius = np.maximum(radius, min_pixels * self.scale)
        present = np.broadcast_to(np.asarray(present, bool), (m,))
        if not present.any():
            return
        # Only the pixels of the box around every area's shape are tested.
        reach_a, reach_b = ha + radius, hb + radius
        lo_a, hi_a = (ca - reach_a)[present].min(), (ca + reach_a)[present].max()
        lo_b, hi_b = (cb - reach_b)[present].min(), (cb + reach_b)[present].max()
        c0 = int(np.clip(np.floor((lo_a - self.a0) / self.scale), 0, self.width))
        c1 = int(np.clip(np.ceil((hi_a - self.a0) / self.scale), 0, self.width))
        r0 = int(np.clip(np.floor((self.b1 - hi_b) / self.scale), 0, self.height))
        r1 = int(np.clip(np.ceil((self.b1 - lo_b) / self.scale), 0, self.height))
        if c0 >= c1 or r0 >= r1:
            return
        # Distance beyond the box along each axis, then the rounded test: separable per row and column.
        da = np.maximum(np.abs(self.a[c0:c1][None, :] - ca[:, None]) - ha[:, None], 0.0)  # [m, w]
        db = np.maximum(np.abs(self.b[r0:r1][None, :] - cb[:, None]) - hb[:, None], 0.0)  # [m, h]
        inside = db[:, :, None] ** 2 + da[:, None, :] ** 2 <= (radius**2)[:, None, None]
        inside &= present[:, None, None]
        colour = np.asarray(colour, np.uint8)
        colour = colour[:, None, None, :] if colour.ndim == 2 else colour
        np.copyto(out[:, r0:r1, c0:c1], colour, where=inside[..., None])

    def heading(
        self,
        out: np.ndarray,
        ca: np.ndarray,
        cb: np.ndarray,
        direction_a: np.ndarray,
        direction_b: np.ndarray,
        size: np.ndarray | float,
    ) -> None:
        """A white dot inside the front of agents of radius ``size`` facing (direction_a, direction_b)."""
        size = np.maximum(np.asarray(size, np.float64), 2.5 * self.scale)
        self.fill(out, ca + 0.55 * size * direction_a, cb + 0.55 * size * direction_b, 0.0, 0.0, HEADING,
                  radius=0.4 * size, min_pixels=1.0)  # fmt: skip

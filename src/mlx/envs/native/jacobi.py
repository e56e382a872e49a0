"""``JacobiArena``: the arena engine (mlx.envs.native.arena) with all body pairs solved in one pass, for the
scenes with many bodies an area (soccer, PushBlockCollab)."""

from __future__ import annotations

import numpy as np

from mlx.envs.native.arena import TOUCH_DISTANCE, Arena, rounded_box_contact
from mlx.envs.native.base import F32


class JacobiArena(Arena):
    """The arena with its body pairs solved all at once: one Jacobi pass, every pair from the same state and
    each body's corrections summed, instead of the pair-after-pair pass (a round of numpy calls per pair and
    physics step, most of a step's time with many bodies). Contacts are sparse in the scenes that use it
    (soccer, PushBlockCollab), so the two orders rarely differ."""

    def refresh(self) -> None:
        super().refresh()
        I = np.array([i for i, _ in self.pairs], np.intp)  # noqa: E741
        J = np.array([j for _, j in self.pairs], np.intp)
        self._I, self._J = I, J
        incidence = np.zeros((self.K, len(I)), F32)  # +1 on a pair's second body, -1 on its first
        incidence[J, np.arange(len(I))] = 1.0
        incidence[I, np.arange(len(I))] = -1.0
        self._incidence = incidence
        bh, br = self.half[:, self.W :], self.radius[self.W :]
        self._pair_half = bh[:, I] + bh[:, J]  # [2, P, n]
        self._pair_rho = br[I] + br[J]  # [P, n]
        self._inv_mass = F32(1.0) / self.mass  # [K, n]
        self._pair_inv = F32(1.0) / (self._inv_mass[I] + self._inv_mass[J])
        self._pair_mu = (self.friction[0, I] + self.friction[0, J]) * F32(0.5)
        active = self.active[self.W :]
        self._pair_present = active[I] & active[J]

    def _pair_contacts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair's normal and penetration from the current state, and which pairs touch (recorded)."""
        pos = self.pos
        nrm, pen = rounded_box_contact(pos[:, self._J] - pos[:, self._I], self._pair_half, self._pair_rho)
        touch = (pen > -TOUCH_DISTANCE) & self._pair_present
        self.touch_pair |= touch
        return nrm, pen, touch

    def _solve_pairs(self) -> None:
        nrm, pen, _ = self._pair_contacts()
        self._jacobi_pass(nrm, pen, self._inv_mass, self._pair_inv)

    def _jacobi_pass(self, nrm: np.ndarray, pen: np.ndarray, w: np.ndarray, inv: np.ndarray) -> None:
        """Overlapping pairs pushed apart by inverse mass ``w`` ([K, n]; ``inv`` [P, n] the pair's 1 / (w_i +
        w_j)), their approaching normal velocity removed (restitution 0) and Coulomb friction on their
        sliding, all pairs from the same state."""
        pos, vel, I, J = self.pos, self.vel, self._I, self._J  # noqa: E741
        k = np.where((pen > 0) & self._pair_present, inv, F32(0.0))
        pos += w * (self._incidence @ (nrm * (pen * k)))
        rv = vel[:, J] - vel[:, I]
        vn = rv[0] * nrm[0] + rv[1] * nrm[1]
        jn = np.maximum(-vn, F32(0.0)) * k
        vt = rv[1] * nrm[0] - rv[0] * nrm[1]
        lim = self._pair_mu * jn
        jt = np.clip(-vt * k, -lim, lim)
        imp = nrm * jn
        imp[0] -= jt * nrm[1]
        imp[1] += jt * nrm[0]
        vel += w * (self._incidence @ imp)

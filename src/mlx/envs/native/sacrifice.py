"""Sacrifice: a tiny cooperative task where one agent must give itself up for its group (MA-POCA's CI task).

Why it exists: MA-POCA's point is posthumous credit assignment (Cohen et al. 2021; DungeonEscape). This
env isolates that in a few cells so that a learning test runs in about a minute, with nothing else to learn.

Design (per area, all areas vectorised with numpy):

* A corridor of ``LENGTH`` = 6 cells, 0..5. Cell 0 (``TRAP``) is a trap, cell 5 (``GOAL``) the goal behind
  a door between cells 4 and 5, closed at each episode start.
* Two agents, one group (group id = area index + 1, nonzero and unique per area, as ML-Agents: 0 means no
  group). Agent ids are ``2 * area + k`` (k = 0, 1), the same in every episode. Each starts on a cell drawn
  uniformly from 1..4 (both may share a cell; agents do not block each other).
* Actions: one branch of 3: 0 left, 1 stay, 2 right (moves past either end stay put; moving into the goal
  while the door is closed stays put).
* Observations (3 floats per agent): own cell / 5, the mate's cell / 5 (-1 once the mate is gone), door
  open (0 or 1).
* An agent that steps onto the trap is removed at once: a TerminalSteps entry for it (not interrupted,
  reward 0), then no more decisions until its group's next episode, as a deactivated agent in
  DungeonEscape. The door opens at the end of that decision, so its mate can enter the goal from the next
  decision on. An agent removed is removed from its group: later group rewards reach only its mate.
* The group's episode ends (TerminalSteps for the agents still in it, then a new episode with both) when
  an agent enters the goal (group reward +1, not interrupted), when no agent is left (both on the trap;
  reward 0, not interrupted), or after ``MAX_STEP`` = 12 decisions (interrupted, reward 0).
* Rewards: the group reward +1 at the goal is the only reward, in ``group_reward``; ``reward`` (the
  individual reward) is 0, so PPO, which reads only ``reward`` as upstream's does, has nothing to learn.
  Environment parameter ``shared_reward`` (default 0) set to 1 also pays the group reward as individual
  reward to the agents in the group at that moment: independent PPO then sees the same task, and the
  sacrificed agent, already gone, is never paid: the credit-assignment problem POCA solves. Leave it 0
  for POCA (POCA adds groupmates' individual rewards to the group reward, so 1 would count it twice).

Scores. Per group episode, the sum of its group rewards: an optimal policy scores 1.0 (the agent nearer the
trap walks left, the other right; at most 5 decisions, 3.1 on average); a uniformly random policy about
0.24 (``RANDOM_SCORE``; 9.9 decisions). POCA's ``Environment/Group Cumulative Reward`` (one entry per agent
still in at its group's end) is 1.0 for the optimal policy too and about 0.18 for the random one (a failed
episode counts once per agent left). A learning test's threshold: 0.9 (``THRESHOLD``). Independent PPO
with ``shared_reward`` 1 learns to avoid the trap, as nobody is paid for the sacrifice: its mean reward
(0.5 when solved, as a sacrificed agent's episodes count 0) falls from about 0.15 to 0.02 in 300k steps
(measured when this env was written: PPO's defaults, seed 0). tests/test_sacrifice.py shows the credit
is what matters: a tabular REINFORCE solves it (0.998) when each step is credited with its group
episode's reward, and stays at 0.18 when each agent is credited only with what it received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, EnvError, ObservationSpec, TerminalSteps
from mlx.envs.native.base import F32, NativeEnv
from mlx.envs.native.render import FLOOR, VOID, Canvas, tag_colour

BEHAVIOR = "Sacrifice"
LENGTH, TRAP, GOAL = 6, 0, 5
START_LOW, START_HIGH = 1, 4  # start cells, inclusive
AGENTS = 2  # per area
MAX_STEP = 12  # decisions per group episode
GOAL_REWARD = 1.0
SOLVED_SCORE, RANDOM_SCORE, THRESHOLD = 1.0, 0.24, 0.9
MOVES = np.array([-1, 0, 1], np.int64)  # action 0 left, 1 stay, 2 right
GONE = -1.0  # the mate's position once it is removed
SECOND_AGENT = (170, 200, 255)  # its colour in pictures (the first is the "agent" tag's)


class SacrificeEnv(NativeEnv):
    """Two agents per area in a corridor; one must step onto the trap to open the door for the other."""

    behaviors = (BEHAVIOR,)
    agents_per_area = AGENTS
    parameter_defaults = {"shared_reward": 0.0}
    max_decisions = MAX_STEP

    def __init__(self, num_areas: int = 8, seed: int = 0, parameters: Mapping[str, float] | None = None) -> None:
        spec = BehaviorSpec((ObservationSpec((3,), "SacrificeVector"),), ActionSpec(discrete_branches=(3,)))
        super().__init__(num_areas, seed, parameters, spec)
        n = self.n
        self.pos = np.zeros((n, AGENTS), np.int64)
        self.alive = np.ones((n, AGENTS), bool)
        self.door = np.zeros(n, bool)
        self.move = np.zeros((n, AGENTS), np.int64)
        self.agent_ids = np.arange(n * AGENTS, dtype=np.int32).reshape(n, AGENTS)
        self.group_ids = np.repeat(np.arange(1, n + 1, dtype=np.int32), AGENTS).reshape(n, AGENTS)

    def _check_parameters(self, values: Mapping[str, float]) -> None:
        if values["shared_reward"] not in (0.0, 1.0):
            raise EnvError(f"environment parameter 'shared_reward' must be 0 or 1 (got {values['shared_reward']})")

    # ---- simulation ---------------------------------------------------------------------------------

    def _reset_areas(self, idx: np.ndarray) -> None:
        self.pos[idx] = self._rng.integers(START_LOW, START_HIGH + 1, size=(len(idx), AGENTS))
        self.alive[idx] = True
        self.door[idx] = False

    def _features(self) -> np.ndarray:
        """[n, 2, 3] every agent's observation (removed agents' rows too; callers select)."""
        scale = F32(1.0 / (LENGTH - 1))
        own = self.pos.astype(F32) * scale
        mate = np.where(self.alive[:, ::-1], own[:, ::-1], F32(GONE))
        door = np.broadcast_to(self.door[:, None], own.shape).astype(F32)
        return np.stack([own, mate, door], axis=2)

    def _act(self, rows: np.ndarray | None, continuous: np.ndarray, discrete: np.ndarray) -> None:
        flat = self.move.reshape(-1)
        flat[self._deciding if rows is None else rows] = MOVES[discrete[:, 0]]

    def _no_actions(self) -> None:
        self.move.fill(0)

    def _advance(self) -> tuple[np.ndarray, np.ndarray]:
        """Move, remove agents on the trap (opening the door), and see whether the goal was reached.
        Returns (trapped [n, 2]: removed now, reached [n]: an agent entered the goal)."""
        target = np.clip(self.pos + self.move, 0, LENGTH - 1)
        blocked = (target == GOAL) & ~self.door[:, None]
        self.pos = np.where(self.alive & ~blocked, target, self.pos)
        trapped = self.alive & (self.pos == TRAP)
        self.alive &= ~trapped
        self.door |= trapped.any(axis=1)
        reached = (self.alive & (self.pos == GOAL)).any(axis=1)
        return trapped, reached

    # ---- the env API (two agents per area, some of them absent: the base's one-agent step is not enough) ----

    def reset(self) -> None:
        """New group episodes in every area; every agent then decides, with reward 0."""
        self._begin(np.arange(self.n))
        self._no_actions()
        self._started = True
        self._no_terminal()
        self._publish_alive(np.zeros((self.n, AGENTS), F32), np.zeros((self.n, AGENTS), F32))

    def step(self) -> None:
        self._require_reset("step")
        live = self.alive.copy()
        trapped, reached = self._advance()
        steps = self._steps
        steps += 1
        timeout = steps >= self.max_decisions
        ended = reached | ~self.alive.any(axis=1) | timeout  # group episodes that end now
        terminal = trapped | (ended[:, None] & live)  # agents that leave: removed now, or their group ended
        group_reward = np.where(reached, F32(GOAL_REWARD), F32(0.0))[:, None] * live
        group_reward = group_reward.astype(F32) * ~trapped  # a removed agent has left its group
        reward = group_reward * F32(self._params["shared_reward"])
        interrupted = (timeout & ~reached & self.alive.any(axis=1))[:, None] & ~trapped
        obs = self._features()
        self._terminals[0] = TerminalSteps(
            [obs[terminal]],
            reward[terminal],
            self.agent_ids[terminal],
            interrupted[terminal],
            self.group_ids[terminal],
            group_reward[terminal],
        )
        if ended.any():
            self._begin(np.flatnonzero(ended))
        self._no_actions()
        zeros = np.zeros((self.n, AGENTS), F32)
        self._publish_alive(zeros, zeros)

    def _publish_alive(self, reward: np.ndarray, group_reward: np.ndarray) -> None:
        """DecisionSteps: the agents still in their group's episode, in id order."""
        alive = self.alive
        self._deciding = np.flatnonzero(alive.reshape(-1))
        self._rows[0] = self._deciding
        decision = DecisionSteps(
            [self._features()[alive]],
            reward[alive],
            self.agent_ids[alive],
            None,
            self.group_ids[alive],
            group_reward[alive],
        )
        if self._decisions:
            self._decisions[0] = decision
        else:
            self._decisions.append(decision)

    def render(self, areas: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Pictures [m, 36, 144, 3] of the corridor, 24 pixels per cell: the trap (red), the door (a wall
        between cells 4 and 5 while closed), the goal (green) and the agents still in (blue; the second
        agent smaller and paler, so two on one cell both show)."""
        pick = slice(None) if areas is None else np.asarray(areas)
        pos, alive, door = self.pos[pick], self.alive[pick], self.door[pick]
        canvas = Canvas((-0.5, -0.75, LENGTH - 0.5, 0.75), scale=1 / 24)
        out = canvas.blank(len(pos), VOID)
        canvas.fill(out, (LENGTH - 1) / 2, 0.0, LENGTH / 2, 0.5, FLOOR)
        canvas.fill(out, TRAP, 0.0, 0.4, 0.4, tag_colour("switchOff"))
        canvas.fill(out, GOAL, 0.0, 0.4, 0.4, tag_colour("goal"))
        canvas.fill(out, GOAL - 0.5, 0.0, 0.06, 0.5, tag_colour("wall"), present=~door)
        for k, (half, colour) in enumerate(((0.3, tag_colour("agent")), (0.15, SECOND_AGENT))):
            canvas.fill(out, pos[:, k], 0.0, half, half, colour, present=alive[:, k])
        return out

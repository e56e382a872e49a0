"""What off-policy trainers share (SAC): per-agent transitions into a bounded replay buffer (whole
sequences with memory), rewards per stream computed when a sample is drawn, reward-signal updates at
their own rate, uniform random actions for ``buffer_init_steps``, and the buffer beside checkpoints.

time_horizon as ML-Agents: an agent's transitions enter the buffer when its trajectory is cut, after
time_horizon of its steps or at its episode's end (``HorizonHold``); with memory, a trajectory's end also
ends its last sequence (padded), as upstream cuts sequences per trajectory.

A subclass builds its module (``build_module``); in ``process`` it closes
pending transitions (``_begin_step``), acts, and opens new ones with ``assembler.begin``; ``update``
draws from ``buffer`` while ``_updates_owed()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlx.envs.api import DecisionSteps, TerminalSteps
from mlx.trainers.base import RLTrainer
from mlx.trainers.nn.networks import flat_obs_size
from mlx.trainers.rewards.base import SignalInputs, SignalRows
from mlx.trainers.sac.replay import HorizonHold, ReplayBuffer, SequenceBuilder, TransitionAssembler, Transitions
from mlx.training.timers import timed

NOT_SEQUENCE_FIELDS = ("valid", "memories")


class OffPolicyTrainer(RLTrainer):
    """Transitions in, a replay buffer out (see the module docstring)."""

    off_policy = True

    def _build_experience(self) -> None:
        memory_size = self.memory_size
        self._needs_done = any(r.uses_done for r in self.reward_signals.values())
        a = self.spec.action_spec
        obs_size = flat_obs_size(self.spec)
        fields: dict[str, tuple[tuple[int, ...], Any]] = {
            "obs": ((obs_size,), np.float32),
            "continuous": ((a.continuous_size,), np.float32),
            "discrete": ((a.discrete_size,), np.int32),
            "reward": ((), np.float32),
            "mask": ((sum(a.discrete_branches),), np.bool_),
            "next_obs": ((obs_size,), np.float32),
            "terminated": ((), np.float32),
        }
        if self._needs_done:  # the step ended its episode (terminated or interrupted)
            fields["done"] = ((), np.float32)
        hp = self.hp
        if memory_size:
            # The ring holds whole sequences: buffer_size transitions are buffer_size / L sequences.
            length = self.sequence_length
            self.sequences: SequenceBuilder | None = SequenceBuilder(fields, length, memory_size, self.agents)
            seq_fields = {k: ((length, *shape), dt) for k, (shape, dt) in fields.items()}
            seq_fields["valid"] = ((length,), np.bool_)
            seq_fields["memories"] = ((memory_size,), np.float32)
            self.buffer = ReplayBuffer(max(1, hp.buffer_size // length), seq_fields)
            self.sample_size = max(1, hp.batch_size // length)
        else:
            self.sequences = None
            self.buffer = ReplayBuffer(hp.buffer_size, fields)
            self.sample_size = hp.batch_size
        held = {**fields, "memory": ((memory_size,), np.float32)} if memory_size else fields
        self.hold = HorizonHold(held, self.settings.time_horizon, self.agents)
        self.assembler = TransitionAssembler(self.spec, obs_size, memory_size, self.agents)
        self.rng = np.random.default_rng(self.seed)
        self.update_steps = 1  # ML-Agents starts counting at 1
        self.signal_update_steps = 1
        self.signal_steps_per_update = hp.reward_signal_steps_per_update or hp.steps_per_update

    # ---- acting -------------------------------------------------------------------------------
    @timed("process_trajectory")
    def _begin_step(self, decision: DecisionSteps, terminal: TerminalSteps, obs: np.ndarray | None) -> None:
        """Close the transitions this env step completes (episode ends, then the deciding agents' with
        their flat observations ``obs``) into the buffer; report the episodes that ended."""
        finished, episodes = self.assembler.end_episodes(terminal)
        self._end_episodes(episodes, terminal)
        self._store(finished)
        if obs is not None:
            self._store(self.assembler.next_step(decision, obs))

    def _signal_inputs(self, sample: dict[str, np.ndarray]) -> SignalInputs:
        """The signals' view of transitions (rows [B, ...], or sequences [S, L, ...] read as S * L rows)."""
        lead = sample["reward"].ndim

        def rows(key: str) -> np.ndarray:
            value = sample[key]
            return value if lead == 1 else value.reshape(-1, *value.shape[lead:])

        def signal_rows() -> SignalRows:
            done = rows("done") if "done" in sample else None
            return SignalRows(rows("obs"), rows("next_obs"), rows("continuous"), rows("discrete"), rows("reward"), done)

        return SignalInputs(rows("reward"), signal_rows, self.device)

    def _store(self, tr: Transitions | None) -> None:
        if tr is None:
            return
        arrays = {
            "obs": tr.obs,
            "continuous": tr.continuous,
            "discrete": tr.discrete,
            "reward": tr.reward,
            "mask": tr.mask,
            "next_obs": tr.next_obs,
            "terminated": tr.terminated.astype(np.float32),
        }
        done = np.full(len(tr.reward), float(tr.episode_end), np.float32)
        # Policy/<Signal> Reward: each signal's reward summed over an agent's episode, as for PPO.
        rewards = self._signal_rewards(self._signal_inputs({**arrays, "done": done}))
        self._add_signal_returns(tr.slots, rewards, tr.slots if tr.episode_end else tr.slots[:0])
        if self._needs_done:
            arrays["done"] = done
        if self.sequences is not None:
            arrays["memory"] = tr.memory
        cut = self.hold.add(tr.slots, tr.episode_end, **arrays)
        if cut is not None:
            self._add_trajectories(*cut)

    def _add_trajectories(self, slots: np.ndarray, steps: dict[str, np.ndarray], lengths: np.ndarray) -> None:
        """Trajectories cut by the hold ([k, time_horizon, ...], ``lengths`` real steps each) into the buffer,
        one after the other; with memory, through the sequence builder, each trajectory's end ending its last
        sequence."""
        horizon = np.arange(self.hold.horizon)
        if self.sequences is None:
            real = horizon[None, :] < lengths[:, None]
            self.buffer.add(**{name: value[real] for name, value in steps.items()})
            return
        memory = steps.pop("memory")
        for i in range(int(lengths.max())):  # the i-th step of every trajectory at least i + 1 long
            live = lengths > i
            rows = {name: value[live, i] for name, value in steps.items()}
            out = self.sequences.add(slots[live], lengths[live] == i + 1, memory[live, i], **rows)
            if len(out["valid"]):
                self.buffer.add(**out)

    # ---- updating -----------------------------------------------------------------------------
    def _updates_owed(self) -> bool:
        return (self.step - self.hp.buffer_init_steps) / self.update_steps > self.hp.steps_per_update

    def ready_to_update(self) -> bool:
        return len(self.buffer) >= self.sample_size and self._updates_owed()

    def _real_steps(self, sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A sample's transitions as rows: sequences are flattened to their real (not padding) steps."""
        if "valid" not in sample:
            return sample
        valid = sample["valid"]
        return {k: v[valid] for k, v in sample.items() if k not in NOT_SEQUENCE_FIELDS}

    def _rewards(self, sample: dict[str, np.ndarray]) -> np.ndarray:
        """[B, K] rewards per stream (each signal's, times its strength), or [S, L, K] for sequences."""
        cols = self._signal_rewards(self._signal_inputs(sample))
        return np.stack(cols, axis=1).reshape(*sample["reward"].shape, len(cols))

    def _update_signals(self) -> None:
        """ML-Agents' SAC trains reward-signal models on their own samples, at their own rate."""
        sums: dict[str, float] = {}
        count = 0
        while (self.step - self.hp.buffer_init_steps) / self.signal_update_steps > self.signal_steps_per_update:
            rows = self._real_steps(self.buffer.sample(self.sample_size, self.rng))
            self._step_signals(self._signal_inputs(rows).batch(), sums)
            self.signal_update_steps += 1
            count += 1
        for key, total in sums.items():
            self.stats.add(key, total / count)

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "update_steps": self.update_steps,
            "signal_update_steps": self.signal_update_steps,
            "numpy_rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.update_steps = int(state["update_steps"])
        self.signal_update_steps = int(state.get("signal_update_steps", 1))
        self.rng.bit_generator.state = state["numpy_rng"]

    def save_extras(self, folder: Path) -> None:
        if self.hp.save_replay_buffer:
            self.buffer.save(folder / "replay_buffer.npz")

    def load_extras(self, folder: Path) -> None:
        path = folder / "replay_buffer.npz"
        if self.hp.save_replay_buffer and path.exists():
            self.buffer.load(path)

    def reset_trajectories(self) -> None:
        self.assembler.reset()
        self.hold.reset()
        if self.sequences is not None:
            self.sequences.reset()

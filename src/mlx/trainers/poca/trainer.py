"""MA-POCA (ML-Agents' ``trainer_type: poca``): PPO's actor with a centralised attention critic per group.

`POCAModule` is the module (Lightning's module contract, `mlx.trainers.lightning_module`): the actor (PPO's, on the
agent's own observations), the critic (`POCAValueNetwork`: the group's value V and each agent's counterfactual
baseline B), the optimiser and ``training_step``, a pure loss of a minibatch (``losses.poca_loss``). `POCATrainer`
is the experience side on the on-policy base: at each env step it works out every agent's groupmates
(``trainers.groups``), stores their rows and actions with the agent's step (``poca.trajectory``), and when
trajectories end it values them with the critic, builds the extrinsic reward POCA trains on (own + groupmates'
individual rewards + group reward), the lambda-returns G (targets of V and B, bootstrapped from the group's value)
and the advantages G - B, and runs the update epochs.

Values are computed when a trajectory ends, not while acting (as upstream): acting runs the actor only,
and the critic sees a whole batch of steps at once, after the normaliser has taken in the trajectory.
Group rewards count in ``Environment/Group Cumulative Reward`` (once per agent whose group ended with
it), individual rewards in ``Environment/Cumulative Reward``.

Memory (``network_settings.memory``, as upstream's POCA allows): the actor ends in an LSTM exactly as PPO's
(its memory carried per agent between decisions, stored with each step), and the critic has one LSTM after
its attention body (``poca.critic``), run by the value pass and the baseline pass each with its own memory
(upstream's separate value and baseline memories). An agent's memory row (``Agents.memories``) is the
actor's, then the critic's value memory, then its baseline memory; all three are zeroed when the agent's
episode ends. The critic's memories move only when trajectories are valued: a trajectory is run through the
critic in order, sequence_length steps at a time, from the critic memories the agent had at its first step
(those after its previous trajectory in the episode), and the memories after its last step are kept for its
next trajectory and read by the bootstrap value (the bootstrap pass itself moves nothing, as upstream). The
update trains on whole sequences (batch_size // sequence_length per minibatch), each replayed from the
actor, value and baseline memories stored at its first step; padding steps are masked out of the loss, of
the advantage normalisation and of the reward signals' updates. Decisions where upstream differs or is
silent: sequences are padded at their end (mlx's convention, as PPO's; upstream pads a trajectory's first
sequence at its start, and its by-sequence valuation has indexing slips, multiagent.md §2.5.8); the critic
memories are zeroed at every episode end of the agent, as upstream's PPO drops its critic memory on done
(upstream's POCA keeps the per-agent memory dictionaries across episodes). Cost: with episodes much shorter
than sequence_length most of each replayed sequence is padding (as upstream); env=sacrifice (about 10
decisions an episode) with network=lstm (sequence_length 64) trained at about 510 agent steps/s against
about 4,400 without memory on the shared 2-core machine.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch

from mlx.config import POCASettings
from mlx.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, TerminalSteps
from mlx.trainers.advantages import gae
from mlx.trainers.base import action_mask, checked_obs
from mlx.trainers.groups import gather_mates, group_ids, group_rewards, mates_index, mates_sum
from mlx.trainers.losses import POCABatch, poca_loss, total_loss
from mlx.trainers.nn.networks import InputNormalizer, actor_for, flat_obs_size
from mlx.trainers.on_policy import OnPolicyTrainer, to_sequences
from mlx.trainers.poca.critic import POCAValueNetwork, lstm_by_sequence
from mlx.trainers.poca.trajectory import GroupTrajectoryAssembler
from mlx.trainers.rewards.base import SignalBatch
from mlx.trainers.trajectory import Trajectories
from mlx.training.timers import timed

STEP_EXTRAS = ("mates_obs", "mates_continuous", "mates_discrete", "group_reward", "mates_reward", "log_prob_parts")
CRITIC_CHUNK = 4096  # rows per critic pass when valuing trajectories: bounds the attention's memory


class POCAMinibatch(NamedTuple):
    """One minibatch of POCA's update buffer (tensors); the loss's own fields are ``losses.POCABatch``'s."""

    obs: torch.Tensor  # [B, row] the agent's flat observation
    mates_obs: torch.Tensor  # [B, M, row] its groupmates' (NaN rows: no mate in the slot)
    mates_continuous: torch.Tensor  # [B, M, C] their raw continuous actions
    mates_discrete: torch.Tensor  # [B, M, D]
    continuous: torch.Tensor  # [B, C] the agent's raw continuous action
    discrete: torch.Tensor  # [B, D]
    action_mask: torch.Tensor  # [B, sum(branches)]
    old_log_prob: torch.Tensor  # [B, C + D] per action component
    old_values: torch.Tensor  # [B, K]
    old_baselines: torch.Tensor  # [B, K]
    returns: torch.Tensor  # [B, K]
    advantages: torch.Tensor  # [B]
    # With memory the fields above are [S, L, ...] sequences, plus (both None without memory):
    memories: torch.Tensor | None = None  # [S, a + 2 m] actor, value and baseline memories at each sequence start
    valid: torch.Tensor | None = None  # [S, L] True on real (not padding) steps


class POCAModule(torch.nn.Module):
    """Actor and POCA critic (one value head per reward stream) with a shared normaliser."""

    def __init__(self, spec: BehaviorSpec, settings: POCASettings, streams: list[str]) -> None:
        super().__init__()
        self.settings = settings
        ns = settings.network_settings
        self.normalizer = InputNormalizer(spec, ns) if ns.normalize else None
        self.actor = actor_for("poca", spec, ns)
        self.critic = POCAValueNetwork(spec, streams, ns)
        self.actor_memory = self.actor.memory_size  # floats of the actor's memory (0 without memory)
        # An agent's memory: the actor's, then the critic's value memory, then its baseline memory.
        self.memory_size = self.actor_memory + 2 * self.critic.memory_size
        self.epsilon = settings.hyperparameters.epsilon
        self.beta = settings.hyperparameters.beta

    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        return self.normalizer(obs) if self.normalizer is not None else obs

    def preprocess_mates(self, mates: torch.Tensor) -> torch.Tensor:
        """[B, M, row] groupmates' rows through the normaliser (NaN rows stay NaN: absent)."""
        if self.normalizer is None:
            return mates
        batch, m, row = mates.shape
        return self.normalizer(mates.reshape(batch * m, row)).reshape(batch, m, row)

    def split_memories(self, memories: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Agents' memory rows [B, a + 2 m] -> the actor's [B, a], value [B, m] and baseline [B, m] memories."""
        a, m = self.actor_memory, self.critic.memory_size
        return memories[:, :a], memories[:, a : a + m], memories[:, a + m :]

    def training_step(self, batch: POCAMinibatch, batch_idx: int) -> dict[str, torch.Tensor]:
        if batch.memories is not None:
            return self._sequence_step(batch)
        x = self.preprocess(batch.obs)
        mask = batch.action_mask if batch.action_mask.shape[-1] else None
        log_prob, entropy = self.actor.evaluate(x, batch.continuous, batch.discrete, mask, components=True)
        values, baselines = self.critic.value_and_baseline(
            x, self.preprocess_mates(batch.mates_obs), batch.mates_continuous, batch.mates_discrete
        )
        terms = poca_loss(
            log_prob,
            entropy,
            values,
            baselines,
            POCABatch(batch.old_log_prob, batch.old_values, batch.old_baselines, batch.returns, batch.advantages),
            self.epsilon,
            self.beta,
        )
        terms["loss"] = total_loss(terms)
        return terms

    def _sequence_step(self, batch: POCAMinibatch) -> dict[str, torch.Tensor]:
        """A minibatch of S sequences of L steps: replay the actor's and both critic passes' LSTMs from the
        memories stored at each sequence's start, then the loss over real steps only."""
        assert batch.memories is not None and batch.valid is not None
        s, length = batch.valid.shape
        fields = len(POCAMinibatch._fields) - 2
        steps = POCAMinibatch(*(t.reshape(s * length, *t.shape[2:]) for t in batch[:fields]))
        x = self.preprocess(steps.obs)
        mask = steps.action_mask if steps.action_mask.shape[-1] else None
        actor_mem, value_mem, baseline_mem = self.split_memories(batch.memories)
        log_prob, entropy = self.actor.evaluate(
            x, steps.continuous, steps.discrete, mask, actor_mem, length, components=True
        )
        values, baselines, _, _ = self.critic.recurrent_value_and_baseline(
            x,
            self.preprocess_mates(steps.mates_obs),
            steps.mates_continuous,
            steps.mates_discrete,
            value_mem,
            baseline_mem,
            length,
        )
        terms = poca_loss(
            log_prob,
            entropy,
            values,
            baselines,
            POCABatch(
                steps.old_log_prob,
                steps.old_values,
                steps.old_baselines,
                steps.returns,
                steps.advantages,
                batch.valid.reshape(-1),
            ),
            self.epsilon,
            self.beta,
        )
        terms["loss"] = total_loss(terms)
        return terms

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.settings.hyperparameters.learning_rate, fused=True)


def pad_mates(array: np.ndarray, width: int, fill: float) -> np.ndarray:
    """[..., M, x] -> [..., width, x]: more (empty) groupmate slots, filled with ``fill``."""
    m = array.shape[-2]
    if m >= width:
        return array
    pad = np.full((*array.shape[:-2], width - m, array.shape[-1]), fill, array.dtype)
    return np.concatenate([array, pad], axis=-2)


class POCATrainer(OnPolicyTrainer):
    def build_module(self) -> POCAModule:
        return POCAModule(self.spec, self.settings, self.streams).to(self.device)

    def _make_assembler(self) -> GroupTrajectoryAssembler:
        row = flat_obs_size(self.spec)
        horizon, streams, actor_memory = self.settings.time_horizon, len(self.streams), self.module.actor_memory
        return GroupTrajectoryAssembler(self.spec, horizon, streams, row, self.agents, actor_memory)

    def _freeze(self) -> None:
        self._frozen = copy.deepcopy(self.module.actor)  # the normaliser is shared: the update leaves it be

    # ---- acting -------------------------------------------------------------------------------
    def process(self, decision: DecisionSteps, terminal: TerminalSteps) -> ActionTuple:
        assembler = self.assembler
        assert isinstance(assembler, GroupTrajectoryAssembler)
        n_d, n_t = len(decision), len(terminal)
        groups = self._groups(decision, terminal, always=True)
        assert groups is not None
        going_on = groups.going_on
        d_rows = checked_obs(decision.obs, self.behavior_name, self.step) if n_d else None
        gid_d, gid_t = group_ids(decision), group_ids(terminal)
        # Rows whose reward closes a pending step: every terminal row, and the decision rows of agents that
        # carry their group on (not those starting an episode: theirs is a fresh first decision).
        closing_gid = np.concatenate([gid_t, gid_d[going_on]])
        mates_reward = mates_sum(closing_gid, np.concatenate([terminal.reward, decision.reward[going_on]]))
        if n_t:
            t_rows = checked_obs(terminal.obs, self.behavior_name, self.step)
            rows = t_rows if d_rows is None else np.concatenate([t_rows, d_rows[going_on]])
            next_mates = gather_mates(rows, mates_index(closing_gid)[:n_t], np.nan)
            traj, episodes = assembler.end_group_episodes(
                terminal, group_rewards(terminal), mates_reward[:n_t], next_mates, groups.group_done
            )
            if traj is not None:
                self._receive(traj)
            self._end_episodes(episodes, terminal)
        if n_d == 0:
            return self.spec.action_spec.empty(0)
        assert d_rows is not None
        mask = action_mask(decision, self.spec)
        memories, rows = None, np.zeros(0, np.int64)
        if self.memory_size:  # the actor's part of each agent's memory row (critic memories move at valuing)
            rows = self.agents.lookup(decision.agent_id)
            memories = self.agents.memories[rows, : self.module.actor_memory]
        with torch.inference_mode():
            x = self.module.preprocess(self._tensor(d_rows))
            out = (self.module.actor if self._frozen is None else self._frozen).sample(
                x,
                None if mask is None else self._tensor(mask),
                memories=None if memories is None else self._tensor(memories),
                components=True,
            )
        if out.memories is not None:
            self.agents.memories[rows, : self.module.actor_memory] = out.memories.cpu().numpy()
        cont = out.continuous.cpu().numpy()
        disc = out.discrete.cpu().numpy().astype(np.int32)
        self.stats.add("Policy/Entropy", float(out.entropy.mean()))
        index = mates_index(gid_d)
        mates_obs = gather_mates(d_rows, index, np.nan)
        d_mates_reward = np.zeros(n_d)
        d_mates_reward[going_on] = mates_reward[n_t:]
        cut = assembler.record_group_rewards(decision, group_rewards(decision), d_mates_reward, mates_obs)
        if cut is not None:
            self._receive(cut)
        assembler.store_group(
            decision,
            cont,
            disc,
            out.log_prob.cpu().numpy(),
            mask,
            mates_obs,
            gather_mates(cont, index, 0.0),
            gather_mates(disc, index, 0),
            memories,
        )
        self.step += n_d
        return ActionTuple(continuous=self.module.actor.env_continuous(cont), discrete=disc)

    # ---- trajectories -------------------------------------------------------------------------
    def _critic(
        self, obs: np.ndarray, mates: np.ndarray, cont: np.ndarray | None = None, disc: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """V [N, K] (and B [N, K] when the mates' actions are given) of flat rows, in chunks."""
        values, baselines = [], []
        module = self.module
        with torch.inference_mode():
            for start in range(0, len(obs), CRITIC_CHUNK):
                part = slice(start, start + CRITIC_CHUNK)
                x = module.preprocess(self._tensor(obs[part]))
                m = module.preprocess_mates(self._tensor(mates[part]))
                if cont is None or disc is None:
                    values.append(module.critic.value(x, m).cpu().numpy())
                    continue
                v, b = module.critic.value_and_baseline(x, m, self._tensor(cont[part]), self._tensor(disc[part]))
                values.append(v.cpu().numpy())
                baselines.append(b.cpu().numpy())
        k = len(self.streams)
        out_v = np.concatenate(values) if values else np.zeros((0, k), np.float32)
        if cont is None:
            return out_v, None
        return out_v, np.concatenate(baselines) if baselines else np.zeros((0, k), np.float32)

    def _recurrent_critic(
        self, traj: Trajectories, obs: np.ndarray, ex: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """V and B [N, K] of flat rows with memory, and each sequence's starting value and baseline memories
        [E * ceil(T / L), 2 m] (``to_sequences``' order).

        The rows up to the LSTM go through the critic in chunks (each row on its own); then each trajectory
        runs through the LSTM in order, sequence_length steps at a time (``lstm_by_sequence``), each pass from
        the agent's current value or baseline memory (after its previous trajectory in this episode, zero at
        an episode's start). The memories after the last step become the agent's (its next trajectory starts
        there) and are kept in ``traj.extras["value_memory_after"]`` for the bootstrap value.
        """
        module = self.module
        critic = module.critic
        assert critic.lstm is not None
        a, m = module.actor_memory, critic.memory_size
        rows = self.agents.memories[traj.slots]
        valid = traj.valid()
        with torch.inference_mode():
            parts_v, parts_b, parts_n = [], [], []
            for start in range(0, len(obs), CRITIC_CHUNK):
                part = slice(start, start + CRITIC_CHUNK)
                hv, hb, present = critic.features(
                    module.preprocess(self._tensor(obs[part])),
                    module.preprocess_mates(self._tensor(ex["mates_obs"][part])),
                    self._tensor(ex["mates_continuous"][part]),
                    self._tensor(ex["mates_discrete"][part]),
                )
                assert hb is not None
                parts_v.append(hv)
                parts_b.append(hb)
                parts_n.append(present)
            mask = self._tensor(valid)
            present = torch.cat(parts_n)
            # Both passes through the LSTM together: 2 E trajectories, value then baseline, each from its memory.
            flat = torch.cat([torch.cat(parts_v), torch.cat(parts_b)], dim=1)  # [N, 2h]
            padded = flat.new_zeros(*valid.shape, flat.shape[-1])
            padded[mask] = flat
            both = torch.cat(padded.chunk(2, dim=-1))  # [2E, T, h]
            lengths = self._tensor(traj.lengths).repeat(2)
            memory = self._tensor(np.concatenate([rows[:, a : a + m], rows[:, a + m :]]))
            h, first, last = lstm_by_sequence(critic.lstm, both, lengths, memory, self.sequence_length)
            out, starts, after = [], [], []
            for h_pass, first_pass, last_pass in zip(h.chunk(2), first.chunk(2), last.chunk(2), strict=True):
                out.append(critic.read(h_pass[mask], present).cpu().numpy())
                starts.append(first_pass.reshape(-1, m).cpu().numpy())
                after.append(last_pass.cpu().numpy())
        self.agents.memories[traj.slots, a : a + m] = after[0]
        self.agents.memories[traj.slots, a + m :] = after[1]
        traj.extras["value_memory_after"] = after[0]
        return out[0], out[1], np.concatenate(starts, axis=1)

    def _bootstrap(self, traj: Trajectories) -> None:
        """The group's value after each trajectory that must be bootstrapped (see poca.trajectory); with
        memory, from the value memory after the trajectory's last step (``_recurrent_critic``)."""
        needs = traj.needs_bootstrap
        rows = checked_obs([o[needs] for o in traj.next_obs], self.behavior_name, self.step)
        if not self.memory_size:
            traj.bootstrap_value[needs] = self._critic(rows, traj.extras["next_mates_obs"][needs])[0]
            return
        module = self.module
        with torch.inference_mode():
            values, _ = module.critic.recurrent_value(
                module.preprocess(self._tensor(rows)),
                module.preprocess_mates(self._tensor(traj.extras["next_mates_obs"][needs])),
                self._tensor(traj.extras["value_memory_after"][needs]),
            )
        traj.bootstrap_value[needs] = values.cpu().numpy()

    @timed("process_trajectory")
    def _add_trajectories(self, traj: Trajectories) -> None:
        """Value the steps with the critic, then rewards, lambda-returns and advantages G - B per stream."""
        ex = {key: traj.flat(traj.extras[key]) for key in STEP_EXTRAS}
        obs = checked_obs([traj.flat(o) for o in traj.obs], self.behavior_name, self.step)
        if self.module.normalizer is not None:
            self.module.normalizer.update(obs)  # before valuing, as upstream
        critic_memories = None
        if self.memory_size:
            values, baselines, critic_memories = self._recurrent_critic(traj, obs, ex)
        else:
            values, baselines = self._critic(obs, ex["mates_obs"], ex["mates_continuous"], ex["mates_discrete"])
        assert baselines is not None
        if traj.needs_bootstrap.any():
            self._bootstrap(traj)
        own = traj.flat(traj.env_reward)
        team_reward = own + ex["mates_reward"] + ex["group_reward"]  # what the extrinsic stream trains on
        rewards, next_obs, done = self._trajectory_rewards(traj, obs, team_reward)
        padded_v, padded_b = traj.padded(values), traj.padded(baselines)
        returns, advantages = [], []
        for k, (name, signal) in enumerate(self.reward_signals.items()):
            # GAE's return is upstream's lambda-return: G_t = r_t + g((1 - l) V_t+1 + l G_t+1), G_T = r_T + g V_next.
            _, ret = gae(
                rewards[k], padded_v[..., k], traj.bootstrap_value[:, k], traj.lengths, signal.gamma, self.hp.lambd
            )
            returns.append(traj.flat(ret))
            advantages.append(traj.flat(ret) - baselines[:, k])
            self.stats.add(f"Policy/{name.capitalize()} Value Estimate", values[:, k])
            self.stats.add(f"Policy/{name.capitalize()} Baseline Estimate", baselines[:, k])
        del padded_v, padded_b
        chunk = {
            "obs": obs,
            "mates_obs": ex["mates_obs"],
            "mates_continuous": ex["mates_continuous"],
            "mates_discrete": ex["mates_discrete"],
            "continuous": traj.flat(traj.continuous),
            "discrete": traj.flat(traj.discrete),
            "action_mask": traj.flat(traj.action_mask),
            "old_log_prob": ex["log_prob_parts"],
            "old_values": values,
            "old_baselines": baselines,
            "returns": np.stack(returns, axis=-1),
            "advantages": np.mean(advantages, axis=0).astype(np.float32),
            "next_obs": next_obs,
            "env_reward": own,
            "done": done,
        }
        if critic_memories is not None:
            chunk = self._sequences(traj, chunk, critic_memories)
        self._buffer.append(chunk)
        self._buffered += len(obs)

    def _sequences(
        self, traj: Trajectories, steps: dict[str, np.ndarray], critic_memories: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Flat per-step fields -> whole sequences [S, L, ...] (each trajectory cut into sequence_length pieces,
        the last one padded), with each sequence's starting actor, value and baseline memories [S, a + 2 m] and
        its valid mask [S, L]. Padding steps' groupmate rows are NaN (absent), so that they cannot raise the
        critic's ``n_max_seen`` when the update replays them."""
        length = self.sequence_length
        seq_valid = to_sequences(traj.valid(), length)
        keep = seq_valid[:, 0]
        chunk = {key: to_sequences(traj.padded(value), length)[keep] for key, value in steps.items()}
        valid = seq_valid[keep]
        chunk["mates_obs"][~valid] = np.nan
        assert traj.memory is not None
        actor = to_sequences(traj.memory, length)[:, 0]
        chunk["memories"] = np.concatenate([actor, critic_memories], axis=1)[keep]
        chunk["valid"] = valid
        return chunk

    # ---- updating -----------------------------------------------------------------------------
    def _take_buffer(self) -> dict[str, np.ndarray]:
        """The update buffer as one array per field, groupmate slots padded to the widest chunk."""
        width = max(c["mates_obs"].shape[-2] for c in self._buffer)  # [N, M, row] or [S, L, M, row]
        fills = {"mates_obs": np.nan, "mates_continuous": 0.0, "mates_discrete": 0}
        data = {
            k: np.concatenate([pad_mates(c[k], width, fills[k]) if k in fills else c[k] for c in self._buffer])
            for k in self._buffer[0]
        }
        self._buffer.clear()
        self._buffered = 0
        return data

    def update(self) -> None:
        """``num_epoch`` passes over the buffer in minibatches of batch_size steps, or with memory of
        batch_size // sequence_length whole sequences (upstream's minibatch rounded down to whole sequences);
        padding steps count nowhere (advantage normalisation, losses, reward signals, statistics)."""
        data = self._take_buffer()
        valid = data.get("valid")
        lr, bs = self._begin_update(data)
        tensors = {k: self._tensor(v) for k, v in data.items()}
        n = len(data["obs"])  # steps, or sequences with memory
        fields = [f for f in POCAMinibatch._fields if f in tensors]
        keys = ("policy_loss", "value_loss", "baseline_loss", "approx_kl", "clip_fraction")
        sums: dict[str, torch.Tensor] = {}
        signal_sums: dict[str, float] = {}
        count = 0
        self.module.train()
        for _ in range(self.hp.num_epoch):
            perm = torch.randperm(n, device=self.device)
            for i in range(max(1, n // bs)):
                idx = perm[i * bs : (i + 1) * bs]
                batch = POCAMinibatch(*(tensors[f][idx] for f in fields))
                terms = self.module.training_step(batch, i)
                self.optimize(self.optimizer, terms["loss"])
                if self.intrinsic:
                    self._step_signals(self._signal_batch(batch, tensors, idx), signal_sums)
                for key in keys:
                    sums[key] = sums.get(key, 0.0) + terms[key]
                count += 1
        self.update_count += 1
        if count:
            for key, name in zip(keys, _UPDATE_STATS, strict=True):
                self.stats.add(name, float(sums[key]) / count)
            for key, total in signal_sums.items():
                self.stats.add(key, total / count)
        if self.bc is not None:
            for key, value in self.bc.update(self.step).items():
                self.stats.add(key, value)
        returns, values = data["returns"], data["old_values"]
        if valid is not None:
            returns, values = returns[valid], values[valid]
        var = returns.var()
        self.stats.add("Policy/Explained Variance", float(1 - (returns - values).var() / var) if var > 0 else 0.0)
        self.stats.add("Policy/Learning Rate", lr)
        self.stats.add("Policy/Epsilon", self.module.epsilon)
        self.stats.add("Policy/Beta", self.module.beta)

    def _signal_batch(self, batch: POCAMinibatch, tensors: dict[str, torch.Tensor], idx: torch.Tensor) -> SignalBatch:
        """What the learning reward signals train on from a minibatch: its real steps, flat."""
        obs, cont, disc = batch.obs, batch.continuous, batch.discrete
        next_obs, env_reward, done = (tensors[k][idx] for k in ("next_obs", "env_reward", "done"))
        if batch.valid is not None:
            valid = batch.valid
            obs, cont, disc, next_obs, env_reward, done = (
                t[valid] for t in (obs, cont, disc, next_obs, env_reward, done)
            )
        return SignalBatch(obs, next_obs, self.module.actor.env_continuous(cont), disc, env_reward, done)


_UPDATE_STATS = (
    "Losses/Policy Loss",
    "Losses/Value Loss",
    "Losses/Baseline Loss",
    "Policy/Approx KL",
    "Policy/Clip Fraction",
)

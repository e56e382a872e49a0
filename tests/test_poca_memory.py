"""MA-POCA with LSTM memory (``network_settings.memory``): the actor's memory as PPO's, the critic's value and
baseline memories carried per agent across the trajectories of an episode and zeroed at its end, trajectories
valued by sequence exactly as step-by-step critic calls carrying memory, sequence replay in the update equal to
acting, an update that trains every LSTM, the cue task that only memory solves, and the CLI (train, resume,
evaluate) on env=sacrifice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlx.config import ExtrinsicSettings, MemorySettings, POCASettings
from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from mlx.trainers.poca.critic import POCAValueNetwork, lstm_by_sequence
from mlx.trainers.poca.trainer import POCAMinibatch, POCATrainer, pad_mates
from mlx.trainers.registry import make_trainer
from tests.conftest import run_mlx
from tests.test_memory import CueEnv
from tests.test_memory import train as train_cue

SPEC = BehaviorSpec((ObservationSpec((3,), "v"),), ActionSpec(continuous_size=1, discrete_branches=(3,)))
MEMORY, LENGTH, HORIZON = 8, 4, 6  # memory floats per LSTM, sequence_length, time_horizon
SMALL = ("trainer.hyperparameters.batch_size=64", "trainer.hyperparameters.buffer_size=512", "tracking=none")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as runs use (torch_settings.num_threads): on a busy 2-core machine two threads make
    these tiny LSTM and attention calls 10 to 100 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trainer(memory: bool = True, buffer_size: int = 10_000) -> POCATrainer:
    torch.manual_seed(0)
    settings = POCASettings(time_horizon=HORIZON)
    settings.hyperparameters.buffer_size = buffer_size
    settings.hyperparameters.batch_size = 16
    settings.network_settings.hidden_units = 16
    settings.network_settings.num_layers = 1
    if memory:
        settings.network_settings.memory = MemorySettings(sequence_length=LENGTH, memory_size=MEMORY)
    t = make_trainer("T", SPEC, settings, {"extrinsic": ExtrinsicSettings(gamma=0.9)}, torch.device("cpu"), 0)
    assert isinstance(t, POCATrainer)
    t.module.critic.n_max_seen.fill_(2.0)  # groups of two from the start: values do not depend on arrival order
    return t


class Groups:
    """``n`` groups of two agents (ids 2g and 2g + 1, group id g + 1) with random observations and rewards.
    A group's episode lasts 3 to 9 decisions (so time_horizon 6 cuts some mid-episode); in some episodes the
    second agent leaves after its 2nd decision while its mate plays on; episodes of 9 end interrupted."""

    def __init__(self, n: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.n = n
        self.t = [0] * n
        self.length = [int(self.rng.integers(3, 10)) for _ in range(n)]
        self.leaves = [bool(self.rng.random() < 0.5) for _ in range(n)]

    def steps(self) -> tuple[DecisionSteps, TerminalSteps]:
        decide: list[int] = []
        ended: list[tuple[int, bool]] = []  # (agent, interrupted)
        for g in range(self.n):
            first, second = 2 * g, 2 * g + 1
            gone = self.leaves[g] and self.t[g] > 2
            if self.t[g] >= self.length[g]:  # the group's episode ends; a new one starts at once
                interrupted = self.length[g] == 9
                ended += [(first, interrupted)] + ([] if gone else [(second, interrupted)])
                self.t[g] = 0
                self.length[g] = int(self.rng.integers(3, 10))
                self.leaves[g] = bool(self.rng.random() < 0.5)
                decide += [first, second]
            elif self.leaves[g] and self.t[g] == 2:  # the second agent leaves, its mate plays on
                ended.append((second, False))
                decide.append(first)
            else:
                decide += [first] if gone else [first, second]
            self.t[g] += 1
        ids = np.array(decide)
        t_ids = np.array([agent for agent, _ in ended], dtype=np.int64)
        k = len(t_ids)
        terminal = TerminalSteps(
            [self.rng.normal(size=(k, 3)).astype(np.float32)],
            self.rng.normal(size=k).astype(np.float32),
            t_ids,
            np.array([i for _, i in ended], dtype=bool),
            t_ids // 2 + 1,
            self.rng.normal(size=k).astype(np.float32),
        )
        decision = DecisionSteps(
            [self.rng.normal(size=(len(ids), 3)).astype(np.float32)],
            self.rng.normal(size=len(ids)).astype(np.float32),
            ids,
            None,
            ids // 2 + 1,
            self.rng.normal(size=len(ids)).astype(np.float32),
        )
        return decision, terminal


def drive(t: POCATrainer, steps: int, seed: int = 0, groups: int = 3) -> None:
    env = Groups(groups, seed)
    for _ in range(steps):
        t.process(*env.steps())


def buffer(t: POCATrainer) -> dict[str, np.ndarray]:
    return {k: np.concatenate([c[k] for c in t._buffer]) for k in t._buffer[0]}


def test_shapes_and_the_memory_row():
    t = trainer()
    module = t.module
    assert module.actor_memory == MEMORY and module.critic.memory_size == MEMORY
    assert t.memory_size == module.memory_size == 3 * MEMORY  # actor, value, baseline
    assert module.critic.lstm is not None and module.critic.lstm.hidden_size == MEMORY // 2
    assert module.critic.heads.in_features == MEMORY // 2 + 1
    drive(t, 30)
    assert t.agents.memories.shape == (6, 3 * MEMORY)
    data = buffer(t)
    s = len(data["valid"])
    assert data["obs"].shape == (s, LENGTH, 3) and data["mates_obs"].shape[:3] == (s, LENGTH, 1)
    assert data["memories"].shape == (s, 3 * MEMORY) and data["valid"][:, 0].all()
    assert int(data["valid"].sum()) == t._buffered
    assert np.isnan(data["mates_obs"][~data["valid"]]).all()  # padding holds no groupmate
    # The update's buffer keeps one groupmate slot (slots are counted on the mates' axis, not the steps').
    wide = {k: pad_mates(v, 2, np.nan) if k == "mates_obs" else v for k, v in t._buffer[0].items()}
    t._buffer.append({**wide, **{k: pad_mates(wide[k], 2, 0) for k in ("mates_continuous", "mates_discrete")}})
    taken = t._take_buffer()
    assert taken["mates_obs"].shape == (s + len(wide["obs"]), LENGTH, 2, 3)
    assert taken["mates_discrete"].shape[2:] == (2, 1) and np.isnan(taken["mates_obs"][:s, :, 1]).all()
    # Without memory: no LSTM, no memory row, the critic's parameters as before.
    plain = trainer(memory=False)
    assert plain.memory_size == 0 and plain.module.critic.lstm is None
    assert not any("lstm" in k for k in plain.module.state_dict())


def test_memories_carried_between_decisions_and_trajectories_and_zeroed_at_episode_end():
    t = trainer()
    env = Groups(3, 1)
    t.process(*env.steps())
    mem = t.agents.memories
    assert np.abs(mem[:, :MEMORY]).sum(1).min() > 0  # every agent's actor memory moved
    assert not mem[:, MEMORY:].any()  # no trajectory valued yet: the critic memories have not moved
    seen = []
    original = t._add_trajectories

    def spy(traj):
        before = t.agents.memories[traj.slots].copy()
        original(traj)
        seen.append((traj, before, t.agents.memories[traj.slots].copy()))

    t._add_trajectories = spy  # type: ignore[method-assign]
    a, m = MEMORY, MEMORY
    zeroed = 0
    for _ in range(40):
        d, term = env.steps()
        t.process(d, term)
        if len(term):  # whoever's episode ended: no critic memory left; a fresh actor memory if it decided again
            slots = t.agents.lookup(term.agent_id)
            assert not t.agents.memories[slots, a:].any()
            again = np.isin(term.agent_id, d.agent_id)
            assert not t.agents.memories[slots[~again]].any()
            zeroed += len(slots)
    assert zeroed
    cut = [(b, af) for tr, b, af in seen if not tr.episode_end.any()]
    assert cut and any(tr.episode_end.all() for tr, *_ in seen)
    for before, after in cut:  # cut at time_horizon mid-episode: the critic memories moved on
        assert not np.array_equal(before[:, a:], after[:, a:])
        assert np.abs(after[:, a : a + m]).sum(1).min() > 0 and np.abs(after[:, a + m :]).sum(1).min() > 0
    # A trajectory that follows a cut one in the same episode starts from the memories after it.
    assert any(np.abs(before[:, a:]).sum() > 0 for _, before, _ in seen)
    # The step stored at an episode's first decision holds a zero actor memory, later ones do not.
    st = t.assembler.steps
    playing = st.length > 0
    fresh = playing & (t.agents.episode.lengths == st.length)  # the episode began with this trajectory
    assert fresh.any() and not st.memory[fresh, 0].any()
    later = playing & (st.length > 1)
    assert later.any() and np.abs(st.memory[later, 1]).sum(1).min() > 0


def test_trajectory_valued_with_memory_equals_step_by_step_critic_calls():
    t = trainer()
    seen = []
    original = t._add_trajectories

    def spy(traj):
        start = t.agents.memories[traj.slots].copy()
        original(traj)
        seen.append((traj, start, t.agents.memories[traj.slots].copy(), t._buffer[-1]))

    t._add_trajectories = spy  # type: ignore[method-assign]
    drive(t, 40, seed=3)
    critic = t.module.critic
    a, m = MEMORY, MEMORY
    checked = bootstrapped = 0
    for traj, start, after, chunk in seen:
        valid = chunk["valid"]
        flat = {k: chunk[k][valid] for k in ("obs", "mates_obs", "mates_continuous", "mates_discrete")}
        flat.update(old_values=chunk["old_values"][valid], old_baselines=chunk["old_baselines"][valid])
        offsets = np.concatenate([[0], np.cumsum(traj.lengths)])
        for e in range(len(traj)):
            vm = torch.as_tensor(start[e : e + 1, a : a + m])
            bm = torch.as_tensor(start[e : e + 1, a + m :])
            for i in range(offsets[e], offsets[e + 1]):
                x = torch.as_tensor(flat["obs"][i : i + 1])
                mates = torch.as_tensor(flat["mates_obs"][i : i + 1])
                with torch.no_grad():
                    v, b, vm, bm = critic.recurrent_value_and_baseline(
                        x,
                        mates,
                        torch.as_tensor(flat["mates_continuous"][i : i + 1]),
                        torch.as_tensor(flat["mates_discrete"][i : i + 1]),
                        vm,
                        bm,
                    )
                np.testing.assert_allclose(v.numpy()[0], flat["old_values"][i], atol=1e-5)
                np.testing.assert_allclose(b.numpy()[0], flat["old_baselines"][i], atol=1e-5)
                checked += 1
            # The memories after the last step are the agent's now (zeroed later where its episode ended).
            np.testing.assert_allclose(after[e, a : a + m], vm.numpy()[0], atol=1e-5)
            np.testing.assert_allclose(after[e, a + m :], bm.numpy()[0], atol=1e-5)
            if traj.needs_bootstrap[e]:  # from the value memory after the last step
                with torch.no_grad():
                    want, _ = critic.recurrent_value(
                        torch.as_tensor(traj.next_obs[0][e : e + 1]),
                        torch.as_tensor(traj.extras["next_mates_obs"][e : e + 1]),
                        vm,
                    )
                np.testing.assert_allclose(traj.bootstrap_value[e], want.numpy()[0], atol=1e-5)
                bootstrapped += 1
    assert checked == sum(int(tr.lengths.sum()) for tr, *_ in seen) and bootstrapped > 0


def test_sequence_replay_in_the_update_equals_acting():
    """The update's replay from each sequence's stored memories gives the log-probabilities of acting and the
    values and baselines of valuing, on every real step."""
    t = trainer()
    drive(t, 60, seed=4)
    data = buffer(t)
    b = POCAMinibatch(*(torch.as_tensor(data[f]) for f in POCAMinibatch._fields))
    s, length = b.valid.shape
    module = t.module
    flat = POCAMinibatch(*(x.reshape(s * length, *x.shape[2:]) for x in b[:-2]))
    actor_mem, value_mem, baseline_mem = module.split_memories(b.memories)
    with torch.no_grad():
        log_prob, _ = module.actor.evaluate(
            flat.obs, flat.continuous, flat.discrete, flat.action_mask, actor_mem, length, components=True
        )
        values, baselines, _, _ = module.critic.recurrent_value_and_baseline(
            flat.obs, flat.mates_obs, flat.mates_continuous, flat.mates_discrete, value_mem, baseline_mem, length
        )
    valid = b.valid.reshape(-1)
    torch.testing.assert_close(log_prob[valid], flat.old_log_prob[valid], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values[valid], flat.old_values[valid], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(baselines[valid], flat.old_baselines[valid], atol=1e-5, rtol=1e-5)
    # The loss of that minibatch sees real steps only: garbage on padding changes nothing.
    module.eval()
    with torch.no_grad():
        clean = module.training_step(b, 0)
        dirty = b._replace(obs=torch.where(b.valid[..., None], b.obs, torch.tensor(1e3)))
        torch.testing.assert_close(module.training_step(dirty, 0)["loss"], clean["loss"])


def test_an_update_trains_every_network():
    t = trainer(buffer_size=64)
    env = Groups(3, 5)
    while not t.ready_to_update():
        t.process(*env.steps())
    before = {k: v.detach().clone() for k, v in t.module.named_parameters()}
    t.update()
    changed = {k for k, v in t.module.named_parameters() if not torch.equal(before[k], v)}
    assert any(k.startswith("actor.body.lstm") for k in changed)
    assert any(k.startswith("critic.lstm") for k in changed)
    assert t._buffered == 0 and not t._buffer
    summary = t.stats.summarise()
    for name in ("Losses/Policy Loss", "Losses/Value Loss", "Losses/Baseline Loss", "Policy/Explained Variance"):
        assert np.isfinite(summary[name].mean), name
    drive(t, 10, seed=6)  # acting goes on after the update


def test_lstm_by_sequence_packs_each_trajectory_to_its_length():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 2, batch_first=True)
    x = torch.randn(2, 7, 3)
    lengths = torch.tensor([7, 3])
    start = torch.randn(2, 4)
    out, starts, last = lstm_by_sequence(lstm, x, lengths, start, 3)
    assert out.shape == (2, 7, 2) and starts.shape == (2, 3, 4) and last.shape == (2, 4)
    for e in range(2):
        state = (start[e, :2].reshape(1, 1, 2), start[e, 2:].reshape(1, 1, 2))
        for i in range(int(lengths[e])):
            if i % 3 == 0:
                torch.testing.assert_close(starts[e, i // 3], torch.cat([state[0][0, 0], state[1][0, 0]]))
            y, state = lstm(x[e : e + 1, i : i + 1], state)
            torch.testing.assert_close(out[e, i], y[0, 0])
        torch.testing.assert_close(last[e], torch.cat([state[0][0, 0], state[1][0, 0]]))
    assert not out[1, 3:].any()


def test_no_memory_critic_unchanged_by_memory_code():
    """A critic without memory builds the same parameters as before memory existed (checkpoints load)."""
    settings = POCASettings().network_settings
    critic = POCAValueNetwork(SPEC, ["extrinsic"], settings)
    assert critic.memory_size == 0 and critic.heads.in_features == settings.hidden_units + 1
    with pytest.raises(ValueError, match="recurrent"):
        POCAValueNetwork(
            SPEC, ["extrinsic"], type(settings)(memory=MemorySettings(sequence_length=4, memory_size=8))
        ).value(torch.zeros(1, 3), torch.zeros(1, 0, 3))


def test_cli_trains_resumes_and_evaluates_with_memory(workdir):
    common = ("trainer=poca", "env=sacrifice", "network=lstm", "trainer.network_settings.memory.sequence_length=8")
    proc = run_mlx(*common, "trainer.max_steps=2000", "trainer.summary_freq=1000", "run_id=m", *SMALL, cwd=workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Mean Group Reward:" in proc.stdout
    again = run_mlx("run_id=m", "resume=true", "trainer.max_steps=3000", "tracking=none", cwd=workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Resuming from step" in again.stdout and "Step: 3" in again.stdout
    evaluated = run_mlx("mode=evaluate", "run_id=m", "evaluate.episodes=5", "tracking=none", cwd=workdir)
    assert evaluated.returncode == 0 and "Evaluated 5 episodes" in evaluated.stdout, evaluated.stderr[-2000:]
    assert (workdir / "results/m/Sacrifice.onnx").exists()


def cue_trainer(memory: bool) -> POCATrainer:
    """tests/test_memory.py's settings for the cue task, with POCA (no group ids: each agent a group of one)."""
    torch.manual_seed(0)
    settings = POCASettings(time_horizon=16, max_steps=40_000)
    hp = settings.hyperparameters
    hp.batch_size, hp.buffer_size, hp.learning_rate, hp.beta, hp.num_epoch = 128, 512, 3e-3, 0.01, 3
    settings.network_settings.hidden_units = 32
    settings.network_settings.num_layers = 1
    if memory:
        settings.network_settings.memory = MemorySettings(sequence_length=8, memory_size=32)
    t = make_trainer(
        "Cue", CueEnv(1, 0).spec, settings, {"extrinsic": ExtrinsicSettings(gamma=0.9)}, torch.device("cpu")
    )
    assert isinstance(t, POCATrainer)
    return t


def test_only_memory_solves_the_cue_task():
    """The cue shown at an episode's first step decides the reward at its last: POCA with memory solves it
    (0.98 over the last 400 episodes; about 4 s), without memory it cannot beat chance (0.53)."""
    with_memory = train_cue(cue_trainer(memory=True), 400)
    without = train_cue(cue_trainer(memory=False), 400)
    assert np.mean(with_memory[-400:]) > 0.9, np.mean(with_memory[-400:])
    assert np.mean(without[-400:]) < 0.65, np.mean(without[-400:])

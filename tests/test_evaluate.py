"""mode=evaluate: a trained 3DBall policy, acted by torch (checkpoint) and by onnxruntime (exported
policy), keeps the ball up for 100 episodes; a policy for another env is refused clearly; episodes are
counted in the order they start, so short ones are not favoured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlx.envs.api import DecisionSteps, TerminalSteps
from mlx.modes.episodes import EpisodeCounter
from tests.conftest import run_mlx


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3DBall PPO run trained to a mean reward of 95 (the user's command, fixed seed)."""
    workdir = tmp_path_factory.mktemp("evaluate")
    proc = run_mlx("env=3dball", "seed=1", "run_id=a", "stop_at_reward=95", "tracking=none", "progress=plain",
                   cwd=workdir, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return workdir


@pytest.mark.learning
@pytest.mark.parametrize("policy", ["checkpoint", "onnx"])
def test_trained_3dball_policy_keeps_the_ball_up_over_100_episodes(trained, policy):
    extra = ["evaluate.policy=results/a/3DBall.onnx"] if policy == "onnx" else []
    proc = run_mlx("env=3dball", "run_id=a", "mode=evaluate", "tracking=none", "seed=7", *extra, cwd=trained,
                   timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((trained / "results/a/run_logs/evaluation.json").read_text())["3DBall"]
    assert report["episodes"] == 100
    assert report["mean_return"] >= 95, report
    assert "[INFO] 3DBall. Evaluated 100 episodes (deterministic actions): Mean Return:" in proc.stdout
    # The training run's Hydra record is kept; the evaluation's goes beside it.
    assert "mode: train" in (trained / "results/a/.hydra/config.yaml").read_text()
    assert "mode: evaluate" in (trained / "results/a/.hydra-evaluate/config.yaml").read_text()


@pytest.mark.learning
@pytest.mark.parametrize("policy", ["results/a/3DBall/checkpoint.pt", "results/a/3DBall.onnx"])
def test_a_policy_for_another_env_is_refused_naming_both_layouts(trained, policy):
    proc = run_mlx("env=3dballhard", "run_id=a", "mode=evaluate", "tracking=none", f"evaluate.policy={policy}",
                   cwd=trained, timeout=300)  # fmt: skip
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("mlx: error: "), proc.stderr
    assert "3DBallHard" in lines[0] or "(45,)" in lines[0], lines[0]


def test_evaluating_a_run_that_does_not_exist_says_what_to_do(tmp_path):
    proc = run_mlx("env=basic", "run_id=nothing", "mode=evaluate", "tracking=none", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "has no trained policy" in proc.stderr and "evaluate.policy=" in proc.stderr


def steps(decide: list[int], ended: dict[int, float]) -> tuple[DecisionSteps, TerminalSteps]:
    """One step: agents ``decide`` act (reward 0); ``ended`` maps agents whose episode ended to their reward."""
    decision = DecisionSteps([np.zeros((len(decide), 1))], np.zeros(len(decide)), np.array(decide, int))
    ids = np.array(list(ended), int)
    terminal = TerminalSteps([np.zeros((len(ids), 1))], np.array(list(ended.values())), ids, np.zeros(len(ids), bool))
    return decision, terminal


def test_episodes_are_counted_in_the_order_they_start_not_the_order_they_end():
    """Agents 0 and 1 win (+1) after every decision; agents 2 and 3 lose (-1) after 10. The first four
    episodes to end are all wins (mean +1); the first four to start are two of each (mean 0)."""
    counter = EpisodeCounter(4)
    counter.add(*steps([0, 1, 2, 3], {}))
    for t in range(1, 11):
        assert not counter.done
        long_ended = {2: -1.0, 3: -1.0} if t == 10 else {}
        counter.add(*steps([0, 1] + ([] if t == 10 else [2, 3]), {0: 1.0, 1: 1.0, **long_ended}))
    assert counter.done
    assert sorted(counter.returns) == [-1.0, -1.0, 1.0, 1.0]
    assert sorted(counter.lengths) == [1, 1, 10, 10]


def test_group_behaviours_are_evaluated_by_the_group_rewards_their_agents_received():
    """Two agents of group 1: a group reward of 0.5 mid-episode and 1.0 at the end reaches both; their own
    rewards stay apart. An ungrouped behaviour reports no group return."""
    counter = EpisodeCounter(2)
    decision, _ = steps([0, 1], {})
    counter.add(decision, TerminalSteps([np.zeros((0, 1))], np.zeros(0), np.zeros(0, int), np.zeros(0, bool)))
    decision = DecisionSteps([np.zeros((2, 1))], np.array([0.1, 0.2]), np.array([0, 1]), None, np.array([1, 1]),
                             np.array([0.5, 0.5]))  # fmt: skip
    counter.add(decision, TerminalSteps([np.zeros((0, 1))], np.zeros(0), np.zeros(0, int), np.zeros(0, bool)))
    terminal = TerminalSteps([np.zeros((2, 1))], np.array([0.0, -0.2]), np.array([0, 1]), np.zeros(2, bool),
                             np.array([1, 1]), np.array([1.0, 1.0]))  # fmt: skip
    counter.add(DecisionSteps([np.zeros((0, 1))], np.zeros(0), np.zeros(0, int)), terminal)
    assert counter.done and counter.grouped
    assert counter.returns == pytest.approx([0.1, 0.0]) and counter.group_returns == [1.5, 1.5]
    # Agent 2 of group 7 dies alone (its mate 3 goes on): its episode counts, its group return does not.
    dead = EpisodeCounter(2)
    dead.add(DecisionSteps([np.zeros((2, 1))], np.zeros(2), np.array([2, 3]), None, np.array([7, 7]), np.zeros(2)),
             TerminalSteps([np.zeros((0, 1))], np.zeros(0), np.zeros(0, int), np.zeros(0, bool)))  # fmt: skip
    dead.add(DecisionSteps([np.zeros((1, 1))], np.zeros(1), np.array([3]), None, np.array([7]), np.zeros(1)),
             TerminalSteps([np.zeros((1, 1))], np.zeros(1), np.array([2]), np.zeros(1, bool), np.array([7]),
                           np.zeros(1)))  # fmt: skip
    dead.add(DecisionSteps([np.zeros((0, 1))], np.zeros(0), np.zeros(0, int)),
             TerminalSteps([np.zeros((1, 1))], np.zeros(1), np.array([3]), np.zeros(1, bool), np.array([7]),
                           np.ones(1)))  # fmt: skip
    assert dead.done and len(dead.returns) == 2 and dead.group_returns == [1.0]
    plain = EpisodeCounter(1)
    plain.add(*steps([0], {}))
    plain.add(*steps([], {0: 1.0}))
    assert plain.done and not plain.grouped


@pytest.mark.parametrize(
    "overrides",
    [["trainer=ppo"], ["trainer=sac"], ["trainer=ppo", "trainer.network_settings.normalize=true"], ["network=lstm"]],
)
def test_a_checkpoint_acts_as_its_trainer_without_building_the_trainer(tmp_path, overrides):
    """mode=evaluate builds only the actor and normaliser from a checkpoint: the same actions as the trainer
    that wrote it (first decision, so every agent's memory is zero)."""
    import torch

    from mlx.config import validate
    from mlx.envs import make_env
    from mlx.modes.policy import TorchPolicy, load_policy
    from mlx.trainers.base import concat_vector_obs
    from mlx.trainers.nn.networks import to_env_continuous
    from mlx.trainers.registry import make_trainer
    from tests.conftest import compose_tree

    cfg = validate(compose_tree("env=3dball", *overrides, f"results_dir={tmp_path}"))
    env = make_env("3dball", 3, 0)
    spec = env.behavior_specs["3DBall"]
    trainer = make_trainer("3DBall", spec, cfg.trainer_for("3DBall"), cfg.signals_for("3DBall"), torch.device("cpu"))
    env.reset()
    for _ in range(20):  # the normaliser moves away from its start
        decision, terminal = env.get_steps("3DBall")
        env.set_actions("3DBall", trainer.process(decision, terminal))
        env.step()
    torch.save({"trainer": trainer.state_dict(), "behavior_spec": repr(spec)}, tmp_path / "c.pt")
    policy = load_policy(cfg, "3DBall", spec, tmp_path / "c.pt", deterministic=True)
    assert isinstance(policy, TorchPolicy) and not hasattr(policy, "optimizer")
    decision, _ = env.get_steps("3DBall")
    actor = trainer.module.actor
    memories = torch.zeros(len(decision), actor.memory_size) if actor.memory_size else None
    with torch.inference_mode():
        x = trainer.module.preprocess(torch.as_tensor(concat_vector_obs(decision.obs)))
        out = actor.sample(x, None, True, memories).continuous
    expected = out if actor.tanh_squash else to_env_continuous(out)
    np.testing.assert_allclose(policy.act(decision).continuous, expected.numpy(), rtol=1e-6, atol=1e-6)

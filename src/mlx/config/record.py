"""The Hydra side of a run folder: what the command line was, and the saved run it acts on.

Hydra itself writes nothing into a run folder (conf/config.yaml sets ``hydra.output_subdir: null`` and a
neutral ``hydra.run.dir``): it would do so before mlx has checked the run_id, overwriting an existing
run's record on a refused start (or writing to ``results/../elsewhere``). Instead mlx writes the same
record, ``.hydra/{config,hydra,overrides}.yaml``, once a start is accepted (mlx.training.run), and a mode
writes ``.hydra-<mode>/`` when it has acted. mlx.config.resume uses ``overrides.yaml`` to rebase a resume.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlx.config.resume import (
    OPERATIONAL,
    acts_on_existing_run,
    changes,
    check_resumable,
    load_original_overrides,
    load_saved,
    rebase,
    run_folder,
)


def command_overrides() -> list[str]:
    """The overrides on this job's command line (a multirun job's own), [] outside Hydra."""
    from hydra.core.hydra_config import HydraConfig  # lazy for start-up speed (hydra)

    if not HydraConfig.initialized():
        return []
    return [str(o) for o in HydraConfig.get().overrides.task]


def hydra_record(cfg: DictConfig) -> dict[str, str]:
    """Hydra's record of this job, file name -> YAML text, for mlx to write where the start is accepted."""
    from hydra.core.hydra_config import HydraConfig  # lazy for start-up speed (hydra)

    if not HydraConfig.initialized():
        return {}
    hydra = OmegaConf.create({"hydra": OmegaConf.to_container(HydraConfig.get(), resolve=False)})
    return {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "hydra.yaml": OmegaConf.to_yaml(hydra),
        "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(command_overrides())),
    }


def _compose(overrides: list[str]) -> dict[str, Any]:
    from hydra import compose  # lazy for start-up speed (hydra)

    cfg = compose("config", overrides=[o for o in overrides if not o.lstrip("+~").startswith("hydra.")])
    tree = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(tree, dict)
    tree.pop("sweep", None)
    return tree


def on_existing_run(cfg: DictConfig) -> DictConfig:
    """For resume=true and the modes: the run's saved configuration with this command line applied on
    top (mlx.config.resume); ``cfg`` unchanged when it names no existing run."""
    head = {k: OmegaConf.select(cfg, k) for k in ("run_id", "results_dir", "resume", "mode")}
    folder = run_folder(head)
    if folder is None or not acts_on_existing_run(head):
        return cfg
    saved = load_saved(folder)
    if saved is None:
        return cfg
    tree = rebase(saved, load_original_overrides(folder), command_overrides(), _compose)
    current = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    assert isinstance(current, dict)
    for key in (*OPERATIONAL, "run_id", "results_dir"):  # what to do now is this command line's
        if key in current:
            tree[key] = current[key]
    if current.get("sweep") is not None:
        tree["sweep"] = current["sweep"]
    if tree.get("resume"):  # refused here, before the changed tree meets the schema's own refusals
        check_resumable(changes(saved, tree), str(tree["run_id"]))
    return OmegaConf.create(tree)


def write_mode_record(cfg: DictConfig, record: dict[str, str]) -> None:
    """After a mode acted: its record in ``.hydra-<mode>/`` of the run folder, beside the training run's."""
    folder = run_folder({k: OmegaConf.select(cfg, k) for k in ("run_id", "results_dir")})
    if folder is None or not folder.is_dir() or not record:
        return
    target = folder / f".hydra-{OmegaConf.select(cfg, 'mode')}"
    target.mkdir(exist_ok=True)
    for file_name, text in record.items():
        (target / file_name).write_text(text)

"""ML-Agents' ``threaded``: a behaviour's update runs in its own thread while the env steps and the agents act.

The trainer freezes its policy first (``freeze_policy``: the agents act with a copy the update does not
change, and trajectories that end meanwhile wait), the update runs, then ``thaw_policy`` swaps the updated
policy in and processes the trajectories that waited, as upstream's trainer thread does after each update.
When a buffer's worth of steps has waited, the loop waits for the update: no update learns from a policy
more than one update old. Until the update ends the loop leaves that behaviour alone: no summary,
checkpoint or callback reads a model mid-update. Numpy and torch release the GIL in their kernels, so the
env and the update overlap in part; benchmarks/threaded.py measures where that pays. Runs are not
bit-reproducible with it (the threads interleave as the OS schedules them), as upstream's are not.
"""

from __future__ import annotations

import threading
from typing import Protocol


class Freezable(Protocol):
    def freeze_policy(self) -> None: ...

    def thaw_policy(self) -> None: ...

    def held_enough(self) -> bool: ...

    def update(self) -> None: ...


class BackgroundUpdate:
    """One update of one behaviour in a daemon thread; ``finish`` joins it and re-raises what it raised (a
    non-finite loss, say) in the loop's thread."""

    def __init__(self, name: str, trainer: Freezable) -> None:
        self.trainer = trainer
        self.error: BaseException | None = None
        trainer.freeze_policy()
        self.thread = threading.Thread(target=self._run, name=f"mlx-update-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.trainer.update()
        except BaseException as exc:  # handed to the loop's thread by finish()
            self.error = exc

    def done(self) -> bool:
        """The update ended, or must be waited for: a buffer's worth of new steps is already waiting."""
        return not self.thread.is_alive() or self.trainer.held_enough()

    def finish(self) -> None:
        """Wait for the update, act with the updated policy, take in what waited; re-raise its error."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        self.trainer.thaw_policy()

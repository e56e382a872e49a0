"""Group ids of several env processes merged into one batch stay apart (mlx.envs.unity.merge)."""

from __future__ import annotations

import numpy as np

from mlx.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from mlx.envs.unity.merge import Part, concat, merged_group_ids

SPEC = BehaviorSpec([ObservationSpec((2,))], ActionSpec(0, (3,)))


def _part(worker: int, groups: list[int]):
    n = len(groups)
    dec = DecisionSteps(
        [np.zeros((n, 2), np.float32)],
        np.zeros(n, np.float32),
        np.arange(n),
        group_id=np.array(groups, np.int32),
        group_reward=np.zeros(n, np.float32),
    )
    term = TerminalSteps(
        [np.zeros((0, 2), np.float32)], np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, bool)
    )
    return Part(worker, "B", n), dec, term, np.zeros(n), np.zeros(0)


def test_the_same_group_number_in_two_workers_is_two_groups():
    parts = [_part(0, [1, 1, 0]), _part(1, [1, 2])]
    dec, _ = concat(SPEC, parts, [np.arange(3), np.arange(3, 5)], [np.zeros(0, np.int64)] * 2)
    gid = dec.group_id.tolist()
    assert gid[0] == gid[1] != 0 and gid[2] == 0
    assert len({gid[0], gid[3], gid[4]}) == 3


def test_a_worker_alone_in_a_step_keeps_the_ids_it_has_beside_others():
    alone, _ = concat(SPEC, [_part(1, [1, 2])], [np.arange(2)], [np.zeros(0, np.int64)])
    both, _ = concat(
        SPEC, [_part(0, [1]), _part(1, [1, 2])], [np.arange(1), np.arange(1, 3)], [np.zeros(0, np.int64)] * 2
    )
    assert alone.group_id.tolist() == both.group_id.tolist()[1:]


def test_no_group_stays_none_and_zero_stays_zero():
    assert merged_group_ids(3, None) is None
    assert merged_group_ids(3, np.array([0, 0])).tolist() == [0, 0]

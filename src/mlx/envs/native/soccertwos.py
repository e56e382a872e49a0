"""SoccerTwos: a vectorised port of Unity ML-Agents' SoccerTwos (2 v 2, symmetric, MA-POCA with self-play).

The field, physics, kicks, rewards, resets and ray casts are the shared engine's (mlx.envs.native.soccer,
whose module doc holds the rules, the decisions where the facts sheet says NOT FOUND, and the deviations).
Here: four "Generic" agents per field (forward speed 1.0, lateral 0.3), one behaviour ``SoccerTwos``:
agents ``4 * field + k``, k = 0, 1 blue (team 0, prefabs at (-3.19, +-1.2)), k = 2, 3 purple (team 1, at
(3.19, +-1.2)); each colour of a field is one group (ids ``2 * field + 1`` blue, ``2 * field + 2``
purple). Each agent has two ray sensors, in ML-Agents' order (by name, as upstream's
``BlueRayPerceptionSensor`` and ``BlueRayPerceptionSensorReverse``; purple agents' sensors are named
Purple... upstream and share the blue names here, as one spec serves both teams):
``StackingSensor_size3_BlueRayPerceptionSensor`` (264: 11 rays, 5 per direction over 60 degrees, 8 floats
each, 3 stacks) and ``StackingSensor_size3_BlueRayPerceptionSensorReverse`` (72: 3 rays backwards, 1 per
direction over 45 degrees). Tags (semantic, upstream's purple lists swap the colours): ball, own goal,
opponents' goal, wall, teammate, opponent. A goal pays the scoring group +1 and the other -1 (group
rewards) and ends both groups' episodes; 1000 decisions without a goal interrupt both; no individual
reward (``ball_touch`` 0). No existential reward.

Scores: the first game of each of 512 fields, seed 0 (``play`` in tests/test_soccertwos.py; measured
when this env was written). A game is *decided* by a goal; the others time out after 1000 decisions.

* scripted blue (``mlx.envs.native.soccer_scripted.scripted_actions``: privileged state; the player nearer the
  ball gets behind it on the line from the opponents' goal and runs through it, the other holds midway
  between the ball and its own goal) against uniformly random purple: blue wins 498, purple 11 (mostly
  own goals), 3 draws: **97.8% of decided games** (``SCRIPTED_WIN_RATE``), 0.6% draws, 64 decisions
  per game on average;
* random against random: blue 71, purple 95, 346 draws: **67.6% draws** (``RANDOM_DRAW_RATE``), 841
  decisions per game. Blue took 42.8% of these 166 decided games, 46.4% of 941 over seeds 0-5 (3072
  games; seeds 2 and 5 favour blue): the rules are point-symmetric (tests/test_soccertwos.py steps a
  field and its mirror image side by side) and scripted against scripted ends 253 to 253 with 6 draws,
  so this reads as chance (z = -2.2 over the six seeds).

A trained team should beat a random one as the scripted team does (the lead's benchmark asks >= 90% of
decided games at 5M steps).

Throughput with random actions (agent steps per second; 2-core VM under load 4.6 from other benchmarks,
2026-12-05): 2.7k at 1 field, 20k at 8, **33k at 16 (the conf's num_areas)**, 53k at 32, 68k at 64, 80k
at 256. At 16 fields about 60% of a decision is its five physics steps (contacts of agents and ball,
walls, nets) and 40% its one vectorised ray cast (14 rays x 15 colliders x 64 agents).
"""

from __future__ import annotations

from mlx.envs.native.soccer import (
    BALL,
    BLUE,
    MATE,
    OPP_GOAL,
    OPPONENT,
    OWN_GOAL,
    PURPLE,
    WALL,
    Role,
    SoccerEnv,
    SoccerSensor,
)

BEHAVIOR = "SoccerTwos"
TAGS = (BALL, OWN_GOAL, OPP_GOAL, WALL, MATE, OPPONENT)
SENSORS = (
    SoccerSensor("BlueRayPerceptionSensor", 5, 60.0, TAGS),
    SoccerSensor("BlueRayPerceptionSensorReverse", 1, 45.0, TAGS, backward=True),
)
GENERIC = (1.0, 0.3)  # forward, lateral speed
SCRIPTED_WIN_RATE, RANDOM_DRAW_RATE = 0.978, 0.676  # measured (module doc)


class SoccerTwosEnv(SoccerEnv):
    """``num_areas`` SoccerTwos fields, two blue and two purple agents each, behaviour ``SoccerTwos``."""

    behaviors = (BEHAVIOR,)
    agents_per_area = 4
    roles = (
        Role(BEHAVIOR, BLUE, ((-3.19, 1.2), (-3.19, -1.2)), *GENERIC, SENSORS),
        Role(BEHAVIOR, PURPLE, ((3.19, 1.2), (3.19, -1.2)), *GENERIC, SENSORS),
    )

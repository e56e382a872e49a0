"""StrikersVsGoalie: a vectorised port of Unity ML-Agents' StrikersVsGoalie (2 strikers v 1 goalie, asymmetric).

The field, physics, kicks, goals, resets and ray casts are the shared engine's (mlx.envs.native.soccer,
whose module doc holds the rules, the decisions where the facts sheet says NOT FOUND, and the deviations).
Here, per field: two blue ``Striker`` agents (team 0, one group, ids ``3 * field + 0/1``; forward speed 1.3,
lateral 0.3) and one purple ``Goalie`` (team 1, its own group of one, id ``3 * field + 2``; forward and
lateral speed 1.0; it always kicks at full power). Group ids ``2 * field + 1`` (strikers) and ``2 * field
+ 2`` (goalie). The two behaviours have different observation specs:

* Striker (294): ``StackingSensor_size3_BlueRayPerceptionSensor`` (231: 11 rays, 5 per direction over 60
  degrees) and ``StackingSensor_size3_BlueRayPerceptionSensorReverse`` (63: 3 rays backwards, 1 per
  direction over 45 degrees); tags ball, the goal it attacks (``purpleGoal``), wall, teammate
  (``blueAgent``), opponent (``purpleAgent``): 7 floats per ray.
* Goalie (738): ``StackingSensor_size3_PurpleRayPerceptionSensor``: 41 rays, 20 per direction over 180
  degrees (all round); tags ball, its own goal (``purpleGoal``), wall, opponent (``blueAgent``): 6 floats
  per ray. The goal it does not defend is not among its tags (a ray that meets it reads as a hit without
  a tag, as ML-Agents encodes undetectable colliders).

The sensors' names in the StrikersVsGoalie prefab are NOT FOUND; these follow SoccerTwos' (the order is
the same either way: forward before reverse). Rewards: the existential term 1/MaxEnvironmentSteps =
0.0002 per physics step (individual: -0.0002 to each striker, +0.0002 to the goalie, while the episode
runs: -1 / +1 over a full timed-out episode), plus the group rewards of a goal (+1 scorer, -1 the other
group), as the facts sheet §5.2 reads the code. Starts: the strikers' prefabs stand where SoccerTwos'
blue agents do (their StrikersVsGoalie positions are NOT FOUND), the goalie's at x = 4 (facts sheet), so
it starts at x = 9 + U(-5, 5), on the middle line (z = 0, NOT FOUND).

Scores: the first game of each of 512 fields, seed 0 (``play`` in tests/test_strikersvsgoalie.py;
measured when this env was written). A game is decided by a goal; the others time out after 1000 decisions.

* scripted strikers (``mlx.envs.native.soccer_scripted.scripted_actions``, as in SoccerTwos) against a uniformly
  random goalie: strikers 500, goalie 12, no draws: **97.7% of decided games** (``SCRIPTED_WIN_RATE``),
  44 decisions per game;
* random strikers against the scripted player as goalie (it attacks: it runs the ball into the strikers'
  net): goalie 479, strikers 21, 12 draws (strikers 4.2% of decided games), 77 decisions;
* random against random: strikers 139, goalie 125, 248 draws: **48.4% draws** (``RANDOM_DRAW_RATE``),
  strikers 52.7% of decided games, 719 decisions per game;
* scripted against scripted: strikers 281, goalie 226, 5 draws.

Throughput with random actions (agent steps per second, all three agents counted; 2-core VM under load
4.6 from other benchmarks, 2026-12-05): 2.5k at 1 field, 16k at 8, 18k at 16, **28k at 32 (the conf's
num_areas)**, 39k at 64, 58k at 256 (two ray casts per decision, one per behaviour: strikers 14 rays,
the goalie 41).
"""

from __future__ import annotations

from mlx.envs.native.soccer import (
    BALL,
    BLUE,
    MATE,
    MAX_ENVIRONMENT_STEPS,
    OPP_GOAL,
    OPPONENT,
    OWN_GOAL,
    PURPLE,
    WALL,
    Role,
    SoccerEnv,
    SoccerSensor,
)

STRIKER, GOALIE = "Striker", "Goalie"
EXISTENTIAL = 1.0 / MAX_ENVIRONMENT_STEPS
STRIKER_TAGS = (BALL, OPP_GOAL, WALL, MATE, OPPONENT)
GOALIE_TAGS = (BALL, OWN_GOAL, WALL, OPPONENT)
STRIKER_SENSORS = (
    SoccerSensor("BlueRayPerceptionSensor", 5, 60.0, STRIKER_TAGS),
    SoccerSensor("BlueRayPerceptionSensorReverse", 1, 45.0, STRIKER_TAGS, backward=True),
)
SCRIPTED_WIN_RATE, RANDOM_DRAW_RATE = 0.977, 0.484  # measured (module doc)
GOALIE_SENSORS = (SoccerSensor("PurpleRayPerceptionSensor", 20, 180.0, GOALIE_TAGS),)


class StrikersVsGoalieEnv(SoccerEnv):
    """``num_areas`` fields, two blue strikers (behaviour ``Striker``) and a purple goalie (``Goalie``) each."""

    behaviors = (STRIKER, GOALIE)
    agents_per_area = 3
    roles = (
        Role(STRIKER, BLUE, ((-3.19, 1.2), (-3.19, -1.2)), 1.3, 0.3, STRIKER_SENSORS, existential=-EXISTENTIAL),
        Role(GOALIE, PURPLE, ((4.0, 0.0),), 1.0, 1.0, GOALIE_SENSORS, always_kick=True, existential=EXISTENTIAL),
    )

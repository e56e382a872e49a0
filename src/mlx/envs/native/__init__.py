"""Native ports of the ML-Agents example envs, vectorised over areas.

``base`` (NativeEnv, FrameStack) is what every port builds on; ``arena`` (2D physics), ``arena_env``
(its ports' base), ``rays`` (ray perception), ``camera`` (the 3DBall scene's camera), ``ball3d_kernel``
and ``ball3d_view`` are shared pieces, as are ``limbs`` (body-part tables to MuJoCo scenes) and
``locomotion`` (the MuJoCo walkers' base: Worm, Crawler, Walker); ``render`` draws pictures for people.
Each other module is one example env, registered in mlx.envs.registry.
"""

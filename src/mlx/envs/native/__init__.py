"""Native ports of the ML-Agents example envs, vectorised over areas, and their engine."""

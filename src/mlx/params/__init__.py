"""Environment parameters: samplers and curricula (ML-Agents' environment_parameters)."""

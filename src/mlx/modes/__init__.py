"""What `mode=` runs besides training: evaluate, watch, record. Env + policy only."""

"""Experiment records: the MLflow writer, run comparison and learning curves."""

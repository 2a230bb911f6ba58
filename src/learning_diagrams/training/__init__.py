"""Training compiled diagrams: the trainer, data policies, checkpoints, logs and metrics."""

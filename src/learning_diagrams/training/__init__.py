"""Training compiled diagrams: the trainer, data policies, checkpoints, logs and metrics."""

from .loaders import POLICIES, CombinedBatches
from ..logs import History
from .metrics import accuracy, evaluate
from .trainer import Stage, Trainer, fit

__all__ = ["Trainer", "Stage", "fit", "History", "CombinedBatches", "POLICIES", "evaluate", "accuracy"]

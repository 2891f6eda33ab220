"""Training: the fit loop, evaluation, callbacks (schedules, early stopping, checkpoints,
loggers), progress reporting and saving weights."""

from deepgrad.training.callbacks import (
    Callback,
    EarlyStopping,
    FitState,
    GracefulInterrupt,
    LRSchedulerCallback,
    TrainingInterrupted,
)
from deepgrad.training.checkpoint import (
    Checkpoint,
    ModelCheckpoint,
    load_checkpoint,
    save_checkpoint,
)
from deepgrad.training.io import atomic_write, load_weights, save_weights, write_json
from deepgrad.training.loggers import CSVLogger, JSONLinesLogger, TensorBoardLogger
from deepgrad.training.loop import NonFiniteLossError, evaluate, fit, predict, validation_split
from deepgrad.training.metrics import correct_count
from deepgrad.training.progress import ProgressLogger, format_record

__all__ = [
    "CSVLogger", "Callback", "Checkpoint", "EarlyStopping", "FitState", "GracefulInterrupt",
    "JSONLinesLogger", "LRSchedulerCallback", "ModelCheckpoint", "NonFiniteLossError",
    "ProgressLogger", "TensorBoardLogger", "TrainingInterrupted", "atomic_write",
    "correct_count", "evaluate", "fit", "format_record", "load_checkpoint", "load_weights",
    "predict", "save_checkpoint", "save_weights", "validation_split", "write_json",
]

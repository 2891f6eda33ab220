"""Training: the fit loop, evaluation, callbacks, progress reporting and saving weights."""

from deepgrad.training.callbacks import Callback, FitState, LRSchedulerCallback
from deepgrad.training.io import atomic_write, load_weights, save_weights, write_json
from deepgrad.training.loop import NonFiniteLossError, evaluate, fit, validation_split
from deepgrad.training.metrics import correct_count
from deepgrad.training.progress import ProgressLogger, format_record

__all__ = [
    "Callback", "FitState", "LRSchedulerCallback", "NonFiniteLossError", "ProgressLogger",
    "atomic_write", "correct_count", "evaluate", "fit", "format_record", "load_weights",
    "save_weights", "validation_split", "write_json",
]

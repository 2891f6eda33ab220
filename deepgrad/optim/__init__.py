"""Optimizers (``deepgrad.optim`` mirrors ``torch.optim``)."""

from deepgrad.optim import lr_scheduler
from deepgrad.optim.adadelta import Adadelta
from deepgrad.optim.adagrad import Adagrad
from deepgrad.optim.adam import Adam, AdamW
from deepgrad.optim.lbfgs import LBFGS
from deepgrad.optim.nadam import NAdam
from deepgrad.optim.newton import NewtonCG
from deepgrad.optim.optimizer import Optimizer
from deepgrad.optim.rmsprop import RMSprop
from deepgrad.optim.sgd import SGD

__all__ = ["SGD", "Optimizer"]
__all__ += ["Adadelta", "Adagrad", "Adam", "AdamW", "NAdam", "RMSprop", "lr_scheduler"]
__all__ += ["LBFGS", "NewtonCG"]

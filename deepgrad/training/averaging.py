"""Averaging models: deep ensembles (average of predictions) and weight averaging (SWA, EMA).

* :class:`Ensemble` averages the softmax probabilities of independently trained members;
  :func:`train_ensemble` trains one member per seed (Lakshminarayanan et al. 2017).
* :class:`AveragedModel` keeps a running average of a model's weights; :class:`SWA` (an equal
  average from a start epoch, Izmailov et al. 2018) and :class:`EMA` (an exponential moving
  average every step, Polyak & Juditsky 1992) drive it from the fit loop as callbacks.
  :func:`update_bn` recomputes the BatchNorm statistics of averaged weights.

PARITY: ``torch.optim.swa_utils``: ``AveragedModel`` (``module``, ``n_averaged``,
``update_parameters``, ``avg_fn``/``multi_avg_fn``, ``use_buffers``), ``get_ema_avg_fn``,
``get_swa_avg_fn``, ``get_ema_multi_avg_fn``, ``get_swa_multi_avg_fn``, ``update_bn`` and
``SWALR``. An ``avg_fn`` receives detached deepgrad Tensors (NumPy arithmetic works on them);
a ``multi_avg_fn`` updates the averaged tensors in place through ``.data``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from deepgrad._random import manual_seed
from deepgrad.autograd.grad_mode import no_grad
from deepgrad.nn import Module, ModuleList
from deepgrad.nn import functional as F
from deepgrad.nn.modules.batchnorm import _BatchNorm
from deepgrad.ops import logsumexp, stack
from deepgrad.optim import Optimizer
from deepgrad.optim.lr_scheduler import LRScheduler, _per_group
from deepgrad.tensor import Tensor
from deepgrad.training.callbacks import Callback, FitState
from deepgrad.training.loop import fit

# ----------------------------------------------------------------------------- ensembles


class Ensemble(Module):
    """The average of the members' predicted class probabilities.

    forward(x) = log( (1/K) sum_k softmax(f_k(x)) ), computed stably as
    logsumexp_k(log_softmax(f_k(x))) - log K. The output is a log-probability, so
    ``F.cross_entropy(out, y)`` (whose log_softmax leaves log-probabilities unchanged) and
    ``F.nll_loss(out, y)`` are both the negative log-likelihood of the averaged distribution,
    ``out.argmax(1)`` is the ensemble's prediction and :func:`~deepgrad.training.evaluate` works
    as for one model. ``out.exp()`` gives the averaged probabilities.

    Args:
        models: the members, each mapping (N, *) inputs to (N, C) logits.

    Reference: Lakshminarayanan, Pritzel, Blundell, "Simple and Scalable Predictive
    Uncertainty Estimation using Deep Ensembles", NeurIPS 2017.
    """

    def __init__(self, models: Iterable[Module]):
        super().__init__()
        members = list(models)
        if not members:
            raise ValueError("Ensemble: needs at least one model")
        for m in members:
            if not isinstance(m, Module):
                raise TypeError(f"Ensemble: members must be Modules, got {type(m).__name__}")
        self.members = ModuleList(members)

    def forward(self, x: Tensor) -> Tensor:
        logps = []
        for m in self.members:
            out = m(x)
            if out.ndim != 2:
                raise ValueError(f"Ensemble: members must return (N, C) logits, got shape "
                                 f"{tuple(out.shape)}")
            logps.append(F.log_softmax(out, dim=1))
        return logsumexp(stack(logps, dim=0), dim=0) - math.log(len(logps))

    def extra_repr(self) -> str:
        return f"{len(self.members)} members, averaging probabilities"


def train_ensemble(
    build_model: Callable[[], Module],
    build_optimizer: Callable[[Iterable], Optimizer],
    train_loader: Iterable | Callable[[int], Iterable],
    epochs: int,
    seeds: Sequence[int] = (0, 1, 2),
    val_loader: Iterable | None = None,
    per_member: Callable[[Module, Optimizer], Mapping] | None = None,
    **fit_kwargs,
) -> tuple[Ensemble, list[list[dict]]]:
    """Train one member per seed with :func:`~deepgrad.training.fit` and ensemble them.

    For each seed the global generator is reseeded (``manual_seed(seed)``), then
    ``model = build_model()`` and ``build_optimizer(model.parameters())`` are called: members
    differ in their initialisation, and in their data order when the loader shuffles with the
    global generator (``DataLoader(..., shuffle=True)`` without ``seed``) or when
    ``train_loader`` is a function ``seed -> loader``.

    Args:
        build_model: returns a freshly initialised model.
        build_optimizer: ``build_optimizer(parameters) -> Optimizer``.
        train_loader: a loader, or ``train_loader(seed)`` returning one.
        epochs: epochs per member.
        seeds: one member per seed, distinct.
        val_loader: evaluated after every epoch of every member.
        per_member: ``per_member(model, optimizer)`` -> more ``fit`` keyword arguments for
            that member, e.g. ``{"callbacks": [schedule], "regularizer": penalty}``.
        **fit_kwargs: passed to every member's ``fit`` (``loss_fn``, ``progress``, ``log``,
            ``clip_grad_norm``, ...).

    Returns:
        ``(ensemble, histories)``: the :class:`Ensemble` and each member's ``fit`` history.
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"train_ensemble: seeds must be distinct and non-empty, got {seeds}")
    members, histories = [], []
    for seed in seeds:
        manual_seed(int(seed))
        model = build_model()
        optimizer = build_optimizer(model.parameters())
        loader = train_loader(seed) if callable(train_loader) else train_loader
        kwargs = {**fit_kwargs, **(per_member(model, optimizer) if per_member else {})}
        histories.append(fit(model, optimizer, loader, epochs, val_loader=val_loader, **kwargs))
        members.append(model)
    return Ensemble(members), histories


# ----------------------------------------------------------------------------- averaging rules


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """``avg_fn`` of an exponential moving average: ema = decay * ema + (1 - decay) * w."""
    _check_decay(decay)
    return lambda ema, current, num_averaged: decay * ema + (1 - decay) * current


def get_swa_avg_fn() -> Callable:
    """``avg_fn`` of an equal average: avg + (w - avg) / (n + 1) after n models."""
    return lambda avg, current, num_averaged: avg + (current - avg) / (num_averaged + 1)


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """``multi_avg_fn`` of an exponential moving average, updating the tensors in place."""
    _check_decay(decay)

    def ema_update(ema_list: list[Tensor], current_list: list[Tensor], num_averaged) -> None:
        for e, c in zip(ema_list, current_list, strict=True):
            if e.data.dtype.kind == "f":  # PARITY: torch._foreach_lerp_ for floats
                e.data += (1 - decay) * (c.data - e.data)
            else:
                e.data[...] = e.data * decay + c.data * (1 - decay)
    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """``multi_avg_fn`` of an equal average, updating the tensors in place."""
    def swa_update(avg_list: list[Tensor], current_list: list[Tensor], num_averaged) -> None:
        for a, c in zip(avg_list, current_list, strict=True):
            a.data[...] = a.data + (c.data - a.data) / (int(num_averaged) + 1)
    return swa_update


def _check_decay(decay: float) -> None:
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")


class AveragedModel(Module):
    """A copy of ``model`` whose weights are a running average of ``model``'s weights.

    Each :meth:`update_parameters` call folds the current weights of ``model`` in: the first
    copies them, later ones apply ``avg_fn`` (default: the equal average of all models seen,
    SWA). Without ``use_buffers`` the buffers (BatchNorm statistics) are copied from ``model``
    at each update; after training run :func:`update_bn` to fit them to the averaged weights.

    Args:
        model: the model to average; it is deep-copied.
        avg_fn: ``avg_fn(averaged, current, num_averaged) -> new averaged`` per tensor.
        multi_avg_fn: ``multi_avg_fn(averaged_list, current_list, num_averaged)`` updating all
            tensors in place (exclusive with ``avg_fn``).
        use_buffers: average the buffers too (parameters and buffers alike).

    Attributes:
        module: the averaged copy; ``n_averaged``: an int64 buffer, models folded in.
    """

    def __init__(self, model: Module, avg_fn: Callable | None = None,
                 multi_avg_fn: Callable | None = None, use_buffers: bool = False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: give only one of avg_fn and multi_avg_fn")
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", Tensor._wrap(np.zeros((), dtype=np.int64)))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _averaged(self, model: Module) -> list[Tensor]:
        tensors = list(model.parameters())
        return tensors + list(model.buffers()) if self.use_buffers else tensors

    def update_parameters(self, model: Module) -> None:
        """Fold the current weights of ``model`` into the average (under ``no_grad``)."""
        mine, theirs = self._averaged(self.module), self._averaged(model)
        if len(mine) != len(theirs) or any(a.shape != b.shape for a, b in zip(mine, theirs)):
            raise ValueError("AveragedModel.update_parameters: the model's parameters do not "
                             "match the averaged copy's (a different architecture?)")
        n = int(self.n_averaged.data)
        with no_grad():
            if n == 0:
                for a, b in zip(mine, theirs):
                    a.data[...] = b.data
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn([a.detach() for a in mine], [b.detach() for b in theirs], n)
            else:
                fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
                for a, b in zip(mine, theirs):
                    new = fn(a.detach(), b.detach(), n)
                    # NOTE: integer buffers (num_batches_tracked) truncate, as torch's copy_.
                    a.data[...] = new.data if isinstance(new, Tensor) else new
            if not self.use_buffers:
                for a, b in zip(self.module.buffers(), model.buffers(), strict=True):
                    a.data[...] = b.data
        self.n_averaged.data[...] = n + 1


def update_bn(loader: Iterable, model: Module) -> None:
    """Recompute the BatchNorm running statistics of ``model`` by one pass over ``loader``.

    Every BatchNorm layer's statistics are reset and, with ``momentum=None`` (a cumulative
    average over the batches), re-estimated in train mode; the momenta and the train/eval mode
    are restored afterwards. A model without BatchNorm is left untouched. Needed after weight
    averaging: the statistics collected along the trajectory do not fit the averaged weights.

    Args:
        loader: yields input batches, or tuples/lists whose first element is the input.
        model: the model (e.g. an :class:`AveragedModel`).
    """
    momenta = {}
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.reset_running_stats()
            momenta[m] = m.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for m in momenta:
        m.momentum = None
    try:
        with no_grad():
            for batch in loader:
                model(batch[0] if isinstance(batch, (list, tuple)) else batch)
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` epochs, then hold it.

    Args:
        optimizer: the optimizer.
        swa_lr: the final lr, one for all groups or one per group.
        anneal_epochs: epochs of the annealing phase (0: switch at once).
        anneal_strategy: ``"cos"`` or ``"linear"``.
        last_epoch: -1 for a fresh schedule.

    Reference: Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
    Generalization", UAI 2018.
    """

    def __init__(self, optimizer: Optimizer, swa_lr: float | Sequence[float],
                 anneal_epochs: int = 10, anneal_strategy: str = "cos", last_epoch: int = -1):
        for lr, group in zip(_per_group("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) \
                or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got "
                             f"{anneal_epochs}")
        self.anneal_epochs, self.anneal_strategy = anneal_epochs, anneal_strategy
        super().__init__(optimizer, last_epoch)

    def _alpha(self, t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2 if self.anneal_strategy == "cos" else t

    def get_lr(self) -> list[float]:
        # PARITY: torch's recursive form: the lr before annealing is recovered from the
        # group's current lr, so the schedule composes with changes made by others.
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        span = max(1, self.anneal_epochs)
        prev_alpha = self._alpha(max(0.0, min(1.0, (step - 1) / span)))
        alpha = self._alpha(max(0.0, min(1.0, step / span)))
        out = []
        for g in self.optimizer.param_groups:
            prev = g["swa_lr"] if prev_alpha == 1 else \
                (g["lr"] - prev_alpha * g["swa_lr"]) / (1 - prev_alpha)
            out.append(g["swa_lr"] * alpha + prev * (1 - alpha))
        return out


# ----------------------------------------------------------------------------- callbacks


class _AveragingCallback(Callback):
    """Holds the :class:`AveragedModel` (made from ``state.model`` when training begins; a
    second ``fit`` with the same callback continues the average) and the final update_bn."""

    def __init__(self, bn_loader: Iterable | None, use_buffers: bool):
        self.bn_loader, self.use_buffers = bn_loader, use_buffers
        self.averaged_model: AveragedModel | None = None

    def _make(self, model: Module) -> AveragedModel:
        raise NotImplementedError

    @property
    def module(self) -> Module | None:
        """The averaged copy of the model (None before training)."""
        return None if self.averaged_model is None else self.averaged_model.module

    def on_train_begin(self, state: FitState) -> None:
        if self.averaged_model is None:
            self.averaged_model = self._make(state.model)

    def on_train_end(self, state: FitState) -> None:
        avg = self.averaged_model
        if self.bn_loader is not None and state.completed and avg is not None \
                and int(avg.n_averaged.data) > 0:
            update_bn(self.bn_loader, avg)


class SWA(_AveragingCallback):
    """Stochastic Weight Averaging: the equal average of the weights visited late in training.

    From epoch ``start_epoch`` on, the weights are folded into ``averaged_model`` at the end
    of every epoch (``every_steps=None``) or after every ``every_steps``-th optimizer step.
    With ``swa_lr`` the learning rate is held at that constant from ``start_epoch`` on (the
    paper's constant-lr SWA; it is rewritten after every step, so it overrides a schedule
    callback listed before this one). With ``bn_loader`` the averaged model's BatchNorm
    statistics are recomputed by :func:`update_bn` when training completes.

    Args:
        start_epoch: first epoch (from 1) whose weights are averaged.
        every_steps: average every this many steps instead of once per epoch.
        swa_lr: constant lr from ``start_epoch`` on (None: leave the lr alone).
        bn_loader: training batches for :func:`update_bn` at the end (None: skip).
        use_buffers: average the buffers too (see :class:`AveragedModel`).

    Attributes:
        averaged_model: the :class:`AveragedModel`; evaluate it like any model.

    Reference: Izmailov, Podoprikhin, Garipov, Vetrov, Wilson, "Averaging Weights Leads to
    Wider Optima and Better Generalization", UAI 2018.
    """

    def __init__(self, start_epoch: int = 1, every_steps: int | None = None,
                 swa_lr: float | None = None, bn_loader: Iterable | None = None,
                 use_buffers: bool = False):
        for name, v in (("start_epoch", start_epoch), ("every_steps", every_steps)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise ValueError(f"SWA: {name} must be a positive int, got {v!r}")
        if swa_lr is not None and not (isinstance(swa_lr, (int, float)) and swa_lr > 0):
            raise ValueError(f"SWA: swa_lr must be a number > 0, got {swa_lr!r}")
        super().__init__(bn_loader, use_buffers)
        self.start_epoch, self.every_steps, self.swa_lr = start_epoch, every_steps, swa_lr

    def _make(self, model: Module) -> AveragedModel:
        return AveragedModel(model, use_buffers=self.use_buffers)

    def _set_lr(self, state: FitState) -> None:
        if self.swa_lr is not None and state.epoch >= self.start_epoch:
            for g in state.optimizer.param_groups:
                g["lr"] = self.swa_lr

    def on_epoch_begin(self, state: FitState) -> None:
        self._set_lr(state)

    def on_batch_end(self, state: FitState) -> None:
        if self.every_steps is not None and state.epoch >= self.start_epoch \
                and state.step % self.every_steps == 0:
            self.averaged_model.update_parameters(state.model)
        self._set_lr(state)

    def on_epoch_end(self, state: FitState) -> None:
        if self.every_steps is None and state.epoch >= self.start_epoch:
            self.averaged_model.update_parameters(state.model)


class EMA(_AveragingCallback):
    """Exponential moving average of the weights (Polyak averaging), updated during ``fit``.

    After every ``every_steps``-th optimizer step: ema = decay * ema + (1 - decay) * w (the
    first update copies w). ``decay`` near 1 averages over about 1 / (1 - decay) steps.

    Args:
        decay: in [0, 1].
        every_steps: update after every this many steps.
        bn_loader: training batches for :func:`update_bn` at the end (None: skip).
        use_buffers: average the buffers too instead of copying them.

    Attributes:
        averaged_model: the :class:`AveragedModel`; evaluate it like any model.

    Reference: Polyak & Juditsky, "Acceleration of Stochastic Approximation by Averaging",
    SIAM J. Control Optim. 1992.
    """

    def __init__(self, decay: float = 0.999, every_steps: int = 1,
                 bn_loader: Iterable | None = None, use_buffers: bool = False):
        _check_decay(decay)
        if isinstance(every_steps, bool) or not isinstance(every_steps, int) or every_steps <= 0:
            raise ValueError(f"EMA: every_steps must be a positive int, got {every_steps!r}")
        super().__init__(bn_loader, use_buffers)
        self.decay, self.every_steps = decay, every_steps

    def _make(self, model: Module) -> AveragedModel:
        return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.decay),
                             use_buffers=self.use_buffers)

    def on_batch_end(self, state: FitState) -> None:
        if state.step % self.every_steps == 0:
            self.averaged_model.update_parameters(state.model)

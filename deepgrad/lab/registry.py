"""The lab's claims: a plain dict from CLI name to a claim instance.

To add a claim, write its module under ``deepgrad/lab/claims/`` and add one import and one
line to :data:`CLAIMS`.
"""

from __future__ import annotations

from deepgrad.lab.claims.activations import ActivationsClaim
from deepgrad.lab.claims.batch_size import BatchSizeClaim
from deepgrad.lab.claims.batchnorm import BatchNormClaim
from deepgrad.lab.claims.bias_variance import BiasVarianceClaim
from deepgrad.lab.claims.clipping import ClippingClaim
from deepgrad.lab.claims.dropout import DropoutClaim
from deepgrad.lab.claims.init import InitClaim
from deepgrad.lab.claims.losses import LossesClaim
from deepgrad.lab.claims.lr_schedule import LRScheduleClaim
from deepgrad.lab.claims.optimizers import OptimizersClaim
from deepgrad.lab.claims.regularization import RegularizationClaim
from deepgrad.lab.claims.residual import ResidualClaim
from deepgrad.lab.core import Claim

#: name -> Claim instance, in the order ``deepgrad lab list`` shows them.
CLAIMS: dict[str, Claim] = {
    "optimizers": OptimizersClaim(),
    "batchnorm": BatchNormClaim(),
    "init": InitClaim(),
    "activations": ActivationsClaim(),
    "dropout": DropoutClaim(),
    "regularization": RegularizationClaim(),
    "batch-size": BatchSizeClaim(),
    "lr-schedule": LRScheduleClaim(),
    "clipping": ClippingClaim(),
    "losses": LossesClaim(),
    "residual": ResidualClaim(),
    "bias-variance": BiasVarianceClaim(),
}


def list_claims() -> list[Claim]:
    """Every registered claim, in registry order."""
    return list(CLAIMS.values())


def get_claim(name: str) -> Claim:
    """The claim called ``name``.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    if name not in CLAIMS:
        raise ValueError(f"unknown claim {name!r}; available: {', '.join(CLAIMS)}")
    return CLAIMS[name]

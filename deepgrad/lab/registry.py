"""The lab's claims: a plain dict from CLI name to a claim instance.

To add a claim, write its module under ``deepgrad/lab/claims/`` and add one import and one
line to :data:`CLAIMS`.
"""

from __future__ import annotations

from deepgrad.lab.claims.activations import ActivationsClaim
from deepgrad.lab.claims.batchnorm import BatchNormClaim
from deepgrad.lab.claims.init import InitClaim
from deepgrad.lab.claims.optimizers import OptimizersClaim
from deepgrad.lab.core import Claim

#: name -> Claim instance, in the order ``deepgrad lab list`` shows them.
CLAIMS: dict[str, Claim] = {
    "optimizers": OptimizersClaim(),
    "batchnorm": BatchNormClaim(),
    "init": InitClaim(),
    "activations": ActivationsClaim(),
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

"""One module per claim; each defines a :class:`~deepgrad.lab.core.Claim` subclass that
:mod:`deepgrad.lab.registry` lists."""

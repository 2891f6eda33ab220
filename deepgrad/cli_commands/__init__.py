"""Parts of the ``deepgrad`` command that would make ``deepgrad/cli.py`` too long.

``training_options``: the optimizers, schedules and regularisation options of
``deepgrad train``; ``inspect``: the ``shape`` and ``summary`` subcommands.
"""

"""``python -m deepgrad``: the ``deepgrad`` command."""

from deepgrad.cli import main

raise SystemExit(main())

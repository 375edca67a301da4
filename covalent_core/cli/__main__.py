"""``python -m covalent_core.cli``: the ``covalent-core`` command."""

from . import main

main()

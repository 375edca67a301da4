"""``python -m covalent_core``: the covalent-core command."""

from .cli import main

main()

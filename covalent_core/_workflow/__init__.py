"""Covalent's programming model, laid out as Covalent lays it out (``covalent._workflow``):
electrons and lattices, their task environments (deps), leptons, transportable objects, and
what building a graph runs. Code that imports from Covalent's private modules runs with
``covalent`` changed to ``covalent_core``."""

from .electron import Electron, electron, wait
from .lattice import Lattice, lattice

__all__ = ["Electron", "Lattice", "electron", "lattice", "wait"]

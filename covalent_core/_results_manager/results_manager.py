"""Covalent's ``covalent._results_manager.results_manager``: reading and cancelling
dispatches (:mod:`covalent_core.api`)."""

from ..api import cancel, get_result

__all__ = ["cancel", "get_result"]

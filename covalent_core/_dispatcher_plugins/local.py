"""Covalent's ``LocalDispatcher``, mapped onto covalent-core's dispatch.

Covalent's client sends a workflow in stages: a manifest is prepared from a built lattice,
registered with the server (which gives it a dispatch id), its assets uploaded, and the
dispatch started. Here a registered manifest is a stored dispatch that no service runs until
:meth:`LocalDispatcher.start`; there are no assets to upload (the store has everything once
it is registered), so :meth:`~LocalDispatcher.upload_assets` has nothing to do. Server
addresses are accepted and unused.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import api, redispatching, triggers
from .._workflow import Lattice


@dataclass
class ManifestMetadata:
    """The part of a manifest Covalent's callers read: the dispatch id, once registered."""

    dispatch_id: str | None = None
    root_dispatch_id: str | None = None


@dataclass
class Manifest:
    """A built lattice on its way to being a dispatch (Covalent's ``ResultSchema`` role)."""

    lattice: Lattice
    inputs: tuple[tuple[Any, ...], dict[str, Any]]
    """The arguments the lattice was built with: the dispatch's inputs."""
    metadata: ManifestMetadata = field(default_factory=ManifestMetadata)

    def model_dump_json(self) -> str:
        """The manifest's metadata as JSON (Covalent writes it to its dispatch cache)."""
        import json

        return json.dumps({"metadata": vars(self.metadata)})


class LocalDispatcher:
    """Covalent's dispatcher client: ``dispatch``, ``register`` + ``start``, the manifest
    stages, redispatch and triggers, each mapped onto covalent-core's."""

    @staticmethod
    def dispatch(
        orig_lattice: Lattice, dispatcher_addr: str | None = None, *, disable_run: bool = False
    ) -> Callable[..., str]:
        """As ``ct.dispatch``: the returned function dispatches and returns the id."""
        return api.dispatch(orig_lattice, disable_run=disable_run)

    @staticmethod
    def register(orig_lattice: Lattice, dispatcher_addr: str | None = None) -> Callable[..., str]:
        """The returned function stores the dispatch without running it; start it with
        :meth:`start`."""
        return api.dispatch(orig_lattice, disable_run=True)

    @staticmethod
    def start(dispatch_id: str, dispatcher_addr: str | None = None) -> str:
        """Start a registered dispatch; its id."""
        return triggers.start(dispatch_id)

    @staticmethod
    def dispatch_sync(lattice: Lattice, dispatcher_addr: str | None = None) -> Callable[..., Any]:
        """As ``ct.dispatch_sync``: dispatch, wait, and return the result."""
        return api.dispatch_sync(lattice)

    @staticmethod
    def redispatch(
        dispatch_id: str,
        dispatcher_addr: str | None = None,
        replace_electrons: dict[str, Callable[..., Any]] | None = None,
        reuse_previous_results: bool = False,
    ) -> Callable[..., str]:
        """As ``ct.redispatch``."""
        return redispatching.redispatch(
            dispatch_id,
            replace_electrons=replace_electrons,
            reuse_previous_results=reuse_previous_results,
        )

    @staticmethod
    def register_redispatch(
        dispatch_id: str,
        dispatcher_addr: str | None = None,
        replace_electrons: dict[str, Callable[..., Any]] | None = None,
        reuse_previous_results: bool = False,
    ) -> Callable[..., str]:
        """As :meth:`redispatch`, the new dispatch registered, not started (:meth:`start`)."""
        again = redispatching.redispatch(
            dispatch_id,
            replace_electrons=replace_electrons,
            reuse_previous_results=reuse_previous_results,
            held=True,
        )
        return again

    @staticmethod
    def register_triggers(triggers_data: list[Any], dispatch_id: str) -> None:
        """Store these triggers (objects, or Covalent's ``to_dict()`` of them) for
        ``dispatch_id``, armed."""
        for item in triggers_data:
            trigger = triggers.from_dict(item) if isinstance(item, dict) else item
            trigger.lattice_dispatch_id = dispatch_id
            trigger.register()

    @staticmethod
    def stop_triggers(
        dispatch_ids: str | list[str], triggers_server_addr: str | None = None
    ) -> None:
        """As ``ct.stop_triggers``."""
        triggers.stop_triggers(dispatch_ids)

    @staticmethod
    def prepare_manifest(lattice: Lattice, storage_path: Any = None) -> Manifest:
        """A manifest of a lattice whose graph was built (``lattice.build_graph(...)``)."""
        if not isinstance(lattice, Lattice):
            raise TypeError(f"prepare_manifest takes a @lattice, not {type(lattice).__name__}")
        if lattice.inputs is None:
            raise ValueError(
                "prepare_manifest needs a built lattice: call lattice.build_graph(*args, "
                "**kwargs) first (its arguments are the dispatch's inputs)"
            )
        return Manifest(copy.copy(lattice), lattice.inputs)

    @staticmethod
    def register_manifest(
        manifest: Manifest,
        dispatcher_addr: str | None = None,
        parent_dispatch_id: str | None = None,
        push_assets: bool = True,
    ) -> Manifest:
        """Store the manifest's dispatch, not started; the manifest, with its dispatch id."""
        if parent_dispatch_id is not None:
            raise ValueError(
                "a manifest registered under a parent dispatch (a sublattice's) is made by "
                "covalent-core's dispatcher itself; register top-level workflows only"
            )
        args, kwargs = manifest.inputs
        dispatch_id = api.dispatch(manifest.lattice, disable_run=True)(*args, **kwargs)
        manifest.metadata.dispatch_id = dispatch_id
        manifest.metadata.root_dispatch_id = dispatch_id
        return manifest

    @staticmethod
    def upload_assets(manifest: Manifest) -> None:
        """Nothing to upload: a registered dispatch is whole in the store."""


__all__ = ["LocalDispatcher"]

"""Storing a dispatch: its graph, inputs, environment (and triggers), exactly once, then
waking the service; shared by ``dispatch``, ``redispatch`` and the triggers' reruns."""

from __future__ import annotations

import contextlib
import errno
import socket
import time
import uuid
from typing import Any

from . import config, host_environment
from ._workflow import Lattice
from .deadlines import deadline_at
from .errors import ServiceError, StoreFullError
from .reuse import reuse_outputs
from .serialize import current_environment, lattice_records
from .service import client as service
from .store import open_store
from .store import queries as q
from .store import triggers as store_triggers
from .values import discard_values, store_big

MAX_KEY = 255


def submit(
    lattice: Lattice,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    redispatched_from: str | None = None,
    reuse: bool = False,
    import_path: list[str] | None = None,
    key: str | None = None,
    held: bool = False,
    triggers: list[Any] | None = None,
    triggered_by: str | None = None,
    environment_of: str | None = None,
    deadline: Any = None,
) -> str:
    """Build, store and wake the service; the new dispatch's id (or, with ``key``, that of
    the dispatch already stored under it). A redispatch with ``reuse`` takes the outputs of
    the nodes that ``redispatched_from`` completed with the same work. ``held``: registered,
    not started; ``triggers`` are stored with it, armed; ``triggered_by``: the trigger that
    made this run; ``environment_of``: the dispatch whose environment its tasks get (a
    trigger's rerun, made by the service: not the service's own); ``deadline``: this
    dispatch's (else the lattice's), from now."""
    store = open_store()
    if key is not None:
        with store.read() as conn:
            existing = q.dispatch_by_key(conn, key)
        if existing is not None:
            service.request({"op": "wake"})  # it may be waiting for a service
            return existing
    given = deadline if deadline is not None else lattice.metadata.get("deadline")
    deadline_time = deadline_at(given, time.time())
    records = lattice_records(lattice, args, kwargs)
    dispatch_id = str(uuid.uuid4())
    try:
        for row in records.nodes:  # big inputs go to files, not into the store
            if row.get("output") is not None:
                name = f"{row['node_id']}-input.pickle"
                row["output"] = store_big(dispatch_id, name, row["output"])
        if reuse and redispatched_from is not None:
            with store.read() as conn:
                previous = list(q.iter_reusable_nodes(conn, redispatched_from))
            reuse_outputs(records.nodes, previous, redispatched_from)
        environment = _environment(import_path, environment_of)
        if records.sources:
            environment["sources"] = {**environment.get("sources", {}), **records.sources}
        variables = environment.pop("variables")
        if host_environment.mode() == "client" and variables is not None:
            environment.update(host_environment.keep(dispatch_id, variables))  # never stored
        with store.write() as conn:
            if key is not None and (existing := q.dispatch_by_key(conn, key)) is not None:
                raise _KeyTaken(existing)
            q.insert_dispatch(
                conn,
                dispatch_id=dispatch_id,
                name=lattice.name,
                node_rows=records.nodes,
                edge_rows=records.edges,
                environment=environment,
                lattice=records.lattice,
                inputs=store_big(dispatch_id, "inputs.pickle", records.inputs),
                redispatched_from=redispatched_from,
                key=key,
                held=held,
                triggered_by=triggered_by,
                deadline_at=deadline_time,
            )
            if triggers:
                store_triggers.arm(conn, dispatch_id, triggers, socket.gethostname())
    except _KeyTaken as taken:  # another caller stored that key a moment ago
        _discard(dispatch_id)
        service.request({"op": "wake"})
        return taken.dispatch_id
    except BaseException as exc:
        _discard(dispatch_id)  # nothing of a dispatch that was not stored stays
        if key is not None and (existing := _stored_under(key)) is not None:
            return existing  # the same key, stored by another caller at the same moment
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StoreFullError(
                f"{exc.filename or config.data_dir()} could not be written: {exc.strerror}. "
                "Nothing of this dispatch was stored; free some space there (or point "
                "COVALENT_CORE_DATA_DIR elsewhere) and try again."
            ) from None
        raise
    _wake_or_withdraw(store, dispatch_id, "triggers" if triggers else "wake")
    return dispatch_id


def _environment(import_path: list[str] | None, environment_of: str | None) -> dict[str, Any]:
    """What the new dispatch's tasks see: this process's working directory, import path (with
    ``import_path``) and variables, or those of dispatch ``environment_of`` (its variables:
    None when this host does not keep them)."""
    if environment_of is not None:
        with open_store().read() as conn:
            stored = dict(q.get_dispatch(conn, environment_of).environment or {})
        stored.pop("variables_kept_by", None)
        return {**stored, "variables": host_environment.load(environment_of)}
    environment = current_environment()
    environment["sys_path"] += [p for p in import_path or () if p not in environment["sys_path"]]
    return environment


def _discard(dispatch_id: str) -> None:
    """Remove what was kept on this host for a dispatch that was not stored after all."""
    discard_values(dispatch_id)
    host_environment.discard(dispatch_id)


class _KeyTaken(Exception):
    def __init__(self, dispatch_id: str) -> None:
        self.dispatch_id = dispatch_id


def _stored_under(key: str) -> str | None:
    with contextlib.suppress(Exception), open_store().read() as conn:
        return q.dispatch_by_key(conn, key)
    return None


def _wake_or_withdraw(store: Any, dispatch_id: str, op: str = "wake") -> None:
    """Wake the service for a stored dispatch (``op`` "triggers": to run its triggers). If no
    service can be reached, the dispatch is withdrawn (unless a service claimed it meanwhile:
    then it runs) and the error raised, so that a caller who sees an error knows nothing was
    stored."""
    try:
        service.request({"op": op})
    except BaseException as exc:
        try:
            with store.write() as conn:
                withdrawn = q.withdraw_dispatch(conn, dispatch_id)
        except Exception:
            withdrawn = False
        if not withdrawn:
            if isinstance(exc, Exception):
                return  # a service has it: it runs
            raise
        _discard(dispatch_id)
        if isinstance(exc, ServiceError):
            raise ServiceError(f"{exc} (the dispatch was withdrawn: nothing was stored)") from None
        raise

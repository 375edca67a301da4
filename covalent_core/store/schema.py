"""Tables of the store. Every change to them goes with a migration in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

dispatches = Table(
    "dispatches",
    metadata,
    Column("dispatch_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("parent_dispatch_id", String(64), nullable=True, index=True),
    Column("parent_node_id", Integer, nullable=True),
    Column("root_dispatch_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    # Which dispatcher runs it: "host:pid:start_time"; NULL until claimed.
    Column("owner", String(255), nullable=True),
    # Until when the owner holds it (the store's clock, seconds since the epoch); once past,
    # another service may take it over. NULL: never claimed since leases exist.
    Column("lease_expires_at", Float, nullable=True),
    # A whole-dispatch cancel: the flag and its reason stand for every unfinished node (which
    # the dispatcher settles), so that cancelling 100,000 nodes writes one row.
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("cancel_reason", String(32), nullable=True),
    Column("error", Text, nullable=True),
    # The dispatched lattice and {"args", "kwargs"} (cloudpickle), read only by clients.
    Column("lattice", LargeBinary, nullable=True),
    Column("inputs", LargeBinary, nullable=True),
    # cwd and sys.path of the dispatching process, so tasks import what the user imported,
    # and the host that keeps its environment variables (never stored: host_environment.py).
    Column("environment", JSON, nullable=False),
    Column("num_nodes", Integer, nullable=False, default=0),
    # A redispatch: the dispatch it was made from.
    Column("redispatched_from", String(64), nullable=True),
    # The caller's idempotency key (``ct.dispatch(wf, key=...)``): one dispatch per key.
    Column("dispatch_key", String(255), nullable=True),
    # Registered, not started (``disable_run``, a lattice with triggers): no service claims
    # it until it is started (its first trigger, ``start``).
    Column("held", Boolean, nullable=False, default=False, server_default=false()),
    # A run a trigger made: that trigger (``triggers.trigger_id``).
    Column("triggered_by", String(64), nullable=True),
    # When its unfinished tasks are cancelled (reason "deadline"), seconds since the epoch.
    Column("deadline_at", Float, nullable=True),
)

triggers = Table(
    "triggers",
    metadata,
    Column("trigger_id", String(64), primary_key=True),
    # The dispatch the trigger belongs to: it starts it, then redispatches it.
    Column("dispatch_id", String(64), nullable=False, index=True),
    # Covalent's class name (TimeTrigger, DirTrigger, ...) and what it watches, for listing.
    Column("kind", String(64), nullable=False),
    Column("description", Text, nullable=False),
    # The trigger object (cloudpickle), loaded by the service that runs it.
    Column("trigger", LargeBinary, nullable=False),
    # Triggers watch this host (its directories, its clock): only its service runs them.
    Column("host", String(255), nullable=False),
    Column("armed", Boolean, nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("stopped_at", Float, nullable=True),
    Column("fired", Integer, nullable=False, default=0),
    Column("last_fired_at", Float, nullable=True),
    # Why it stopped, when it did not stop by request (it could not be loaded, it raised).
    Column("error", Text, nullable=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", Integer, primary_key=True, autoincrement=True),
    Column("dispatch_id", String(64), nullable=False, index=True),
    Column("executor", String(64), nullable=False),
    Column("executor_config", JSON, nullable=False),
    # The executor's own handle (JSON text): identifies the resource and the job on it.
    Column("handle", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("state", String(16), nullable=False, default="active"),
    Column("cancel_attempts", Integer, nullable=False, default=0),
    Column("cancel_error", Text, nullable=True),
    # The dispatcher service watching the job, once one re-attached to it after another died.
    Column("attached_by", String(255), nullable=True),
    Column("attached_at", Float, nullable=True),
)

nodes = Table(
    "nodes",
    metadata,
    Column(
        "dispatch_id",
        String(64),
        ForeignKey("dispatches.dispatch_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("node_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False),
    # electron | parameter | collection | sublattice | postprocess
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("stage", String(16), nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("cancel_reason", String(32), nullable=True),
    Column("cancel_stage", String(16), nullable=True),
    Column("executor", String(64), nullable=True),
    Column("executor_config", JSON, nullable=True),
    Column("timeout", Float, nullable=True),
    Column("function", LargeBinary, nullable=True),
    # The steps run around the function where it runs (pickled for the runner), or NULL.
    Column("hooks", LargeBinary, nullable=True),
    # Parameter nodes: their value; other nodes: their output once COMPLETED (cloudpickle).
    Column("output", LargeBinary, nullable=True),
    Column("output_repr", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("traceback", Text, nullable=True),
    Column("stdout", Text, nullable=True),
    Column("stderr", Text, nullable=True),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("job_id", Integer, ForeignKey("jobs.job_id"), nullable=True, index=True),
    Column("sub_dispatch_id", String(64), nullable=True),
    # What the node computes, as a hash of its code, options, executor and inputs (recursively):
    # equal keys, equal work. A redispatch reuses a COMPLETED node's output by it.
    Column("content_key", String(64), nullable=True),
    # A reused output: the dispatch that computed it.
    Column("reused_from", String(64), nullable=True),
    # What the user should know about how the node ran, that is not an error.
    Column("note", Text, nullable=True),
)

edges = Table(
    "edges",
    metadata,
    Column("dispatch_id", String(64), primary_key=True),
    Column("edge_index", Integer, primary_key=True, autoincrement=False),
    Column("parent", Integer, nullable=False),
    Column("child", Integer, nullable=False),
    # arg | kwarg | wait
    Column("param_type", String(8), nullable=False),
    # Covalent's edge name: the parameter fed, "node:N", or "!waiting_edge".
    Column("edge_name", String(255), nullable=True),
    Column("arg_index", Integer, nullable=True),
    ForeignKeyConstraint(["dispatch_id"], ["dispatches.dispatch_id"], ondelete="CASCADE"),
)

Index("ix_nodes_dispatch_status", nodes.c.dispatch_id, nodes.c.status)
Index("ix_edges_dispatch_parent", edges.c.dispatch_id, edges.c.parent)
Index("ux_dispatches_key", dispatches.c.dispatch_key, unique=True)

"""Build (and optionally run) lattice programs with Covalent or covalent-core; print JSON.

Runs under either interpreter and imports only the standard library and the ``ct`` it is
told to use, so the same file runs in Covalent's own venv::

    python graphdump.py covalent PROGRAMS.json [--run NAME ...] > OUT.json
    python graphdump.py covalent_core PROGRAMS.json > OUT.json

``PROGRAMS.json`` is a list of ``{"name", "source"}``. For every program the output has the
graph in a canonical form (node ids and names; edges as ``[parent, child, edge_name,
param_type, arg_index]``, sorted) or the error that building raised; for the programs named
with ``--run``, also how the dispatch ended and its result as text.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import types
from typing import Any

ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
LATTICE_OBJECT = re.compile(r"<[\w.]*Lattice object>")
METADATA_EDGE = "json_parent_metadata"


def error_kind(exc: BaseException) -> str:
    """The builtin exception class an error is an instance of (ours subclass those)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "builtins":
            return cls.__name__
    return "Exception"


def canonical(graph: Any) -> dict[str, Any]:
    """Node names and edges of a networkx MultiDiGraph in a form both tools can be compared in.

    Object addresses are dropped, a Lattice object is ``<Lattice object>`` (its class lives in
    a different module in each tool), and the parent-metadata parameter of a sublattice is
    ``<parent metadata>``: its JSON names each tool's default executor.
    """
    metadata_nodes = {
        u for u, _, data in graph.edges(data=True) if data.get("edge_name") == METADATA_EDGE
    }
    nodes = []
    for node_id in sorted(graph.nodes):
        name = ADDRESS.sub("", str(graph.nodes[node_id]["name"]))
        name = LATTICE_OBJECT.sub("<Lattice object>", name)
        if node_id in metadata_nodes:
            name = ":parameter:<parent metadata>"
        nodes.append([node_id, name])
    edges = sorted(
        [u, v, d.get("edge_name"), d.get("param_type"), d.get("arg_index")]
        for u, v, d in graph.edges(data=True)
    )
    return {"nodes": nodes, "edges": edges}


def load(source: str, ct: Any, name: str) -> dict[str, Any]:
    module = types.ModuleType("__main__")
    module.__dict__["ct"] = ct
    # Functions defined in __main__ are pickled by value, as a user's script's would be.
    module.__dict__["__name__"] = "__main__"
    exec(compile(source, f"<program {name}>", "exec"), module.__dict__)
    return module.__dict__


def dump(ct: Any, program: dict[str, str], run: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": program["name"]}
    try:
        namespace = load(program["source"], ct, program["name"])
        workflow = namespace["workflow"]
        workflow.build_graph(*namespace["ARGS"], **namespace["KWARGS"])
        out["graph"] = canonical(workflow.transport_graph._graph)
    except Exception as exc:
        out["error"] = error_kind(exc)
        out["message"] = f"{type(exc).__name__}: {exc}"
        return out
    if run:
        result = ct.dispatch_sync(workflow)(*namespace["ARGS"], **namespace["KWARGS"])
        out["status"] = str(result.status)
        out["result"] = namespace["RESULT"](result.result) if out["status"] == "COMPLETED" else None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flavour", choices=["covalent", "covalent_core"])
    parser.add_argument("programs")
    parser.add_argument("--run", nargs="*", default=[], help="names of programs to dispatch")
    args = parser.parse_args(argv)
    ct = importlib.import_module(args.flavour)
    with open(args.programs) as fh:
        programs = json.load(fh)
    results = [dump(ct, p, p["name"] in args.run) for p in programs]
    json.dump(results, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

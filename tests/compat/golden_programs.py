"""The golden programs: built and run by real Covalent 0.240 (``reference.py --write-golden``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from programs import Program

GOLDEN = Path(__file__).resolve().parent / "golden"


def golden(label: str) -> list[tuple[Program, str, dict[str, Any]]]:
    """(program, its full source, what Covalent built and returned) for one golden file."""
    document = json.loads((GOLDEN / f"{label}.json").read_text())
    out = []
    for entry in document["programs"]:
        program = Program(entry["name"], entry["body"], entry["args"], entry["kwargs"])
        out.append((program, program.source(document["prelude"]), entry["covalent"]))
    return out

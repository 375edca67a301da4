"""Triggers and registered dispatches show what they show on real Covalent 0.240 (recorded
in ``golden/triggers.json`` by ``trigger_programs.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from trigger_programs import GOLDEN, observe

import covalent_core as ct
from covalent_core._dispatcher_plugins.local import LocalDispatcher
from covalent_core.testing import stop_all_triggers
from covalent_core.triggers import TimeTrigger


def test_triggers_and_registered_dispatches_behave_as_on_covalent(tmp_path: Path) -> None:
    try:
        ours = observe(ct, LocalDispatcher, TimeTrigger, tmp_path)
    finally:
        stop_all_triggers()  # observe() stops them, unless it failed half-way
    assert ours == json.loads(GOLDEN.read_text())

"""The hook specifications: ordered as the stages run, each documented, each exercised."""

from __future__ import annotations

import inspect
from pathlib import Path

from covalent_core import hookimpls, hookspecs
from covalent_core.plugins import registry
from covalent_core.testing import suite

STAGE_HOOKS = [
    "covalent_instantiate",
    "covalent_pickle",
    "covalent_upload",
    "covalent_provision",
    "covalent_run",
    "covalent_fetch",
    "covalent_cleanup",
]
TESTS = Path(__file__).parent


def _specs() -> list[str]:
    return [
        name
        for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("covalent_")
    ]


def test_stage_hooks_are_declared_in_the_order_they_run():
    source = inspect.getsource(hookspecs)
    positions = [source.index(f"def {name}(") for name in STAGE_HOOKS]
    assert positions == sorted(positions)


def test_every_hook_is_documented_with_when_default_and_result():
    for name in _specs():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called" in doc, f"{name}: say when it is called"
        assert "May raise:" in doc, f"{name}: say what it may raise"
        if name != "covalent_executor_classes":
            assert "Default:" in doc, f"{name}: say what the default does"
            assert "first non-None result" in doc, f"{name}: say it is firstresult"


def test_builtin_stages_are_registered_as_a_plugin_for_every_stage_hook():
    manager = registry().manager
    assert manager.get_plugin("covalent_core.hookimpls") is hookimpls
    for name in _specs():
        if name == "covalent_executor_classes":
            continue
        impls = getattr(manager.hook, name).get_hookimpls()
        assert any(i.plugin is hookimpls for i in impls), name


def test_every_hook_has_a_test():
    text = "".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != "test_hooks.py")
    text += (TESTS / "support" / "recording_executor.py").read_text()
    text += Path(suite.__file__).read_text()
    stage_words = {
        "covalent_instantiate": "instantiat",
        "covalent_pickle": '"pickle"',
        "covalent_upload": '"upload"',
        "covalent_provision": '"provision"',
        "covalent_run": '"run"',
        "covalent_fetch": '"fetch"',
        "covalent_cleanup": '"cleanup"',
        "covalent_cancel": "ct.cancel(",
        "covalent_reattach": "kill_service()",
        "covalent_read_output": '"logs", dispatch_id, "--task"',
        "covalent_executor_classes": "covalent_executor_classes",
    }
    for name in _specs():
        assert stage_words[name] in text, f"hook {name} has no test"

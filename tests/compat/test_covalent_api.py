"""Covalent's surrounding API: config, context, service control, executor options, other names."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import covalent_core as ct
from covalent_core.config import config_path, data_dir, db_url


@ct.electron
def where_am_i():
    import os as _os

    context = ct.get_context()
    return context.dispatch_id, context.node_id, context.task_id, _os.getcwd()


@ct.electron
def shout(text):
    print(text.upper())
    return text


def test_get_context_inside_a_running_electron():
    @ct.lattice
    def workflow():
        return where_am_i()

    dispatch_id = ct.dispatch(workflow)()
    result = ct.get_result(dispatch_id, wait=True)
    assert result.result[:3] == (dispatch_id, 0, 0)
    assert ct.get_context().dispatch_id is None  # outside a task


def test_config_reads_and_writes_the_toml_file_as_covalent_does():
    before = config_path().read_bytes() if config_path().exists() else None
    try:
        ct.set_config({"executors.local.log_stdout": "out.log", "sdk.log_level": "debug"})
        ct.set_config("executors.local.cancel_grace", 2.0)
        assert ct.get_config("executors.local.log_stdout") == "out.log"
        assert ct.get_config(["sdk.log_level", "executors.local.cancel_grace"]) == {
            "sdk.log_level": "debug",
            "executors.local.cancel_grace": 2.0,
        }
        everything = ct.get_config()
        # The store in use: SQLite in the data directory, or the session's PostgreSQL.
        assert everything["store"]["url"] == db_url()
        if db_url().startswith("sqlite"):
            assert ct.get_config("dispatcher.db_path").endswith("covalent.db")
        else:
            assert ct.get_config("dispatcher.db_path") == db_url()
        assert stat.S_IMODE(config_path().stat().st_mode) == 0o600
        ct.reload_config()
        with pytest.raises(KeyError, match=r"no configuration value 'sdk\.nothing'"):
            ct.get_config("sdk.nothing")

        # A short name takes its options from the file, as Covalent's executors do.
        @ct.electron(executor="local")
        def named(x):
            print("logged", x)
            return x

        @ct.lattice
        def workflow(x):
            return named(x)

        result = ct.get_result(ct.dispatch(workflow)(7), wait=True)
        log = data_dir() / "results"
        assert (log / result.dispatch_id / "out.log").read_text() == "logged 7\n"
    finally:
        if before is None:
            config_path().unlink(missing_ok=True)
        else:
            config_path().write_bytes(before)
        ct.reload_config()


def test_local_executor_takes_covalents_options(tmp_path):
    executor = ct.executor.LocalExecutor(
        workdir=str(tmp_path / "work"),
        create_unique_workdir=True,
        log_stdout=str(tmp_path / "stdout.log"),
        cache_dir=str(tmp_path / "cache"),
        retries=2,
    )
    here = ct.electron(where_am_i.function, executor=executor)
    loud = ct.electron(shout.function, executor=executor)

    @ct.lattice
    def workflow():
        return [here(), loud("quiet")]

    dispatch_id = ct.dispatch(workflow)()
    result = ct.get_result(dispatch_id, wait=True)
    assert result.status == ct.Result.COMPLETED, result
    assert result.result[0][3] == str(tmp_path / "work" / dispatch_id / "node_0")
    assert (tmp_path / "stdout.log").read_text() == "QUIET\n"


def test_local_executor_time_limit_stops_the_task():
    limited = ct.executor.LocalExecutor(time_limit=0.5, cancel_grace=0.2)

    @ct.electron(executor=limited)
    def forever():
        import time as _time

        _time.sleep(600)

    @ct.lattice
    def workflow():
        return forever()

    result = ct.get_result(ct.dispatch(workflow)(), wait=True, timeout=60)
    assert result.status == ct.Result.FAILED
    assert "time_limit of 0.5 s" in result.get_node(0).error


def test_unknown_executor_name_is_refused_at_dispatch_with_a_suggestion():
    @ct.electron(executor="locl")
    def task():
        return 1

    @ct.lattice
    def workflow():
        return task()

    with pytest.raises(ct.ExecutorNotFoundError, match="Did you mean 'local'"):
        ct.dispatch(workflow)()


def test_service_control_functions():
    ct.covalent_start(quiet=True)
    assert ct.is_covalent_running()
    ct.covalent_stop(quiet=True)
    assert not ct.is_covalent_running()
    ct.covalent_start(quiet=True)  # and any client starts it again when needed
    assert ct.is_covalent_running()


def test_names_covalent_has_and_we_do_not_say_what_to_use():
    with pytest.raises(NotImplementedError, match=r"use ct\.get_result"):
        ct.get_result_manager("x")
    assert ct.metadata.version("covalent-core")


def test_executor_namespace_has_installed_classes_and_covalents_bases():
    assert ct.executor.LocalExecutor is ct.LocalExecutor
    assert issubclass(ct.executor.BaseExecutor, ct.executor.base.BaseExecutor.__mro__[1])
    with pytest.raises(AttributeError, match="no installed executor class 'NopeExecutor'"):
        ct.executor.NopeExecutor  # noqa: B018


def test_lattice_draw_writes_a_picture_with_ids_and_names(tmp_path):
    @ct.lattice
    def workflow(x):
        return shout(shout(x))

    path = workflow.draw("a", path=str(tmp_path / "graph.svg"))
    text = Path(path).read_text()
    assert "0: shout" in text and ":postprocess:reconstruct" in text
    assert workflow.transport_graph.get_node_value(0, "name") == "shout"
    ET.fromstring(text)  # well-formed SVG


def test_lattice_draw_needs_no_plotting_library_and_prints_text_outside_a_notebook():
    """After a plain ``pip install covalent-core`` (no matplotlib: a fresh interpreter that
    cannot import it), draw() writes the picture, prints the graph as text, raises nothing."""
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import covalent_core as ct\n"
        "@ct.electron\ndef shout(x): return x.upper()\n"
        "@ct.lattice\ndef workflow(x): return shout(shout(x))\n"
        "print('SVG', workflow.draw('a'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "0: shout [electron]  <- 1" in done.stdout
    svg = Path(done.stdout.split("SVG ")[-1].strip())
    try:
        assert "2: shout" in svg.read_text()
    finally:
        svg.unlink()


# Covalent 0.240's get_config() sections and their keys, as real Covalent returned them.
COVALENT_CONFIG_KEYS = {
    "dask": ["cache_dir", "log_dir", "mem_per_worker", "num_workers", "threads_per_worker"],
    "dispatcher": [
        "address",
        "asset_cache_size",
        "cache_dir",
        "db_path",
        "heartbeat_file",
        "heartbeat_interval",
        "log_dir",
        "port",
        "results_dir",
        "use_async_dispatcher",
    ],
    "sdk": [
        "config_file",
        "dispatch_cache_dir",
        "enable_logging",
        "executor_dir",
        "exhaustive_postprocess",
        "log_dir",
        "log_level",
        "no_cluster",
        "results_dir",
        "task_packing",
    ],
    "user_interface": ["address", "dev_port", "log_dir", "port"],
    "workflow_data": ["base_dir", "storage_type"],
}


def test_get_config_has_covalents_sections_and_keys():
    everything = ct.get_config()
    for section, keys in COVALENT_CONFIG_KEYS.items():
        assert set(keys) <= set(everything[section]), section
    assert "executors" in everything
    assert ct.get_config("dispatcher.address") == "localhost"
    assert ct.get_config(["dispatcher.port", "sdk.log_level"]) == {
        "dispatcher.port": 48008,
        "sdk.log_level": "warning",
    }


def _prepare() -> int:
    return 1


def test_deps_as_data_and_node_metadata_in_covalents_layout():
    """As real Covalent 0.240 gives them (checked there with the same electron): the node's
    ``metadata["hooks"]`` has ``deps`` (``bash``, ``pip``), ``call_before`` and
    ``call_after``, each a deps object's ``to_dict()``; ``from_dict`` gives it back."""

    @ct.electron(
        deps_bash=["echo x"],
        deps_pip=["numpy"],
        call_before=[ct.DepsCall(_prepare)],
        call_after=[ct.DepsCall(_prepare)],
    )
    def task():
        return 1

    @ct.lattice
    def workflow():
        return task()

    workflow.build_graph()
    hooks = workflow.transport_graph.get_node_value(0, "metadata")["hooks"]
    assert sorted(hooks) == ["call_after", "call_before", "deps"]
    assert sorted(hooks["deps"]) == ["bash", "pip"]
    assert hooks["deps"]["bash"]["attributes"]["commands"] == ["echo x"]
    assert hooks["call_before"][0]["type"] == "DepsCall"
    json.dumps(hooks)  # plain data
    assert ct.DepsBash().from_dict(hooks["deps"]["bash"]).commands == ["echo x"]
    assert ct.DepsPip().from_dict(hooks["deps"]["pip"]).packages == ["numpy"]
    assert ct.DepsCall().from_dict(hooks["call_before"][0]).func() == 1

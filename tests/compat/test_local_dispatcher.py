"""Covalent's ``LocalDispatcher`` multistage API: register, then start; the manifest stages;
a registered dispatch waits for its start, and a cancel ends it at once."""

from __future__ import annotations

import time

import covalent_core as ct
from covalent_core._dispatcher_plugins import LocalDispatcher
from covalent_core._dispatcher_plugins.local import LocalDispatcher as AtCovalentsPath


@ct.electron
def double(x):
    return 2 * x


@ct.lattice
def workflow(x):
    return double(x)


def test_it_is_at_covalents_path():
    assert LocalDispatcher is AtCovalentsPath


def test_a_registered_dispatch_runs_only_once_started():
    dispatch_id = LocalDispatcher.register(workflow)(3)
    time.sleep(1.0)  # a service that ran it would have by now
    assert ct.get_result(dispatch_id).status is ct.Status.NEW_OBJECT
    assert LocalDispatcher.start(dispatch_id) == dispatch_id
    result = ct.get_result(dispatch_id, wait=True, timeout=60)
    assert (result.status, result.result) == (ct.Status.COMPLETED, 6)
    assert LocalDispatcher.start(dispatch_id) == dispatch_id  # a second start changes nothing


def test_dispatch_with_disable_run_registers_it():
    dispatch_id = ct.dispatch(workflow, disable_run=True)(4)
    assert ct.get_result(dispatch_id).status is ct.Status.NEW_OBJECT
    LocalDispatcher.start(dispatch_id)
    assert ct.get_result(dispatch_id, wait=True, timeout=60).result == 8


def test_the_manifest_stages(tmp_path):
    built = ct.lattice(workflow.workflow_function)
    built.build_graph(5)
    manifest = LocalDispatcher.prepare_manifest(built, str(tmp_path))
    assert manifest.metadata.dispatch_id is None
    returned = LocalDispatcher.register_manifest(manifest)
    dispatch_id = returned.metadata.dispatch_id
    assert dispatch_id and ct.get_result(dispatch_id).status is ct.Status.NEW_OBJECT
    LocalDispatcher.upload_assets(manifest)
    LocalDispatcher.start(dispatch_id)
    assert ct.get_result(dispatch_id, wait=True, timeout=60).result == 10


def test_a_registered_redispatch_waits_for_its_start():
    first = ct.dispatch(workflow)(1)
    ct.get_result(first, wait=True, timeout=60)
    again = LocalDispatcher.register_redispatch(first)(7)
    assert ct.get_result(again).status is ct.Status.NEW_OBJECT
    LocalDispatcher.start(again)
    result = ct.get_result(again, wait=True, timeout=60)
    assert (result.result, result.redispatched_from) == (14, first)


def test_cancelling_a_registered_dispatch_ends_it_at_once():
    dispatch_id = LocalDispatcher.register(workflow)(2)
    report = ct.cancel(dispatch_id, wait=True, timeout=60)
    assert report.dispatch_status is ct.Status.CANCELLED
    result = ct.get_result(dispatch_id)
    assert result.status is ct.Status.CANCELLED
    assert {n.status for n in result.tasks} == {ct.Status.CANCELLED}
    LocalDispatcher.start(dispatch_id)  # ended: nothing starts
    time.sleep(0.5)
    assert ct.get_result(dispatch_id).status is ct.Status.CANCELLED


def test_a_manifest_needs_a_built_lattice():
    import pytest

    fresh = ct.lattice(workflow.workflow_function)
    with pytest.raises(ValueError, match="build_graph"):
        LocalDispatcher.prepare_manifest(fresh, ".")
    with pytest.raises(TypeError, match="@lattice"):
        LocalDispatcher.prepare_manifest(print, ".")

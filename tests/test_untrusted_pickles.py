"""The service never unpickles user data: a return template whose unpickling sleeps or ends
the process affects only its own dispatch; pickles from workers are read as plain values."""

from __future__ import annotations

import os
import pickle
import time

import pytest

import covalent_core as ct
from covalent_core.plain_pickle import loads_plain
from covalent_core.service.client import request


class Sleeps:
    def __reduce__(self):
        return (time.sleep, (120,))


class Exits:
    def __reduce__(self):
        return (os._exit, (3,))


@ct.electron
def inc(x):
    return x + 1


@ct.electron
def sleeper():
    import time as _time

    _time.sleep(600)


@ct.lattice
def slow_template():
    return {"value": inc(1), "slow": Sleeps()}


@ct.lattice
def exiting_template():
    return {"value": inc(1), "boom": Exits()}


@ct.lattice
def long():
    return sleeper()


def test_hostile_return_templates_touch_only_their_own_dispatch():
    pid = int(request({"op": "ping"})["pid"])
    running = ct.dispatch(long)()
    while not ct.get_result(running).get_node(0).job_handle:
        time.sleep(0.02)
    slow = ct.dispatch(slow_template)()
    exiting = ct.dispatch(exiting_template)()
    time.sleep(0.5)
    began = time.monotonic()
    ct.cancel(running, wait=True, timeout=60)
    # Only catches a hang: a service that unpickled the template would stall for 120 s.
    assert time.monotonic() - began < 60
    assert ct.get_result(exiting, wait=True, timeout=120).status is ct.Status.FAILED
    ct.cancel(slow, wait=True, timeout=60)  # its worker sleeps in the unpickling: stopped
    assert ct.get_result(slow).status is ct.Status.CANCELLED
    assert int(request({"op": "ping"})["pid"]) == pid  # the same service, alive


def test_plain_values_load_and_anything_else_is_refused():
    plain = {"ok": True, "output": b"\x80\x05...", "list": [1, 2.5, None, "x", (1,), {3}]}
    assert loads_plain(pickle.dumps(plain, protocol=5)) == plain
    with pytest.raises(pickle.UnpicklingError, match="_exit"):
        loads_plain(pickle.dumps({"ok": True, "output": Exits()}))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        loads_plain(pickle.dumps(Sleeps()))

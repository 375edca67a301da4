"""Every executor exposes its constructor arguments as attributes under their names, as
Covalent's executors do (a workflow that reads its executor's settings back works)."""

from __future__ import annotations

import inspect
import pickle
import warnings

import pytest

from covalent_core.plugins import registry
from covalent_core.sdk import Executor

REQUIRED = {  # the least each executor needs to be made (nothing is contacted)
    "ssh": {"hostname": "login.example.org"},
    "awsbatch": {"s3_bucket_name": "bucket", "batch_queue": "queue"},
    "dask": {"scheduler_address": "tcp://127.0.0.1:8786"},
    "workdir": {"root": "/nonexistent/covalent-workdir"},
}


@pytest.mark.parametrize("name", sorted(n for n in registry().executors if n != "covalent"))
def test_every_constructor_argument_reads_back(name: str):
    cls = registry().executors[name].cls
    parameters = [
        p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        given = cls(**REQUIRED.get(name, {}))
    for parameter in parameters:
        if callable(getattr(Executor, parameter.name, None)):
            continue  # a stage's name (``cleanup``): the method, as in Covalent's executors
        assert hasattr(given, parameter.name), f"{cls.__name__}.{parameter.name}"
    for option, value in REQUIRED.get(name, {}).items():  # what was given reads back as given
        assert str(getattr(given, option)) == str(value)  # (a path may be kept as a Path)
    again = pickle.loads(pickle.dumps(given))
    assert all(hasattr(again, p.name) for p in parameters)
    with pytest.raises(AttributeError):
        given.no_such_option  # noqa: B018

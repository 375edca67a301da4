"""A task's environment as Covalent users declare it: DepsBash, DepsPip, DepsCall, DepsModule,
call_before/call_after, on electrons and lattices (the conformance suite's environment tier
covers each executor; these are the declarations themselves and pip)."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import psutil
import pytest
from package_index import package_index

import covalent_core as ct
from covalent_core import config
from covalent_core.errors import SerializationError
from covalent_core.local.executor import DEPS, LocalExecutor


def pip_processes(token: str) -> list[psutil.Process]:
    """Live processes whose argv has ``token`` (a package name no one else uses)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if token in (proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


@pytest.fixture
def no_pip_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip in tasks (which see this process's variables) neither reads nor writes ~/.cache."""
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")


def test_deps_pip_installs_into_the_dispatchs_own_directory(no_pip_cache: None) -> None:
    name = f"covalent-core-demo-{uuid.uuid4().hex[:10]}"
    module = name.replace("-", "_")
    with package_index(name, "from the index") as index:

        @ct.electron(
            executor=LocalExecutor(isolate_deps=True),
            deps_pip=ct.DepsPip(["--index-url", index.url, name]),
        )
        def uses_it() -> str:
            import importlib

            return importlib.import_module(module).VALUE

        @ct.lattice
        def workflow() -> str:
            return uses_it()

        dispatch_id = ct.dispatch(workflow)()
        result = ct.get_result(dispatch_id, wait=True, timeout=240)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "from the index"
    assert (config.data_dir() / DEPS / dispatch_id / f"{module}.py").is_file()
    # Not in the environment the workers (and this process) run in.
    assert importlib.util.find_spec(module) is None


def test_deps_pip_reads_a_requirements_file_when_declared(
    tmp_path: Path, no_pip_cache: None
) -> None:
    name = f"covalent-core-demo-{uuid.uuid4().hex[:10]}"
    module = name.replace("-", "_")
    with package_index(name, "from requirements") as index:
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"--index-url {index.url}\n{name}\n")
        deps = ct.DepsPip(reqs_path=str(requirements))
        requirements.unlink()  # read when declared, as in Covalent

        @ct.electron(executor=LocalExecutor(isolate_deps=True), deps_pip=deps)
        def uses_it() -> str:
            import importlib

            return importlib.import_module(module).VALUE

        @ct.lattice
        def workflow() -> str:
            return uses_it()

        result = ct.get_result(ct.dispatch(workflow)(), wait=True, timeout=240)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "from requirements"


def test_a_pip_install_that_fails_fails_the_node_with_pips_words(no_pip_cache: None) -> None:
    name = f"covalent-core-demo-{uuid.uuid4().hex[:10]}"
    with package_index(name, "x") as index:

        @ct.electron(
            executor=LocalExecutor(isolate_deps=True),
            deps_pip=["--index-url", index.url, f"{name}-missing"],
        )
        def never() -> str:
            return "ran"

        @ct.lattice
        def workflow() -> str:
            return never()

        result = ct.get_result(ct.dispatch(workflow)(), wait=True, timeout=240)
    node = result.get_node(0)
    assert result.status is ct.Status.FAILED
    assert "DepsPip" in node.error and "exited with status" in node.error, node.error
    assert "No matching distribution" in node.error, node.error


def test_cancel_during_a_slow_pip_install_kills_pip(no_pip_cache: None, tmp_path: Path) -> None:
    name = f"covalent-core-demo-{uuid.uuid4().hex[:10]}"
    ran = tmp_path / "ran"
    with package_index(name, "slow", seconds_per_byte=0.5) as index:

        @ct.electron(
            executor=LocalExecutor(isolate_deps=True, cancel_grace=1.0),
            deps_pip=["--index-url", index.url, name],
        )
        def after_install() -> str:
            ran.write_text("the task ran")
            return "ran"

        @ct.lattice
        def workflow() -> str:
            return after_install()

        dispatch_id = ct.dispatch(workflow)()
        assert index.download_started.wait(240), "pip never started downloading"
        pips = pip_processes(name)
        assert pips, "no pip process carries the package's name"
        ct.cancel(dispatch_id, wait=True, timeout=60)
        _, alive = psutil.wait_procs(pips, timeout=30)
        assert not alive, f"pip still runs after the cancel: {alive}"
        assert index.download_aborted.wait(30), "the download went on after the cancel"
    result = ct.get_result(dispatch_id)
    assert result.status is ct.Status.CANCELLED
    assert result.get_node(0).status is ct.Status.CANCELLED
    assert not ran.exists()


def shout(word: str) -> str:
    print(word, flush=True)
    return word


def test_lattice_hooks_apply_to_electrons_that_declare_none(tmp_path: Path) -> None:
    log = tmp_path / "log"

    @ct.electron
    def plain() -> str:
        return log.read_text()

    @ct.electron(deps_bash=[f"echo own >> {log}"])
    def own() -> str:
        return log.read_text()

    @ct.lattice(deps_bash=[f"echo lattice >> {log}"])
    def workflow() -> list[str]:
        first = plain()
        return [first, ct.wait(own(), [first])]

    result = ct.get_result(ct.dispatch(workflow)(), wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED
    first, second = result.result
    assert first == "lattice\n"
    assert second == "lattice\nown\n"  # its own, not the lattice's as well


def test_a_retval_keyword_given_at_the_call_is_not_an_input(tmp_path: Path) -> None:
    def connect() -> str:
        return "connection"

    @ct.electron(call_before=ct.DepsCall(connect, retval_keyword="conn"))
    def query(x: int, conn: str | None = None) -> str:
        return f"{conn}:{x}"

    @ct.lattice
    def workflow() -> str:
        return query(1, conn=None)  # as Covalent users write it: filled in where it runs

    dispatch_id = ct.dispatch(workflow)()
    result = ct.get_result(dispatch_id, wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "connection:1"
    assert [n.name for n in result.nodes].count(":parameter:None") == 0


def test_two_calls_with_one_keyword_give_a_list() -> None:
    @ct.electron(
        call_before=[
            ct.DepsCall(lambda: 1, retval_keyword="got"),
            ct.DepsCall(lambda: 2, retval_keyword="got"),
        ]
    )
    def collect(got: object = None) -> object:
        return got

    @ct.lattice
    def workflow() -> object:
        return collect()

    result = ct.get_result(ct.dispatch(workflow)(), wait=True, timeout=120)
    assert result.result == [1, 2]


def test_a_failing_call_before_names_itself_and_keeps_the_traceback() -> None:
    def open_database() -> None:
        raise ConnectionError("database is down")

    @ct.electron(call_before=ct.DepsCall(open_database))
    def task() -> str:
        return "ran"

    @ct.lattice
    def workflow() -> str:
        return task()

    result = ct.get_result(ct.dispatch(workflow)(), wait=True, timeout=120)
    node = result.get_node(0)
    assert node.status is ct.Status.FAILED
    assert node.error == "call_before open_database() raised ConnectionError: database is down"
    assert "open_database" in node.traceback and "database is down" in node.traceback


def test_deps_module_sends_the_modules_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    name = f"covalent_core_helpers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    helpers = importlib.import_module(name)

    def use(x: int) -> int:
        return helpers.triple(x)

    task = ct.electron(use, deps_module=name)

    @ct.lattice
    def workflow(x: int) -> int:
        return task(x)

    # The task's import path must not find the module: only its pickled code can help.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    (tmp_path / f"{name}.py").unlink()
    result = ct.get_result(ct.dispatch(workflow)(5), wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == 15


def test_declarations_of_the_wrong_type_are_refused_when_written() -> None:
    with pytest.raises(TypeError, match="DepsBash takes strings"):
        ct.electron(deps_bash=[["echo", "hi"]])
    with pytest.raises(TypeError, match="call_before takes deps objects"):
        ct.electron(call_before=print)
    with pytest.raises(TypeError, match="DepsCall takes a callable"):
        ct.DepsCall("not callable")
    with pytest.raises(ValueError, match="reserved"):
        ct.DepsCall(print, retval_keyword="files")
    with pytest.raises(FileNotFoundError, match="cannot read the requirements file"):
        ct.DepsPip(reqs_path="/nonexistent/requirements.txt")
    with pytest.raises(ImportError, match="cannot be imported here"):
        ct.DepsModule("no_such_module_anywhere")


def test_an_unpicklable_call_is_refused_at_dispatch_and_nothing_is_stored() -> None:
    import threading

    lock = threading.Lock()

    @ct.electron(call_before=ct.DepsCall(print, [lock]))
    def task() -> str:
        return "ran"

    @ct.lattice
    def workflow() -> str:
        return task()

    before = len(ct.list_dispatches())
    with pytest.raises(SerializationError, match="call_before print"):
        ct.dispatch(workflow)()
    assert len(ct.list_dispatches()) == before


def test_a_plain_call_outside_a_workflow_runs_the_function_alone(tmp_path: Path) -> None:
    @ct.electron(deps_bash=[f"touch {tmp_path / 'step'}"])
    def task(x: int) -> int:
        return x + 1

    assert task(1) == 2  # as in Covalent: no workflow, no environment
    assert not (tmp_path / "step").exists()


def test_a_sublattice_without_hooks_takes_its_parents() -> None:
    def tag() -> str:
        return "parent"

    @ct.electron
    def inner(x: int, tagged: str | None = None) -> list:
        return [x, tagged]

    @ct.lattice
    def sub(x: int) -> list:
        return inner(x)

    @ct.lattice(call_before=ct.DepsCall(tag, retval_keyword="tagged"))
    def workflow(x: int) -> list:
        return ct.electron(sub)(x)

    result = ct.get_result(ct.dispatch(workflow)(2), wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == [2, "parent"]
    assert sub.metadata["hooks"] is None  # the user's lattice is left as it was


def _note(path: str, word: str) -> None:
    with open(path, "a") as fh:
        fh.write(word + "\n")


def test_call_before_and_after_take_any_deps_object_in_the_order_given(
    tmp_path: Path, no_pip_cache: None
) -> None:
    """As in Covalent's pip-deps how-to: ``call_before=[DepsPip(...)]``; here beside a
    DepsBash and a DepsCall, one or a list, run in the order given around the task."""
    name = f"covalent-core-demo-{uuid.uuid4().hex[:10]}"
    module = name.replace("-", "_")
    log = str(tmp_path / "order")
    with package_index(name, "installed before") as index:

        @ct.electron(
            executor=LocalExecutor(isolate_deps=True),
            call_before=[
                ct.DepsBash(f"echo bash >> {log}"),
                ct.DepsPip(["--index-url", index.url, name]),
                ct.DepsCall(_note, args=[log, "call"]),
            ],
            call_after=ct.DepsBash(f"echo after >> {log}"),
        )
        def uses_it(path: str) -> str:
            import importlib

            _note(path, "task")
            return importlib.import_module(module).VALUE

        @ct.lattice
        def workflow(path: str) -> str:
            return uses_it(path)

        result = ct.dispatch_sync(workflow, timeout=240)(log)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "installed before"
    assert Path(log).read_text().split() == ["bash", "call", "task", "after"]
    with pytest.raises(TypeError, match="deps objects"):
        ct.electron(call_before=["echo not a deps object"])(len)

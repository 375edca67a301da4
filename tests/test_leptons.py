"""Leptons as Covalent users write them: shell commands and libraries, Python modules, C
through ctypes; their outputs, their failures, and cancelling one that runs."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from helpers import wait_until

import covalent_core as ct
from covalent_core.testing import marker_processes


def run(workflow, *args):
    return ct.get_result(ct.dispatch(workflow)(*args), wait=True, timeout=120)


def test_a_shell_command_with_arguments_and_named_outputs() -> None:
    tag = ct.Lepton(
        "bash",
        command="echo working; first=$1; both=$1-{suffix}-$suffix",
        argtypes=[(str, ct.Lepton.INPUT_OUTPUT), (int, ct.Lepton.OUTPUT)],
        named_outputs=["both", "first"],
    )

    @ct.lattice
    def workflow():
        return tag("41", suffix="x")

    result = run(workflow)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == ("41-x-x", 41)
    assert result.get_node(0).stdout == "working\n"  # the output marks are not the task's


def test_user_values_are_never_read_as_shell_code(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    value = f"a b; touch {pwned}; $(touch {pwned}) `touch {pwned}` 'q' \"d\""
    echo = ct.Lepton(
        "bash",
        command="got={value}; pos=$1",
        argtypes=[(str, ct.Lepton.INPUT_OUTPUT), (str, ct.Lepton.OUTPUT)],
        named_outputs=["got", "pos"],
    )

    @ct.lattice
    def workflow(v):
        return echo(v, value=v)

    result = run(workflow, value)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == (value, value)
    assert not pwned.exists()


def test_a_shell_librarys_function(tmp_path: Path) -> None:
    library = tmp_path / "lib.sh"
    library.write_text('greet() { echo "hello $1"; greeting="hello:$1:$2"; }\n')
    greet = ct.Lepton(
        "bash",
        library_name=str(library),
        function_name="greet",
        argtypes=[(str, ct.Lepton.OUTPUT)],
        named_outputs=["greeting"],
    )

    @ct.lattice
    def workflow():
        return greet("big world", "x;y")

    result = run(workflow)
    assert result.status is ct.Status.COMPLETED, result.get_node(0).error
    assert result.result == "hello:big world:x;y"
    assert result.get_node(0).name == "greet"


def test_a_python_modules_function() -> None:
    join = ct.Lepton("python", library_name="posixpath", function_name="join")

    @ct.lattice
    def workflow():
        return join("a", "b", "c")

    result = run(workflow)
    assert result.result == "a/b/c"


def test_the_bash_decorator() -> None:
    @ct.leptons.bash
    def count(n):
        return f"seq {n} | wc -l"

    @ct.lattice
    def workflow(n):
        return count(n)

    result = run(workflow, 4)
    assert result.status is ct.Status.COMPLETED
    assert result.get_node(0).stdout.strip() == "4"
    assert result.get_node(0).name == "seq 4 | wc -l"


def test_a_failing_command_fails_the_node_with_its_status_and_errors() -> None:
    fail = ct.Lepton("bash", command="echo bad thing >&2; exit 4")

    @ct.lattice
    def workflow():
        return fail()

    result = run(workflow)
    node = result.get_node(0)
    assert result.status is ct.Status.FAILED
    assert "exited with status 4" in node.error and "bad thing" in node.error, node.error


@pytest.fixture(scope="module")
def c_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.fail("no C compiler here: run covalent-servers-install (as root)")
    directory = tmp_path_factory.mktemp("clib")
    source = directory / "demo.c"
    source.write_text(
        "void add(int a, int b, int *out) { *out = a + b; }\n"
        "void scale(double *xs, int n, double by) { for (int i = 0; i < n; i++) xs[i] *= by; }\n"
        "void bump(int *x) { *x += 1; }\n"
    )
    library = directory / "libdemo.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    return library


def test_a_c_function_of_a_shared_library(c_library: Path) -> None:
    add = ct.Lepton(
        "C",
        library_name=str(c_library),
        function_name="add",
        argtypes=[
            (ctypes.c_int, ct.Lepton.INPUT),
            (ctypes.c_int, ct.Lepton.INPUT),
            (ctypes.POINTER(ctypes.c_int), ct.Lepton.OUTPUT),
        ],
    )
    scale = ct.Lepton(
        "C",
        library_name=str(c_library),
        function_name="scale",
        argtypes=[
            (ctypes.POINTER(ctypes.c_double), ct.Lepton.INPUT_OUTPUT),
            (ctypes.c_int, ct.Lepton.INPUT),
            (ctypes.c_double, ct.Lepton.INPUT),
        ],
    )
    bump = ct.Lepton(
        "C",
        library_name=str(c_library),
        function_name="bump",
        argtypes=[(ctypes.POINTER(ctypes.c_int), ct.Lepton.INPUT_OUTPUT)],
    )

    @ct.lattice
    def workflow():
        return [add(2, 3), scale([1.0, 2.5], 2, 2.0), bump(9)]

    result = run(workflow)
    assert result.status is ct.Status.COMPLETED, result.error
    assert result.result == [5, [2.0, 5.0], 10]


def test_a_c_library_that_is_not_there_gets_a_clear_error(tmp_path: Path) -> None:
    missing = ct.Lepton("C", library_name=str(tmp_path / "libnone.so"), function_name="f")

    @ct.lattice
    def workflow():
        return missing()

    result = run(workflow)
    error = result.get_node(0).error
    assert result.status is ct.Status.FAILED
    assert "cannot load the C lepton's shared library" in error and "gcc -shared" in error


def test_cancel_kills_a_running_command() -> None:
    marker = f"covalent-lepton-{uuid.uuid4().hex}"
    wait_forever = ct.Lepton("bash", command=f"exec -a {marker} sleep 600")

    @ct.lattice
    def workflow():
        return wait_forever()

    dispatch_id = ct.dispatch(workflow)()
    wait_until(lambda: marker_processes(marker), 60)
    ct.cancel(dispatch_id, wait=True, timeout=60)
    wait_until(lambda: not marker_processes(marker), 60)
    assert ct.get_result(dispatch_id).get_node(0).status is ct.Status.CANCELLED


def test_declarations_covalent_refuses_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        ct.Lepton("bash", command="true", library_name="x.sh", function_name="f")
    with pytest.raises(ValueError, match="needs library_name or command"):
        ct.Lepton("bash")
    with pytest.raises(ValueError, match="needs function_name"):
        ct.Lepton("python", library_name="os")
    with pytest.raises(ValueError, match="not supported"):
        ct.Lepton("fortran", library_name="x", function_name="f")
    with pytest.raises(ValueError, match="not command"):
        ct.Lepton("C", command="true")
    with pytest.raises(ValueError, match="retval_keyword"):
        ct.Lepton("bash", command="true", call_before=ct.DepsCall(print, retval_keyword="x"))

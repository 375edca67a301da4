"""A task that printed hundreds of megabytes: ``logs`` reads it a piece at a time.

The memory a ``logs`` command uses does not grow with the output's size, ``| head`` ends it at
once and quietly, and ``--tail`` reads from the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import covalent_core as ct
from covalent_core import config
from covalent_core.values import VALUES

MEGABYTES = 500
PEAK_RSS = (
    "import resource, runpy, sys\n"
    "sys.argv = ['covalent-core', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('covalent_core', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)\n"
)


@ct.electron
def talk(megabytes: int) -> int:
    import sys as _sys

    block = "".join(f"line {i:07d} " + "x" * 86 + "\n" for i in range(10_000))  # 1 MB
    for _ in range(megabytes):
        _sys.stdout.write(block)
    _sys.stdout.write("the very last line\n")
    return megabytes


@ct.lattice
def talking(megabytes: int) -> int:
    return talk(megabytes)


def logs(*args: str, pipe_into: list[str] | None = None) -> tuple[bytes, int]:
    """Run ``covalent-core logs ARGS`` (into ``pipe_into``, if given): what it printed (or
    what the pipe's end did) and the command's peak RSS in MB."""
    command = [sys.executable, "-c", PEAK_RSS, "logs", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    if pipe_into is not None:
        reader = subprocess.run(pipe_into, stdin=proc.stdout, capture_output=True, timeout=300)
        proc.stdout.close()
        output = reader.stdout
        _, err = proc.communicate(timeout=300)
    else:
        output, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return output, int(err.decode().split()[-1])


@pytest.fixture(scope="module")
def big_output() -> str:
    dispatch_id = ct.dispatch(talking)(MEGABYTES)
    result = ct.get_result(dispatch_id, wait=True, timeout=600)
    assert result.status is ct.Status.COMPLETED, result.error
    yield dispatch_id
    shutil.rmtree(config.data_dir() / VALUES / dispatch_id, ignore_errors=True)


def test_reading_a_huge_output_takes_no_more_memory_than_a_small_one(big_output: str):
    small = ct.dispatch_sync(talking, timeout=120)(1).dispatch_id
    _, baseline = logs(small, "--task", "0")
    head, peak = logs(big_output, "--task", "0", pipe_into=["head", "-c", "100"])
    assert head == b"line 0000000 " + b"x" * 86 + b"\n"
    assert peak <= baseline + 20, f"{peak} MB for {MEGABYTES} MB of output ({baseline} MB)"
    counted, peak = logs(big_output, "--task", "talk", pipe_into=["wc", "-c"])
    assert int(counted) == MEGABYTES * 1_000_000 + len("the very last line\n")
    assert peak <= baseline + 20, f"{peak} MB for {MEGABYTES} MB of output ({baseline} MB)"


def test_tail_reads_from_the_end(big_output: str):
    tail, _ = logs(big_output, "--task", "0", "--tail", "2")
    assert tail == b"line 0009999 " + b"x" * 86 + b"\nthe very last line\n"
    prefixed, _ = logs(big_output, "--tail", "1")
    assert prefixed == b"[0 talk] the very last line\n"


def test_stdout_and_stderr_go_to_their_own_streams(tmp_path: Path):
    @ct.electron
    def both() -> None:
        import sys as _sys

        print("to stdout")
        print("to stderr", file=_sys.stderr)

    @ct.lattice
    def flow() -> None:
        return both()

    dispatch_id = ct.dispatch_sync(flow, timeout=60)().dispatch_id
    out = subprocess.run(
        [sys.executable, "-m", "covalent_core", "logs", dispatch_id], capture_output=True,
        text=True, timeout=120, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == "[0 both] to stdout\n"
    assert out.stderr == "[0 both] to stderr\n"

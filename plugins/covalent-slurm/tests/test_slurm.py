"""Slurm-specific behaviour against the real cluster: rejections, outcomes, batching, script."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from covalent_slurm import SlurmExecutor
from covalent_slurm.script import batch_script
from covalent_slurm.states import JobEnd, describe_end
from probes import listing, queued_jobs

import covalent_core as ct
from covalent_core.errors import JobLostError
from covalent_core.testing import dispatch_task, finished_task, wait_until
from covalent_core.testing.contexts import nap as nap_by_value
from covalent_core.testing.contexts import task_context

PYTHON = str(Path(sys.executable).absolute())
GOLDEN = Path(__file__).parent / "golden"
COMMANDS = ("sbatch", "squeue", "sacct", "scontrol", "scancel")


@pytest.fixture
def workdir() -> Path:
    return Path("/tmp/covalent-slurm-tests") / uuid.uuid4().hex[:8]


@pytest.fixture
def shims(tmp_path: Path) -> tuple[Path, Path]:
    """A directory of Slurm commands that log each call, then run the real one."""
    directory, log = tmp_path / "bin", tmp_path / "calls.log"
    directory.mkdir()
    for name in COMMANDS:
        shim = directory / name
        shim.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexec /usr/bin/{name} "$@"\n')
        shim.chmod(0o755)
    return directory, log


def calls(log: Path, command: str) -> list[str]:
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if line.startswith(f"{command} ")]


def make(cluster: Any, workdir: Path, **overrides: Any) -> SlurmExecutor:
    options: dict[str, Any] = {
        "options": {"partition": "debug"},
        "remote_workdir": str(workdir),
        "python_path": PYTHON,
        "slurm_conf": str(cluster.conf),
        "poll_freq": 0.5,
    }
    options.update(overrides)
    return SlurmExecutor(**options)


def nap(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return "rested"


def exit_three() -> None:
    import os

    os._exit(3)


# -- the batch script ------------------------------------------------------------------


def test_the_batch_script_matches_the_golden_file():
    script = batch_script(
        options={
            "partition": "gpu",
            "time": "01:00:00",
            "gres": "gpu:1",
            "exclusive": True,
            "mem": "8G",
            "cpus-per-task": 4,
            "N": 1,
            "parsable": "",
            "requeue": False,
        },
        variables={"OMP_NUM_THREADS": 4, "GREETING": "it's $(not run)"},
        prerun_commands=["module load cuda/12"],
        postrun_commands=["echo done"],
        conda_env="my env",
        python_path="python3",
        use_srun=True,
        srun_options={"cpu-bind": "cores", "n": 4, "c": 8, "G": 4},
        srun_append="nsys profile --stats=true",
    )
    golden = GOLDEN / "job.sh"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(script)
    assert script == golden.read_text()


def test_a_bad_option_fails_when_the_executor_is_made():
    with pytest.raises(ct.ExecutorConfigError, match="not an sbatch option name"):
        SlurmExecutor(options={"partition; rm -rf ~": "x"})
    with pytest.raises(ct.ExecutorConfigError, match="must not contain a newline"):
        SlurmExecutor(options={"partition": "debug\n#SBATCH --uid=0"})


# -- bad input -------------------------------------------------------------------------


def test_sbatch_rejecting_the_job_fails_the_node_with_slurms_message(cluster, workdir):
    executor = make(cluster, workdir, options={"partition": "no-such-partition"})
    node = finished_task(dispatch_task(nap, executor, 0.0))
    assert node.status is ct.Status.FAILED
    assert "invalid partition specified: no-such-partition" in (node.error or ""), node.error
    assert queued_jobs(cluster) == [] and listing(workdir) == []


def test_an_unreachable_controller_is_retried_then_a_clear_error(cluster, workdir, shims, tmp_path):
    conf = tmp_path / "slurm.conf"
    conf.write_text(re.sub(r"SlurmctldPort=\d+", "SlurmctldPort=1", cluster.conf.read_text()))
    directory, log = shims
    executor = make(
        cluster, workdir, slurm_conf=str(conf), slurm_path=str(directory), cluster_name="covtest"
    )
    node = finished_task(dispatch_task(nap, executor, 0.0))
    assert node.status is ct.Status.FAILED
    assert "slurmctld did not answer sbatch" in (node.error or ""), node.error
    assert "Unable to contact slurm controller" in (node.error or "")
    assert len(calls(log, "sbatch")) == 2, "sbatch is tried again before giving up"
    assert queued_jobs(cluster) == [] and listing(workdir) == []


# -- outcomes --------------------------------------------------------------------------


def test_a_job_that_exits_non_zero_fails_with_its_exit_code(cluster, workdir):
    node = finished_task(dispatch_task(exit_three, make(cluster, workdir)))
    assert node.status is ct.Status.FAILED
    assert "exit code 3" in (node.error or ""), node.error


def test_a_job_cancelled_by_an_administrator_fails_clearly(cluster, workdir):
    dispatch_id = dispatch_task(nap, make(cluster, workdir), 600.0)
    handle = wait_until(lambda: ct.get_result(dispatch_id).get_node(0).job_handle, 60)
    assert cluster.run(["scancel", str(handle["job_id"])]).returncode == 0
    node = finished_task(dispatch_id)
    assert node.status is ct.Status.FAILED
    assert "cancelled outside covalent" in (node.error or ""), node.error
    assert queued_jobs(cluster) == [] and listing(workdir) == []


@pytest.mark.parametrize(
    ("state", "words"),
    [
        ("TIMEOUT", "options['time']"),
        ("OUT_OF_MEMORY", "options['mem']"),
        ("NODE_FAIL", "node failed"),
        ("PREEMPTED", "preempted"),
        ("CANCELLED", "outside covalent"),
    ],
)
def test_every_slurm_outcome_has_a_clear_message(state, words):
    message = describe_end("42", JobEnd(state))
    assert "Slurm job 42" in message and state in message and words in message
    assert "exit code 2" in describe_end("42", JobEnd("FAILED", 2))
    assert "signal 9" in describe_end("42", JobEnd("FAILED", 0, 9))


# -- batching --------------------------------------------------------------------------


def test_all_waiting_jobs_are_polled_with_one_squeue_call(cluster, workdir, shims):
    directory, log = shims
    executor = make(cluster, workdir, slurm_path=str(directory))
    task = ct.electron(nap, executor=executor)

    @ct.lattice
    def many() -> list[str]:
        return [task(3.0) for _ in range(8)]

    start = time.monotonic()
    result = ct.get_result(ct.dispatch(many)(), wait=True, timeout=180)
    elapsed = time.monotonic() - start
    assert result.status is ct.Status.COMPLETED, [n.error for n in result.tasks if n.error]
    polls = [c for c in calls(log, "squeue") if "--format=%i %T" in c]
    largest = max(len(c.split("--jobs=")[1].split(",")) for c in polls)
    assert largest == 8, f"the poller never asked for all 8 jobs at once: {polls}"
    assert len(polls) <= elapsed / 0.5 + 2, f"{len(polls)} squeue calls in {elapsed:.1f} s"
    assert len(calls(log, "sbatch")) == 8


# -- packing ---------------------------------------------------------------------------


def add_one(x: int) -> int:
    return x + 1


def test_a_packed_chain_runs_in_one_slurm_job(cluster, workdir, shims):
    directory, log = shims
    executor = make(cluster, workdir, slurm_path=str(directory), pack=True, pack_idle=2.0)
    step = ct.electron(add_one, executor=executor)

    @ct.lattice
    def chain(x: int) -> int:
        return step(step(step(x)))

    result = ct.get_result(ct.dispatch(chain)(1), wait=True, timeout=180)
    assert result.status is ct.Status.COMPLETED, [n.error for n in result.tasks if n.error]
    assert result.result == 4
    handles = {
        json.dumps(n.job_handle, sort_keys=True) for n in result.tasks if n.name == "add_one"
    }
    assert len(handles) == 1, f"the chain ran in several jobs: {handles}"
    assert len(calls(log, "sbatch")) == 1
    wait_until(lambda: listing(workdir) == [] and queued_jobs(cluster) == [], 30)


def write_here(name: str) -> str:
    import os as _os

    with open(name, "w") as fh:
        fh.write("kept")
    return _os.getcwd()


def test_one_letter_options_and_empty_values_run_as_covalent_writes_them(cluster, workdir):
    executor = make(
        cluster,
        workdir,
        options={"partition": "debug", "N": 1, "n": 1, "parsable": ""},
        srun_options={"n": 1, "c": 1},
        srun_append="env",
    )
    result = ct.get_result(dispatch_task(add_one, executor, 41), wait=True, timeout=120)
    assert result.status is ct.Status.COMPLETED, [n.error for n in result.tasks if n.error]
    assert result.result == 42


def test_the_task_runs_in_remote_workdir_and_its_files_are_kept(cluster, tmp_path):
    workdir = tmp_path.resolve()
    result = ct.get_result(dispatch_task(write_here, make(cluster, workdir), "out.txt"), True, 120)
    assert result.status is ct.Status.COMPLETED, [n.error for n in result.tasks if n.error]
    assert Path(result.result) == workdir
    assert (workdir / "out.txt").read_text() == "kept"
    unique = make(cluster, workdir, create_unique_workdir=True)
    result = ct.get_result(dispatch_task(write_here, unique, "mine.txt"), True, 120)
    expected = workdir / result.dispatch_id / "node_0"
    assert Path(result.result) == expected and (expected / "mine.txt").read_text() == "kept"


def test_a_job_submitted_before_its_handle_was_stored_is_adopted_not_resubmitted(
    cluster, workdir, shims
):
    """The dispatcher died between sbatch and storing the job id."""
    bin_dir, log = shims
    dispatch_id = str(uuid.uuid4())

    async def scenario() -> None:
        dead = make(cluster, workdir, slurm_path=str(bin_dir))
        task = task_context(dispatch_id, 4, nap_by_value, [1.0])  # no handle is stored
        await dead.pickle(task)
        await dead.upload(task)
        await dead.provision(task)
        submitted = task.state["job_id"]

        stored: list[str] = []
        fresh = make(cluster, workdir, slurm_path=str(bin_dir))
        other = task_context(str(uuid.uuid4()), 4, nap_by_value, [1.0], stored)
        assert await fresh.reattach(other, None) is False  # never submitted
        again = task_context(dispatch_id, 4, nap_by_value, [1.0], stored)
        assert await fresh.reattach(again, None) is True
        assert [json.loads(h)["job_id"] for h in stored] == [submitted]
        await fresh.fetch(again)
        assert again.outcome is not None and again.outcome.ok, again.outcome
        assert cloudpickle.loads(again.outcome.output) == "rested"
        await fresh.cleanup(again)

    asyncio.run(scenario())
    assert len(calls(log, "sbatch")) == 1
    assert listing(workdir) == [] and queued_jobs(cluster) == []


def test_a_job_slurm_has_forgotten_without_an_outcome_is_reported_lost(cluster, workdir):
    async def scenario() -> None:
        executor = make(cluster, workdir)
        task = task_context(str(uuid.uuid4()), 0, nap_by_value, [0.1])
        handle = {"cluster": "covalent-test", "job_id": "999999"}
        with pytest.raises(JobLostError, match="no longer knows job 999999"):
            await executor.reattach(task, json.dumps(handle))

    asyncio.run(scenario())


def test_a_packed_task_still_queued_when_the_dispatcher_died_is_withdrawn(cluster, workdir):
    """Queued into a pilot (no handle stored), not yet started: withdrawn, queued anew."""
    dispatch_id = str(uuid.uuid4())
    queue = workdir / f"pack-{dispatch_id}" / "queue"
    queue.mkdir(parents=True)
    (queue / "00000002").write_text("../somewhere")

    async def scenario() -> bool:
        executor = make(cluster, workdir, pack=True)
        return await executor.reattach(task_context(dispatch_id, 2, nap_by_value, [0.1]), None)

    assert asyncio.run(scenario()) is False
    assert list(queue.iterdir()) == []


def test_a_packed_task_a_pilot_started_is_adopted(cluster, workdir):
    dispatch_id = str(uuid.uuid4())

    async def scenario() -> None:
        dead = make(cluster, workdir, pack=True, pack_idle=1.0)
        task = task_context(dispatch_id, 5, nap_by_value, [0.5])
        await dead.pickle(task)
        await dead.upload(task)
        await dead.provision(task)  # queued; its handle never stored
        pilot = task.state["job_id"]
        started = workdir / f"pack-{dispatch_id}" / "started"
        wait_until(lambda: started.exists() and "00000005" in started.read_text(), timeout=60)

        stored: list[str] = []
        fresh = make(cluster, workdir, pack=True, pack_idle=1.0)
        again = task_context(dispatch_id, 5, nap_by_value, [0.5], stored)
        assert await fresh.reattach(again, None) is True
        assert [json.loads(h)["job_id"] for h in stored] == [pilot]
        await fresh.fetch(again)
        assert again.outcome is not None and again.outcome.ok, again.outcome
        await fresh.cleanup(again)

    asyncio.run(scenario())
    wait_until(lambda: queued_jobs(cluster) == [], timeout=60, what="the pilot ended")


# -- redispatch: cancel a branch, fix it, go on ----------------------------------------


def test_a_redispatch_with_reuse_submits_only_the_rerun_nodes(cluster, workdir, shims, tmp_path):
    directory, log = shims
    executor = make(cluster, workdir, slurm_path=str(directory))
    gate = tmp_path / "never"

    def quick(i: int) -> int:
        return i

    def long_branch(x: int) -> int:
        import os
        import time

        while not os.path.exists(str(gate)):
            time.sleep(0.1)
        return x * 100

    def combine(values: list[int], extra: int) -> int:
        return sum(values) + extra

    quick_task = ct.electron(quick, executor=executor)
    long_task = ct.electron(long_branch, executor=executor)
    combine_task = ct.electron(combine, executor=executor)

    @ct.lattice
    def workflow(n: int) -> int:
        parts = [quick_task(i) for i in range(n)]
        return combine_task(parts, long_task(parts[1]))

    first = ct.dispatch(workflow)(3)

    def long_running() -> int | None:
        for node in ct.get_result(first).tasks:
            if node.name == "long_branch" and node.job_handle:
                return node.node_id
        return None

    long_id = wait_until(long_running, 120)
    wait_until(
        lambda: sum(n.status is ct.Status.COMPLETED for n in ct.get_result(first).tasks
                    if n.name == "quick") == 3,
        120,
    )  # fmt: skip
    ct.cancel(first, task_ids=[long_id], wait=True, timeout=120)
    assert len(calls(log, "sbatch")) == 4  # three quick tasks and the long branch

    def fixed(x: int) -> int:
        return x * 100

    second = ct.redispatch(
        first,
        replace_electrons={"long_branch": ct.electron(fixed, executor=executor)},
        reuse_previous_results=True,
    )()
    result = ct.get_result(second, wait=True, timeout=180)
    assert result.status is ct.Status.COMPLETED, [n.error for n in result.tasks if n.error]
    assert result.result == 0 + 1 + 2 + 100
    assert len(calls(log, "sbatch")) == 6, "only the fixed branch and the combiner are submitted"
    assert sorted(n.name for n in result.tasks if not n.reused) == [
        ":postprocess:reconstruct",
        "combine",
        "fixed",
    ]
    wait_until(lambda: queued_jobs(cluster) == [], 60)

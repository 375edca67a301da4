"""Packing a dispatch's small tasks into one Slurm job, so they don't each wait in the queue.

With ``pack=True`` the first task of a dispatch submits a job running :mod:`.remote`; every
task of that dispatch then joins its queue and stores **the same job handle**. The pilot runs
them one after another (a chain runs in order) and ends ``pack_idle`` seconds after the last.
Cancelling any of them cancels the job: the core then marks every node on it CANCELLED.
A task arriving after the pilot closed its queue gets a new job.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from covalent_core.sdk import TaskContext

from .client import poller, slurm
from .errors import SlurmError
from .states import JobEnd

if TYPE_CHECKING:
    from .executor import SlurmExecutor

PILOT_SOURCE = (Path(__file__).parent / "remote.py").read_bytes()


@dataclass
class Pack:
    """The packed job of one dispatch, as this executor knows it."""

    directory: str
    job_id: str | None = None
    handle: dict[str, Any] | None = None
    inflight: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Packer:
    """Submits pilots, queues tasks into them, waits for their results, tidies up."""

    def __init__(self, executor: SlurmExecutor) -> None:
        self.executor = executor
        self.packs: dict[str, Pack] = {}

    @property
    def shell(self) -> Any:
        return self.executor.shell

    def _poller(self) -> Any:
        return poller(self.executor._key, self.shell, self.executor.poll_freq)

    async def _ended(self, job_id: str) -> bool:
        argv = ["squeue", "--noheader", "--format=%i", f"--jobs={job_id}"]
        try:
            return not (await slurm(self.shell, argv)).strip()
        except SlurmError as exc:  # an unknown (purged) job id has ended too
            if exc.invalid_job_id:
                return True
            raise

    async def provision(self, task: TaskContext) -> None:
        """Queue the task into its dispatch's pilot (submitting one if needed); store the handle."""
        pack = self._pack(task)
        name = f"{task.node_id:08d}"
        incoming = posixpath.join(pack.directory, f".incoming-{name}")
        entry = posixpath.join("..", posixpath.basename(task.state["dir"])).encode()
        async with pack.lock:
            for _ in range(3):
                if pack.job_id is None or await self._ended(pack.job_id):
                    await self._submit_pilot(task, pack)
                await self.shell.put(entry, incoming)
                if await self.shell.rename(incoming, posixpath.join(pack.directory, "queue", name)):
                    break
                pack.job_id = None  # the pilot closed its queue as we came: start another
            else:
                raise RuntimeError("could not queue the task into a packed Slurm job")
        task.state["job_id"] = pack.job_id
        task.state["pack_name"] = name
        assert pack.handle is not None
        await task.set_job_handle(pack.handle)

    def _pack(self, task: TaskContext) -> Pack:
        """The dispatch's pack, counting ``task`` among those in flight."""
        pack = self.packs.get(task.dispatch_id)
        if pack is None:
            directory = posixpath.join(self.executor.remote_workdir, f"pack-{task.dispatch_id}")
            pack = self.packs[task.dispatch_id] = Pack(directory)
        pack.inflight += 1
        task.state["pack"] = pack
        return pack

    async def reattach(self, task: TaskContext, handle: dict[str, Any]) -> None:
        """Wait again for a task a dead dispatcher had queued into the pilot ``handle`` names."""
        pack = self._pack(task)
        job_id = str(handle["job_id"])
        if pack.job_id is None:
            pack.job_id, pack.handle = job_id, handle
        task.state["job_id"] = job_id
        task.state["pack_name"] = f"{task.node_id:08d}"
        await self.run(task)

    async def adopt(self, task: TaskContext) -> bool:
        """After a dispatcher died while queueing the task: withdraw it if it is still queued
        (False: it is queued anew), or adopt the pilot that started it (True once it ended)."""
        directory = posixpath.join(self.executor.remote_workdir, f"pack-{task.dispatch_id}")
        name = f"{task.node_id:08d}"
        listing = await self.shell.run(["ls", "-1A", directory])
        if listing.returncode != 0:
            return False  # no pack for this dispatch: nothing was queued
        queues = ["queue", *(n for n in listing.stdout.split() if n.startswith("queue.closed-"))]
        withdrawn = posixpath.join(directory, f".withdrawn-{name}")
        for queue in queues:
            if await self.shell.rename(posixpath.join(directory, queue, name), withdrawn):
                await self.shell.remove_tree(withdrawn)
                return False
        for attempt in range(2):
            text = (await self.shell.read(posixpath.join(directory, "started")) or b"").decode()
            jobs = [p[1] for p in (ln.split() for ln in text.splitlines()) if p[:1] == [name]]
            if jobs:
                handle = self.executor.handle(jobs[-1], pack=task.dispatch_id)
                await task.set_job_handle(handle)
                await self.reattach(task, handle)
                return True
            if attempt == 0:
                await asyncio.sleep(1.0)  # a pilot may be between claiming it and noting it
        return False

    async def _submit_pilot(self, task: TaskContext, pack: Pack) -> None:
        ex = self.executor
        await ex.shell.makedirs(posixpath.join(pack.directory, "queue"))
        await ex.shell.put(PILOT_SOURCE, posixpath.join(pack.directory, "pilot.py"))
        idle = max(ex.pack_idle, 3 * ex.poll_freq)
        script = ex.script(command=[ex.python_path, "pilot.py", ".", ex.python_path, f"{idle:g}"])
        await ex.shell.put(script.encode(), posixpath.join(pack.directory, "job.sh"))
        argv = [
            "sbatch",
            "--parsable",
            f"--job-name=covalent-{task.dispatch_id[:8]}-pack",
            f"--chdir={pack.directory}",
            "--output=pilot.out",
            "--error=pilot.err",
            posixpath.join(pack.directory, "job.sh"),
        ]
        pack.job_id = (await slurm(ex.shell, argv)).strip().split(";")[0]
        pack.handle = ex.handle(pack.job_id, pack=task.dispatch_id)

    async def run(self, task: TaskContext) -> None:
        """Wait for the task's line in the pilot's done file, or for the pilot to end."""
        pack: Pack = task.state["pack"]
        job_id, name = task.state["job_id"], task.state["pack_name"]
        done = posixpath.join(pack.directory, f"done-{job_id}")
        ended = asyncio.ensure_future(
            poller(self.executor._key, self.shell, self.executor.poll_freq).wait(job_id)
        )
        try:
            while True:
                finished = ended.done()
                code = await self._code(done, name)
                if code is not None:
                    task.state["end"] = JobEnd("COMPLETED" if code == 0 else "FAILED", code)
                    return
                if finished:
                    task.state["end"] = ended.result()
                    return
                await asyncio.sleep(self.executor.poll_freq)
        finally:
            if not ended.done():
                ended.cancel()

    async def _code(self, done: str, name: str) -> int | None:
        text = (await self.shell.read(done) or b"").decode()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return int(parts[1])
        return None

    async def cleanup(self, task: TaskContext) -> None:
        """Once the dispatch's last packed task is done, remove the pack after its job ends."""
        pack: Pack | None = task.state.get("pack")
        if pack is None:
            return
        pack.inflight -= 1
        if pack.inflight == 0 and pack.job_id is not None:
            asyncio.get_running_loop().create_task(self._tidy(task.dispatch_id, pack, pack.job_id))

    async def _tidy(self, dispatch_id: str, pack: Pack, job_id: str) -> None:
        with contextlib.suppress(Exception):
            await self._poller().wait(job_id)
            if pack.inflight == 0 and pack.job_id in (job_id, None):
                self.packs.pop(dispatch_id, None)
                await self.shell.remove_tree(pack.directory)

"""The packed-tasks job: runs the tasks queued for it, one after another, inside one Slurm job.

    python pilot.py PACK_DIR PYTHON IDLE

Standard library only; it runs on the compute node. Tasks arrive as files in
``PACK_DIR/queue`` (their content: the task directory); each is claimed by renaming it (so
that the executor may withdraw a queued task by renaming it first), noted in
``PACK_DIR/started`` as ``NAME JOB_ID``, and run as ``PYTHON runner.py payload outcome`` in
its directory, with its exit status appended to ``PACK_DIR/done-<SLURM_JOB_ID>``. After IDLE
seconds with nothing queued the queue is closed (renamed, so that the executor submits a new
job for later tasks), what slipped in is run, and the job ends. Cancelling the job (scancel)
stops the task running and those queued.
"""

import os
import subprocess
import sys
import time

TASK_UMASK = os.umask(0o077)
"""The job's umask, for the tasks; this runner's own files are owner-only whatever it is."""


def run_one(queue, name, python, done):
    claimed = os.path.join(queue, "." + name + ".claimed")
    try:
        os.rename(os.path.join(queue, name), claimed)
    except FileNotFoundError:
        return  # withdrawn by the executor
    with open(claimed) as fh:
        task_dir = fh.read().strip()
    os.remove(claimed)
    pack_dir = os.path.dirname(os.path.abspath(queue))
    with open(os.path.join(pack_dir, "started"), "a") as fh:
        fh.write(f"{name} {os.environ.get('SLURM_JOB_ID', '0')}\n")
    with (
        open(os.path.join(task_dir, "stdout"), "wb") as out,
        open(os.path.join(task_dir, "stderr"), "wb") as err,
    ):
        code = subprocess.call(
            [python, "runner.py", "payload", "outcome"],
            cwd=task_dir,
            stdout=out,
            stderr=err,
            umask=TASK_UMASK,
        )
    with open(done, "a") as fh:
        fh.write(f"{name} {code}\n")


def main(pack_dir, python, idle):
    queue = os.path.join(pack_dir, "queue")
    done = os.path.join(pack_dir, "done-" + os.environ.get("SLURM_JOB_ID", "0"))
    open(done, "a").close()
    last = time.monotonic()
    while True:
        names = sorted(n for n in os.listdir(queue) if not n.startswith("."))
        if names:
            run_one(queue, names[0], python, done)
            last = time.monotonic()
        elif time.monotonic() - last > idle:
            closed = queue + ".closed-" + os.environ.get("SLURM_JOB_ID", "0")
            os.rename(queue, closed)
            for name in sorted(n for n in os.listdir(closed) if not n.startswith(".")):
                run_one(closed, name, python, done)
            os.rmdir(closed)
            return
        else:
            time.sleep(0.05)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))

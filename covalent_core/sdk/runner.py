"""Runs one task from its pickled payload: used by the local workers and by remote executors.

This module needs only the standard library and cloudpickle, so an executor can copy it to a
machine that does not have covalent-core installed and run ``python runner.py IN OUT``. Run so,
it is the subreaper of the task's processes and kills what the task left running before it
exits.

The payload is ``pickle.dumps((function, args, kwargs, environment))`` where ``function`` and
each argument are cloudpickle bytes, and ``environment`` is ``{"cwd": ..., "sys_path": [...]}``
or None. ``environment["hooks"]``, when present, is the task's environment steps (pickled
``{"before": [...], "after": [...]}``, see :func:`run_step`): shell commands, pip installs and
calls that run here, in the task's process and its children, around the function.

The outcome is ``pickle.dumps(dict)`` with ``ok`` and either ``output`` (cloudpickle bytes)
or ``error``, ``traceback`` and ``exception`` (cloudpickle bytes, or None); a successful
outcome also has ``output_repr``, ``str()`` of the value when it is short.
"""

from __future__ import annotations

import contextlib
import json
import linecache
import os
import pickle
import subprocess
import sys
import time
import traceback
from typing import Any

import cloudpickle

OUTPUT_REPR_MAX = 10_000
# Set for the task (and what it starts): which dispatch and node it is. See ct.get_context().
ENV_DISPATCH_ID = "COVALENT_CORE_DISPATCH_ID"
ENV_NODE_ID = "COVALENT_CORE_NODE_ID"
# Every process of a task carries this marker in its environment (see containment.py).
MARK_VARIABLE = "COVALENT_CORE_TASK_MARK"
PR_SET_CHILD_SUBREAPER = 36


# -- the task's processes (Linux /proc; standard library only, as this whole file) ------------


def become_subreaper() -> bool:
    """Make this process the subreaper of its descendants (``PR_SET_CHILD_SUBREAPER``): an
    orphan among them is re-parented here rather than to init. False where Linux refuses."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def process_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent PID, start time in clock ticks since boot) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[19])


def all_pids() -> list[int]:
    """Every PID on this machine (none where there is no /proc)."""
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def descendants(pid: int) -> set[int]:
    """Live descendants of ``pid`` (re-parented orphans included, when it is a subreaper)."""
    parents: dict[int, list[int]] = {}
    for child in all_pids():
        info = process_stat(child)
        if info is not None and info[0] not in ("Z", "X"):
            parents.setdefault(info[1], []).append(child)
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        for child in parents.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def kill_descendants(pid: int, rounds: int = 500) -> None:
    """SIGKILL every descendant of ``pid`` until none is left (or ``rounds`` tries passed)."""
    import signal

    for _ in range(rounds):
        left = descendants(pid)
        if not left:
            return
        for child in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGKILL)
        time.sleep(0.005)
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass


def encode_environ(target: dict[str, str]) -> dict[bytes, bytes]:
    """``target`` as the operating system holds environment variables (bytes)."""
    return {os.fsencode(k): os.fsencode(v) for k, v in target.items()}


def set_environ(target: dict[str, str], encoded: dict[bytes, bytes] | None = None) -> None:
    """Make ``os.environ`` exactly ``target``, changing only what differs (a process that
    runs one task after another mostly holds the same variables already); ``encoded``:
    :func:`encode_environ` of it, when known."""
    current = os.environ
    data = getattr(current, "_data", None)  # CPython's encoded copy: compared without decoding
    if data is None:  # another Python: the plain way
        for key in [k for k in current if k not in target]:
            del current[key]
        current.update({k: v for k, v in target.items() if current.get(k) != v})
        return
    wanted = encode_environ(target) if encoded is None else encoded
    if data == wanted:
        return
    for key in [k for k in data if k not in wanted]:
        del current[os.fsdecode(key)]
    for key, value in wanted.items():
        if data.get(key) != value:
            current[os.fsdecode(key)] = os.fsdecode(value)


def apply_environment(environment: dict[str, Any] | None) -> None:
    """Make the task see the dispatching process's working directory and import path, and
    its environment variables when the payload carries them (tasks on the same machine)."""
    if not environment:
        return
    variables = environment.get("variables")
    if variables is not None:
        # Exactly the dispatching process's variables: none of whoever started this process,
        # but the marker every process of the task carries (executors/containment.py).
        mark = os.environ.get(MARK_VARIABLE)
        target = dict(variables)
        if mark is not None:
            target[MARK_VARIABLE] = mark
        set_environ(target)
    task = environment.get("task")
    if task:
        os.environ[ENV_DISPATCH_ID] = str(task["dispatch_id"])
        os.environ[ENV_NODE_ID] = str(task["node_id"])
    for entry in reversed(environment.get("sys_path") or []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    for name, text in (environment.get("sources") or {}).items():
        # Code no file holds (a notebook cell): its lines, for the task's tracebacks.
        linecache.cache[name] = (len(text), None, text.splitlines(keepends=True), name)
    cwd = environment.get("cwd")
    if cwd:
        cwd = os.path.expanduser(cwd)
        if os.path.isdir(cwd) and os.getcwd() != cwd:
            os.chdir(cwd)


# -- the task's environment: steps run before and after its function -----------------------

STEP_OUTPUT_MAX = 8_000
"""Characters of a failed step's output kept in the node's error (its end)."""
FILES_KEYWORD = "files"
"""The keyword file transfers pass their paths under: always a list, as in Covalent."""


class StepFailed(Exception):
    """A step of the task's environment (a command, a pip install) did not succeed."""


def _tail(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= STEP_OUTPUT_MAX else "..." + text[-STEP_OUTPUT_MAX:]


def run_command(argv: list[str], label: str) -> None:
    """Run ``argv`` (no shell of ours: the user's text is one argument); raise
    :class:`StepFailed` naming ``label`` with the exit status and output when it fails. The
    command is a child of the task's process: cancelling the task kills it."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=False)  # fmt: skip
    if done.returncode != 0:
        how = (f"was killed by signal {-done.returncode}" if done.returncode < 0
               else f"exited with status {done.returncode}")  # fmt: skip
        output = _tail(done.stdout).rstrip() or "(no output)"
        raise StepFailed(f"{label} {how}; its output:\n{output}")


def pip_install(step: dict[str, Any], target: str | None) -> None:
    """``python -m pip install`` into this interpreter's environment, or into ``target``
    (a directory put first on the import path) when the executor isolates installs."""
    argv = [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
    requirements = step.get("requirements") or ""
    if target:
        os.makedirs(target, mode=0o700, exist_ok=True)
        argv += ["--target", target, "--upgrade"]
    if requirements:
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
            fh.write(requirements)
        argv += ["-r", fh.name]
    else:
        argv += list(step.get("packages") or [])
    try:
        if target:
            import fcntl  # one install at a time into a shared target

            with open(os.open(target + ".lock", os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                run_command(argv, step["label"])
        else:
            run_command(argv, step["label"])
    finally:
        if requirements:
            os.unlink(fh.name)
    if target and target not in sys.path:
        sys.path.insert(0, target)


def run_step(step: dict[str, Any], environment: dict[str, Any]) -> Any:
    """Run one step; what a call returns (None for the others).

    A step is a dict with ``kind`` and ``label`` (how errors name it): ``bash`` with
    ``commands`` (each run as ``bash -c COMMAND``), ``pip`` with ``packages`` or
    ``requirements`` (a requirements file's text), ``call`` with ``function``, ``args`` and
    ``kwargs`` (cloudpickle bytes) and ``retval_keyword``."""
    kind = step["kind"]
    if kind == "bash":
        commands = step["commands"]
        for index, command in enumerate(commands):
            where = f" (command {index + 1} of {len(commands)})" if len(commands) > 1 else ""
            run_command(["bash", "-c", command], f"{step['label']}{where}: {command!r}")
        return None
    if kind == "pip":
        pip_install(step, environment.get("pip_target"))
        return None
    if kind == "call":
        try:
            function = cloudpickle.loads(step["function"])
            return function(*cloudpickle.loads(step["args"]), **cloudpickle.loads(step["kwargs"]))
        except Exception as exc:
            raise StepFailed(f"{step['label']} raised {type(exc).__name__}: {exc}") from exc
    raise StepFailed(f"{step.get('label', kind)}: this runner does not know steps of kind {kind!r}")


def call_with_steps(
    function: Any,
    steps: dict[str, list[dict[str, Any]]],
    environment: dict[str, Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """``function(*args, **kwargs)`` with its environment's steps around it: the ``before``
    steps, whose ``retval_keyword`` values become keyword arguments (a keyword given twice
    collects a list, as :data:`FILES_KEYWORD` always does), the call, then the ``after``
    steps (only when it returned). A step that fails raises :class:`StepFailed`."""
    collected: dict[str, list[Any]] = {}
    for step in steps.get("before", ()):
        value = run_step(step, environment)
        if step.get("retval_keyword"):
            collected.setdefault(step["retval_keyword"], []).append(value)
    for key, values in collected.items():
        kwargs[key] = values[0] if len(values) == 1 and key != FILES_KEYWORD else values
    value = function(*args, **kwargs)
    for step in steps.get("after", ()):
        run_step(step, environment)
    return value


# -- big values: stored once as files, passed around as references ------------------------

BIG_VALUE = 1 << 20
"""Pickled values above this many bytes are kept in a file of their own, not in the store."""
VALUE_REF = b"covalent-core-value:"
"""A reference to such a file: this prefix, then JSON ``{"path": ..., "size": ...}``. A
pickle never starts so, so a stored value is either a reference or the pickle itself."""


def is_value_ref(data: bytes | None) -> bool:
    """True if ``data`` is a reference to a value file rather than the value."""
    return data is not None and data[: len(VALUE_REF)] == VALUE_REF


def value_ref_path(ref: bytes) -> str:
    """The file a reference names."""
    return json.loads(ref[len(VALUE_REF) :])["path"]


def read_value(data: bytes) -> bytes:
    """The pickled value itself: ``data``, or the content of the file it references."""
    if not is_value_ref(data):
        return data
    with open(value_ref_path(data), "rb") as fh:
        return fh.read()


def write_value(directory: str, name: str, data: bytes) -> bytes:
    """Write ``data`` once to ``directory/name`` (owner-only, atomically); its reference.
    Nothing is left behind when it cannot be written (a full disk)."""
    for level in (os.path.dirname(directory), directory):  # each owner-only, as makedirs is not
        os.makedirs(level, mode=0o700, exist_ok=True)
    path = os.path.join(directory, name)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(fd, "wb") as fh:
            fh.write(data)
        os.rename(path + ".tmp", path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path + ".tmp")
        raise
    return VALUE_REF + json.dumps({"path": path, "size": len(data)}).encode()


class ValueNotWritten(OSError):
    """A task's big output could not be written to its file (a full disk, say)."""


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, even when its ``__str__`` raises."""
    try:
        text = str(exc)
    except BaseException as inner:  # the exception's own __str__ is broken
        text = f"<its str() raised {type(inner).__name__}>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def failure(error: str, trace: str | None = None, exception: bytes | None = None) -> bytes:
    """An outcome saying the task failed with ``error``."""
    return pickle.dumps({"ok": False, "error": error, "traceback": trace, "exception": exception})


# -- a task: its payload, made by the dispatcher, and running it --------------------------


def task_payload(
    function: bytes,
    args: list[bytes],
    kwargs: dict[str, bytes],
    environment: dict[str, Any] | None,
) -> bytes:
    """The payload :func:`execute` runs."""
    return pickle.dumps((function, args, kwargs, environment), protocol=pickle.HIGHEST_PROTOCOL)


def execute(payload: bytes) -> bytes:
    """Run the task in ``payload`` and return its pickled outcome; never raises.

    Arguments may be references to value files (read here). With ``values_dir`` in the
    environment, an output above :data:`BIG_VALUE` is written there and the outcome carries
    its reference; an output that *is* one of the referenced arguments keeps its reference."""
    stage = "unpickling the task"
    try:
        function_bytes, args_bytes, kwargs_bytes, environment = pickle.loads(payload)
        apply_environment(environment)
        function = cloudpickle.loads(function_bytes)
        referenced: dict[int, bytes] = {}  # id of an argument read from a file -> its reference

        def load(data: bytes) -> Any:
            value = cloudpickle.loads(read_value(data))
            if is_value_ref(data):
                referenced[id(value)] = data
            return value

        args = [load(b) for b in args_bytes]
        kwargs = {k: load(b) for k, b in kwargs_bytes.items()}
        hooks = (environment or {}).get("hooks")
        stage = "running the task"
        if hooks:
            value = call_with_steps(function, pickle.loads(hooks), environment, *args, **kwargs)
        else:
            value = function(*args, **kwargs)
        stage = "pickling the task's result"
        text = None
        if id(value) in referenced:
            output = referenced[id(value)]  # stored once: the same value, the same file
        else:
            output = cloudpickle.dumps(value)
            values_dir = (environment or {}).get("values_dir")
            if values_dir and len(output) > BIG_VALUE:
                task = environment.get("task") or {}
                name = f"{task.get('node_id', 'value')}-{os.getpid()}-{time.time_ns()}.pickle"
                try:
                    output = write_value(values_dir, name, output)
                except OSError as exc:
                    raise ValueNotWritten(
                        f"the task's result ({len(output) / 1e6:.1f} MB) could not be written "
                        f"to {values_dir}: {exc.strerror or exc}. Free some space there (or "
                        "point COVALENT_CORE_DATA_DIR elsewhere) and run it again."
                    ) from None
            elif len(output) <= BIG_VALUE:
                text = _text(value)
    except BaseException as exc:
        try:
            exception: bytes | None = cloudpickle.dumps(exc)
        except BaseException:  # unpicklable, or its pickling raises
            exception = None
        prefix = "" if stage == "running the task" else f"error while {stage}: "
        if isinstance(exc, (StepFailed, ValueNotWritten)):
            error = str(exc)
        else:
            error = prefix + describe(exc)
        return failure(error, user_traceback(exc), exception)
    return pickle.dumps({"ok": True, "output": output, "output_repr": text})


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the user's code on: the frames of this runner (and of
    covalent-core around the call) before the first of the user's are left out."""
    shown = traceback.TracebackException.from_exception(exc)
    frames = list(shown.stack)
    while len(frames) > 1 and _ours(frames[0].filename):
        frames.pop(0)
    shown.stack = traceback.StackSummary.from_list(frames)
    return "".join(shown.format())


def _ours(filename: str) -> bool:
    """True for this runner's code, wherever it runs from, and covalent-core's package."""
    return filename == RUNNER_FILE or (bool(PACKAGE_DIR) and filename.startswith(PACKAGE_DIR))


RUNNER_FILE = globals().get("__file__") or "<string>"
"""This runner's file; ``<string>`` when its source is run with ``python -c`` (remotely)."""
PACKAGE_DIR = (
    os.path.dirname(os.path.dirname(os.path.abspath(RUNNER_FILE))) + os.sep
    if "__file__" in globals() and os.path.basename(os.path.dirname(RUNNER_FILE)) == "sdk"
    else ""
)
"""covalent-core's package directory, when this runner is its module (not a lone copy)."""


def _text(value: Any) -> str | None:
    """``str(value)``, kept when short (clients show it without unpickling the value)."""
    try:
        text = str(value)
    except Exception:
        return None
    return text if len(text) <= OUTPUT_REPR_MAX else None


def main(argv: list[str] | None = None) -> int:
    """``python runner.py PAYLOAD_FILE OUTCOME_FILE``: the outcome is written atomically."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: runner.py PAYLOAD_FILE OUTCOME_FILE", file=sys.stderr)
        return 2
    # The task may change directory (to the dispatcher's): fix the outcome's place first.
    target = os.path.abspath(argv[1])
    # What the task leaves running (a double-forked daemon included) stays below this process
    # and ends with it, whatever the resource tracks of its own.
    become_subreaper()
    with open(argv[0], "rb") as fh:
        outcome = execute(fh.read())
    kill_descendants(os.getpid())
    partial = target + ".partial"
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        fh.write(outcome)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

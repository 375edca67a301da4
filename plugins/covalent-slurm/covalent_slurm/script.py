"""The batch script of one task: ``#SBATCH`` options, environment, pre/post commands, the run.

Per-task settings (job name, working directory, output files) go on ``sbatch``'s command line
as argv, so no path is ever parsed out of the script. Values are quoted for bash with
:func:`shlex.quote`; ``prerun_commands`` and ``postrun_commands`` are the user's own shell.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from covalent_core.errors import ExecutorConfigError

OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sbatch_option(name: str, value: Any) -> list[str]:
    """An option as Slurm reads it, in argv words; refuses what would break the script.

    As Covalent writes them: a one-letter name is ``-n 4``, a longer one ``--nodes=2``; an
    empty value, True or None is the bare flag (``--parsable``, ``--exclusive``). False
    leaves the option out.
    """
    if not OPTION_NAME.match(name):
        raise ExecutorConfigError(f"not an sbatch option name: {name!r}")
    if value is False:
        return []
    flag = f"-{name}" if len(name) == 1 else f"--{name}"
    if value is True or value is None or value == "":
        return [flag]
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ExecutorConfigError(f"sbatch option {name!r} must not contain a newline")
    return [flag, text] if len(name) == 1 else [f"{flag}={text}"]


def batch_script(
    *,
    options: dict[str, Any],
    variables: dict[str, Any],
    prerun_commands: list[str],
    postrun_commands: list[str],
    conda_env: str | None,
    python_path: str,
    use_srun: bool,
    srun_options: dict[str, Any],
    srun_append: str | None = None,
    command: list[str] | None = None,
) -> str:
    """The text of the batch script; the task runs ``python runner.py payload outcome``.

    ``command`` replaces that (the packed-tasks job runs its own loop, without srun).
    """
    lines = ["#!/bin/bash"]
    for name, value in sorted(options.items()):
        words = sbatch_option(name, value)
        if words:
            lines.append(f"#SBATCH {' '.join(words)}")
    lines.append("")
    for name, value in sorted(variables.items()):
        if not ENV_NAME.match(name):
            raise ExecutorConfigError(f"not an environment variable name: {name!r}")
        lines.append(f"export {name}={shlex.quote(str(value))}")
    lines += list(prerun_commands)
    if conda_env:
        lines.append('eval "$(conda shell.bash hook)"')
        lines.append(f"conda activate {shlex.quote(conda_env)}")
    run = command or [python_path, "runner.py", "payload", "outcome"]
    if use_srun and command is None:
        words = [w for k, v in sorted(srun_options.items()) for w in sbatch_option(k, v)]
        # srun_append: a command that wraps the run inside srun (e.g. a profiler), as words.
        run = ["srun", *words, *shlex.split(srun_append or ""), *run]
    lines.append(shlex.join(run))
    lines.append("status=$?")
    lines += list(postrun_commands)
    lines.append('exit "$status"')
    return "\n".join(lines) + "\n"

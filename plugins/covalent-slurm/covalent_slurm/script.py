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


def sbatch_option(name: str, value: Any) -> str:
    """``--name=value`` (``--name`` for True), refusing what would break the script."""
    if not OPTION_NAME.match(name):
        raise ExecutorConfigError(f"not an sbatch option name: {name!r}")
    if value is True or value is None:
        return f"--{name}"
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ExecutorConfigError(f"sbatch option {name!r} must not contain a newline")
    return f"--{name}={text}"


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
    command: list[str] | None = None,
) -> str:
    """The text of the batch script; the task runs ``python runner.py payload outcome``.

    ``command`` replaces that (the packed-tasks job runs its own loop, without srun).
    """
    lines = ["#!/bin/bash"]
    lines += [f"#SBATCH {sbatch_option(k, v)}" for k, v in sorted(options.items())]
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
        run = ["srun", *(sbatch_option(k, v) for k, v in sorted(srun_options.items())), *run]
    lines.append(shlex.join(run))
    lines.append("status=$?")
    lines += list(postrun_commands)
    lines.append('exit "$status"')
    return "\n".join(lines) + "\n"

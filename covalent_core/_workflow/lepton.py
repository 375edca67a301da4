"""Leptons: tasks in other languages, as Covalent's ``ct.Lepton`` and ``ct.leptons.bash``.

A lepton is an electron whose function calls foreign code where the task runs: a shell
command or a shell library's function (``language="bash"``), a Python module's function
(``"python"``), or a C function of a shared library (``"C"``, through ctypes; the library must
be built where the task runs). What runs is in :mod:`covalent_core._workflow.lepton_calls`; a cancel
kills the command with the task's other processes.

Differs from Covalent on purpose: keyword arguments of a shell lepton reach the command as
environment variables and, where its template names them (``{x}``), shell-quoted, so a value
is never read as shell code; Covalent pastes them in as they are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import Electron, lepton_calls
from .deps import task_environment

_PYTHON = ("python", "Python")
_C = ("C", "c")
_SHELL = ("bash", "shell")


def _type_name(kind: Any) -> str:
    return kind if isinstance(kind, str) else kind.__name__


class Lepton(Electron):
    """An electron that calls foreign code; see the module's docstring.

    ``argtypes`` is a list of ``(type, use)``: a ctypes type for C (``ctypes.c_int``,
    ``ctypes.POINTER(ctypes.c_double)``), a Python type for the shell's named outputs
    (``int``, ``str``); ``use`` is ``Lepton.INPUT``, ``OUTPUT`` or ``INPUT_OUTPUT``.
    ``named_outputs``: shell variables whose values the task returns.
    """

    INPUT = lepton_calls.INPUT
    OUTPUT = lepton_calls.OUTPUT
    INPUT_OUTPUT = lepton_calls.INPUT_OUTPUT

    def __init__(
        self,
        language: str = "python",
        *,
        library_name: str = "",
        function_name: str = "",
        argtypes: list[tuple[Any, int]] | None = None,
        command: str | list[str] = "",
        named_outputs: list[str] | None = None,
        display_name: str = "",
        executor: Any = None,
        files: list[Any] | None = None,
        deps_bash: Any = None,
        deps_pip: Any = None,
        call_before: Any = None,
        call_after: Any = None,
    ) -> None:
        named_outputs = list(named_outputs or [])
        if language in _PYTHON + _SHELL:
            if command and library_name:
                raise ValueError("a lepton takes library_name or command, not both")
            if not (command or library_name):
                raise ValueError(f"a {language} lepton needs library_name or command")
        else:
            if language not in _C:
                raise ValueError(
                    f"lepton language {language!r} is not supported: use 'bash', 'python' or 'C'"
                )
            if command:
                raise ValueError(f"a {language} lepton takes library_name, not command")
            if named_outputs:
                raise ValueError(f"a {language} lepton returns its outputs, not named_outputs")
        if library_name and not function_name:
            raise ValueError("a lepton that calls a library needs function_name")
        for name in named_outputs:
            if not name.isidentifier():
                raise ValueError(f"named output {name!r} is not a shell variable name")
        hooks = task_environment(
            deps_bash=deps_bash,
            deps_pip=deps_pip,
            call_before=call_before,
            call_after=call_after,
            files=files,
        )
        if hooks is not None and any(call.retval_keyword for call in hooks.call_before):
            raise ValueError(
                "leptons take no retval_keyword in their DepsCall (as in Covalent): remove it"
            )
        if hooks is not None:
            hooks.files_keyword = ""  # as in Covalent: a lepton is not given its files' paths
        self.language = language
        self.library_name = library_name
        self.function_name = function_name
        self.argtypes = [(_type_name(kind), use) for kind, use in (argtypes or [])]
        self.command = command
        self.named_outputs = named_outputs
        self.display_name = display_name
        spec = {
            "command": command,
            "library_name": library_name,
            "function_name": function_name,
            "argtypes": self.argtypes,
            "named_outputs": named_outputs,
        }
        if language in _SHELL:
            call = lepton_calls.run_shell
        elif language in _PYTHON:
            call = lepton_calls.run_python
        else:
            call = lepton_calls.run_c
        name = display_name or function_name or (command if isinstance(command, str) else "")
        task = lepton_calls.task(call, spec, name or "lepton")
        super().__init__(task, executor=executor)
        if hooks is not None:
            self.metadata["hooks"] = hooks


def bash(
    _func: Callable[..., str] | None = None,
    *,
    display_name: str = "",
    executor: Any = None,
    **environment: Any,
) -> Any:
    """Make a function that returns a shell command a task that runs it, as Covalent's
    ``ct.leptons.bash``: the command is made when the task is called (in the lattice).
    ``environment``: the lepton's ``files``, ``deps_bash``, ``deps_pip``, ``call_before``,
    ``call_after``."""
    unknown = set(environment) - {"files", "deps_bash", "deps_pip", "call_before", "call_after"}
    if unknown:
        raise TypeError(f"leptons.bash() got unexpected keyword arguments: {sorted(unknown)}")

    def decorate(func: Callable[..., str]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            command = func(*args, **kwargs)
            lepton = Lepton(
                "bash",
                command=command,
                display_name=display_name,
                executor=executor,
                **environment,
            )
            return lepton()

        return wrapper

    return decorate if _func is None else decorate(_func)


__all__ = ["Lepton", "bash"]

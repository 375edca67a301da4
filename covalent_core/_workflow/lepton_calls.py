"""What a lepton's task runs where it runs: a shell command, a shell library's function, a
Python module's function, or a C function of a shared library.

Standard library only, and pickled by value with the task, so the resource needs neither
covalent-core nor anything else of ours. User data never becomes shell text: positional
arguments are the shell's ``$1 ...``, keyword arguments are environment variables (and, in a
command template, substituted shell-quoted).
"""

from __future__ import annotations

import builtins
import subprocess
import sys
from typing import Any

import cloudpickle

INPUT, OUTPUT, INPUT_OUTPUT = 0, 1, 2
"""How a lepton's argument is used (Covalent's ``Lepton.INPUT`` ...)."""
OUTPUT_MARK = "COVALENT-LEPTON-OUTPUT-"


class LeptonError(Exception):
    """The foreign code failed; the message has its exit status and error output."""


def _outputs_script(named_outputs: list[str]) -> str:
    return "".join(f' && echo "{OUTPUT_MARK}{name}: ${name}"' for name in named_outputs)


def _check_counts(argtypes: list[tuple[str, int]], named_outputs: list[str], kwargs: dict) -> None:
    kinds = [kind for _, kind in argtypes]
    expected = kinds.count(INPUT_OUTPUT) + kinds.count(OUTPUT)
    if expected != len(named_outputs):
        raise LeptonError(f"the lepton declares {expected} outputs in argtypes but names "
                          f"{len(named_outputs)} in named_outputs")  # fmt: skip
    if kinds.count(INPUT_OUTPUT) != len(kwargs):
        raise LeptonError(f"the lepton expects {kinds.count(INPUT_OUTPUT)} keyword arguments "
                          f"(its INPUT_OUTPUT argtypes), got {len(kwargs)}")  # fmt: skip


def _parse_outputs(stdout: str, argtypes: list[tuple[str, int]], named_outputs: list[str]) -> Any:
    lines = stdout.strip().split("\n")
    values = []
    for index, name in enumerate(named_outputs):
        mark = f"{OUTPUT_MARK}{name}: "
        for line in lines:
            if mark in line:
                convert = getattr(builtins, argtypes[index][0]) if index < len(argtypes) else str
                values.append(convert(line.split(mark, 1)[1]))
                break
    if not values:
        return None
    return tuple(values) if len(values) > 1 else values[0]


def run_shell(spec: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """A shell lepton: ``spec`` has ``command`` (a template) or ``library_name`` and
    ``function_name``, and ``argtypes`` and ``named_outputs``. Its standard output goes to the
    task's; the named outputs are read from it."""
    import os
    import shlex

    argtypes = [tuple(a) for a in spec["argtypes"]]
    named_outputs = list(spec["named_outputs"])
    _check_counts(argtypes, named_outputs, kwargs)
    environment = {**os.environ, **{str(k): str(v) for k, v in kwargs.items()}}
    outputs = _outputs_script(named_outputs)
    if spec["command"]:
        command = spec["command"]
        if isinstance(command, list):
            command = " && ".join(command)
        command = command.format(**{k: shlex.quote(str(v)) for k, v in kwargs.items()})
        argv = ["bash", "-c", f"{command}{outputs}", "_", *map(str, args)]
    else:
        script = 'source "$0" && "$LEPTON_FUNCTION" "$@"' + outputs
        environment["LEPTON_FUNCTION"] = spec["function_name"]
        argv = ["bash", "-c", script, spec["library_name"], *map(str, args)]
    done = subprocess.run(argv, env=environment, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, check=False)  # fmt: skip
    sys.stdout.write("".join(line for line in done.stdout.splitlines(keepends=True)
                             if not line.startswith(OUTPUT_MARK)))  # fmt: skip
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        how = (f"was killed by signal {-done.returncode}" if done.returncode < 0
               else f"exited with status {done.returncode}")  # fmt: skip
        raise LeptonError(f"the lepton's shell {how}: {done.stderr.strip() or '(no error output)'}")
    return _parse_outputs(done.stdout, argtypes, named_outputs)


def run_python(spec: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """A Python lepton: ``function_name`` of the module ``library_name``, imported here."""
    import importlib

    module = importlib.import_module(spec["library_name"])
    try:
        function = getattr(module, spec["function_name"])
    except AttributeError:
        raise AttributeError(
            f"module {spec['library_name']!r} has no function {spec['function_name']!r}"
        ) from None
    return function(*args, **kwargs)


def run_c(spec: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """A C lepton: ``function_name`` of the shared library ``library_name`` through ctypes.

    ``argtypes`` pairs a ctypes type name (``c_int``, ``LP_c_double`` for a pointer) with how
    the argument is used; OUTPUT and INPUT_OUTPUT arguments are returned, as in Covalent."""
    import ctypes

    if kwargs:
        raise LeptonError(f"a C lepton takes positional arguments only, not {sorted(kwargs)}")
    try:
        library = ctypes.CDLL(spec["library_name"])
    except OSError as exc:
        raise LeptonError(
            f"cannot load the C lepton's shared library {spec['library_name']!r} ({exc}): "
            "build it where the task runs (e.g. gcc -shared -fPIC -o libname.so source.c) "
            "and give its path as library_name"
        ) from None
    try:
        function = library[spec["function_name"]]
    except AttributeError:
        raise LeptonError(
            f"the shared library {spec['library_name']!r} has no function {spec['function_name']!r}"
        ) from None
    types, uses = [], []
    for name, use in spec["argtypes"]:
        if name.startswith("LP_"):
            types.append(ctypes.POINTER(getattr(ctypes, name[3:])))
        else:
            types.append(getattr(ctypes, name))
        uses.append(use)
    function.argtypes = types
    function.restype = None
    c_args: list[Any] = []
    for index, kind in enumerate(types):
        arg = args[index] if uses[index] != OUTPUT else None
        pointer = kind.__name__.startswith("LP_")
        if pointer and hasattr(arg, "__getitem__"):
            c_args.append((kind._type_ * len(arg))(*arg))
        elif pointer and uses[index] != INPUT:
            c_args.append(ctypes.pointer(kind._type_(arg) if arg else kind._type_()))
        elif uses[index] == INPUT:
            c_args.append(kind(arg))
        else:
            raise LeptonError(f"argument {index}: {kind.__name__} cannot be an output")
    function(*c_args)
    values = []
    for index, arg in enumerate(c_args):
        if uses[index] == INPUT:
            continue
        values.append(arg.contents.value if hasattr(arg, "contents") else list(arg))
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def task(call: Any, spec: dict[str, Any], name: str) -> Any:
    """The function a lepton's node runs: ``call(spec, *args, **kwargs)``, named ``name``."""

    def lepton(*args: Any, **kwargs: Any) -> Any:
        return call(spec, *args, **kwargs)

    lepton.__name__ = lepton.__qualname__ = name
    return lepton


cloudpickle.register_pickle_by_value(sys.modules[__name__])

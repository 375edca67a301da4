"""Lattice programs for comparing covalent-core with real Covalent: one per construct, and random.

A program is Python source that uses ``ct`` (bound to ``covalent`` or ``covalent_core`` by
whoever runs it) and defines ``workflow`` (the lattice), ``ARGS`` and ``KWARGS``. Every
electron returns a small value derived from the *exact* inputs it received (types, order,
containers included), so a program's result differs whenever the values a task receives do.

The random generator draws only constructs whose graph is deterministic in Covalent: a set
holds either plain numbers or one output alone (Covalent orders an output among other
members by its object's address, which changes from run to run), and no output is iterated
except by unpacking into two or more names.
"""

from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass

PRELUDE = '''
import collections
import types
import zlib

Point = collections.namedtuple("Point", "x y")


def _canon(v):
    """A text of ``v`` that shows every type and order (sets sorted)."""
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return type(v).__name__ + "(" + ",".join(_canon(i) for i in v) + ")"
    if isinstance(v, (list, tuple)):
        return type(v).__name__ + "[" + ",".join(_canon(i) for i in v) + "]"
    if isinstance(v, (set, frozenset)):
        return type(v).__name__ + "{" + ",".join(sorted(_canon(i) for i in v)) + "}"
    if isinstance(v, dict):
        return "dict{" + ",".join(_canon(k) + ":" + _canon(x) for k, x in v.items()) + "}"
    if isinstance(v, types.SimpleNamespace):
        return "ns(" + _canon(vars(v)) + ")"
    return type(v).__name__ + ":" + repr(v)


def _h(v):
    return zlib.crc32(_canon(v).encode()) % 997 + 1


@ct.electron
def one(x):
    return _h(("one", x))


@ct.electron
def two(x, y=1):
    return _h(("two", x, y))


@ct.electron
def many(*args, **kwargs):
    return _h(("many", args, sorted(kwargs.items())))


@ct.electron
def kwonly(a, *, b=2, c=3):
    return _h(("kwonly", a, b, c))


@ct.electron
def mixed(a, b=2, *args, c=3, **kw):
    return _h(("mixed", a, b, args, c, sorted(kw.items())))


@ct.electron
def posonly(a, /, b=5):
    return _h(("posonly", a, b))


@ct.electron
def pair(x):
    h = _h(("pair", x))
    return (h, h + 1)


@ct.electron
def triple(x):
    h = _h(("triple", x))
    return [h, h + 1, h + 2]


@ct.electron
def mapping(x):
    h = _h(("mapping", x))
    return {"a": h, "b": [h, h + 1], "c": {"d": h + 2}}


@ct.electron
def obj(x):
    h = _h(("obj", x))
    return types.SimpleNamespace(v=h, w=(h, h + 1))


@ct.electron
def cplx(x):
    return complex(_h(("cplx", x)), 2)


@ct.electron
def show(x):
    return _canon(x)


@ct.lattice
def sub_one(x, y=2):
    return two(one(x), y)


@ct.lattice
def sub_nested(x):
    return ct.electron(sub_one)(x, y=one(x))


@ct.lattice
def sub_pair(x):
    return pair(x)


def RESULT(value):
    return _canon(value)
'''


@dataclass
class Program:
    """One lattice program: its name, the lattice's source, and its arguments (as source)."""

    name: str
    body: str
    args: str = "()"
    kwargs: str = "{}"

    def source(self, prelude: str = PRELUDE) -> str:
        """The whole program: the electrons, the lattice and its arguments."""
        return f"{prelude}\n\n{self.body}\n\n\nARGS = {self.args}\nKWARGS = {self.kwargs}\n"

    def to_json(self) -> dict[str, str]:
        """The program as stored in golden files."""
        return {"name": self.name, "body": self.body, "args": self.args, "kwargs": self.kwargs}


def _program(name: str, body: str, args: str = "()", kwargs: str = "{}") -> Program:
    return Program(name, textwrap.dedent(body).strip(), args, kwargs)


# One program per construct, each written as a Covalent user writes it.
CONSTRUCTS = [
    _program(
        "positional_and_keyword_in_signature_order",
        """
        @ct.lattice
        def workflow(n):
            return mixed(n, c=one(n), b=7, z=9, y=two(n))
        """,
        "(3,)",
    ),
    _program(
        "star_args_and_kwargs",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            return many(a, 2, "s", None, k=a, j=[a, 1])
        """,
        "(1,)",
    ),
    _program(
        "keyword_only_and_positional_only",
        """
        @ct.lattice
        def workflow(n):
            return [kwonly(n, c=one(n)), posonly(one(n)), posonly(1, b=one(2))]
        """,
        "(4,)",
    ),
    _program(
        "list_of_outputs_is_a_collection",
        """
        @ct.lattice
        def workflow(n):
            a, b = one(n), one(n + 1)
            return show([a, b, 3])
        """,
        "(1,)",
    ),
    _program(
        "tuple_of_outputs_arrives_as_a_list",
        """
        @ct.lattice
        def workflow(n):
            a, b = one(n), one(n + 1)
            return show((a, b))
        """,
        "(2,)",
    ),
    _program(
        "tuple_of_plain_values_arrives_as_a_list",
        """
        @ct.lattice
        def workflow():
            return show((1, "two", 3.0))
        """,
    ),
    _program(
        "set_of_one_output",
        """
        @ct.lattice
        def workflow(n):
            return show({one(n)})
        """,
        "(5,)",
    ),
    _program(
        "namedtuple_argument",
        """
        @ct.lattice
        def workflow(n):
            return show(Point(one(n), 4))
        """,
        "(5,)",
    ),
    _program(
        "dict_argument_with_keys_and_values_lists",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            return show({"k": a, "j": 6, 7: [a, {"deep": a}]})
        """,
        "(5,)",
    ),
    _program(
        "output_as_dict_key",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            return show({a: "value", "x": a})
        """,
        "(5,)",
    ),
    _program(
        "nested_containers",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            return show([(a, [a, (1, 2)]), {"t": (a,), "s": {3}}, [[[a]]]])
        """,
        "(1,)",
    ),
    _program(
        "sublattice_with_args_and_kwargs",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            return two(ct.electron(sub_one)(a, y=one(3)), 1)
        """,
        "(2,)",
    ),
    _program(
        "nested_sublattices",
        """
        @ct.lattice
        def workflow(n):
            return ct.electron(sub_nested)(n)
        """,
        "(2,)",
    ),
    _program(
        "sublattice_output_indexed_and_unpacked",
        """
        @ct.lattice
        def workflow(n):
            s = ct.electron(sub_pair)(n)
            p, q = ct.electron(sub_pair)(n + 1)
            return [s[0], p, q]
        """,
        "(2,)",
    ),
    _program(
        "lattice_called_inline_joins_the_graph",
        """
        @ct.lattice
        def workflow(n):
            return sub_one(one(n))
        """,
        "(2,)",
    ),
    _program(
        "unpacking_two_and_three",
        """
        @ct.lattice
        def workflow(n):
            a, b = pair(n)
            x, y, z = triple(a)
            return [b, x, z]
        """,
        "(6,)",
    ),
    _program(
        "indexing_and_attribute_chains",
        """
        @ct.lattice
        def workflow(n):
            m = mapping(n)
            o = obj(n)
            return [m["b"][1], m["c"]["d"], o.v, o.w[0], cplx(n).real]
        """,
        "(6,)",
    ),
    _program(
        "arithmetic_and_reflected_operators",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            return [a + 1, 2 + a, a - 3, 10 - a, a * 2, 3 * a, a / 4, 5 / a, a ** 2, a + a]
        """,
        "(6,)",
    ),
    _program(
        "int_float_complex_of_an_output",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            return [two(int(a), float(a)), complex(a)]
        """,
        "(6,)",
    ),
    _program(
        "wait_for_parents",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            b = one(n + 1)
            c = ct.wait(one(7), [a, b])
            return c
        """,
        "(6,)",
    ),
    _program(
        "loop_of_calls",
        """
        @ct.lattice
        def workflow(n):
            acc = one(n)
            for i in range(4):
                acc = two(acc, i)
            return acc
        """,
        "(1,)",
    ),
    _program(
        "returned_tuple_becomes_a_list",
        """
        @ct.lattice
        def workflow(n):
            return (one(n), 2)
        """,
        "(1,)",
    ),
    _program(
        "returned_set_becomes_a_list",
        """
        @ct.lattice
        def workflow(n):
            return {one(n)}
        """,
        "(1,)",
    ),
    _program(
        "returned_dict",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            return {"a": a, "b": [a, one(2)], 3: None}
        """,
        "(1,)",
    ),
    _program(
        "returned_plain_value_and_unused_outputs",
        """
        @ct.lattice
        def workflow(n):
            one(n)
            pair(n)
            return 42
        """,
        "(1,)",
    ),
    _program(
        "returned_single_output",
        """
        @ct.lattice
        def workflow(n):
            return show(one(n))
        """,
        "(1,)",
    ),
    _program(
        "defaults_left_out_and_lattice_kwargs",
        """
        @ct.lattice
        def workflow(n, m=3, *, k=4):
            return [two(n), mixed(m), kwonly(k)]
        """,
        "(1,)",
        "{'k': 9}",
    ),
    _program(
        "splat_of_a_list_and_a_dict",
        """
        @ct.lattice
        def workflow(n):
            a = one(n)
            return mixed(*[a, 2, 3], **{"c": a, "q": 1})
        """,
        "(1,)",
    ),
    _program(
        "parameter_names_are_str_of_the_value",
        """
        @ct.lattice
        def workflow():
            return many("text", 1.5, None, True, b"bytes", 3 + 4j, str)
        """,
    ),
    _program(
        "electron_on_a_method",
        """
        class Counter:
            def __init__(self, start):
                self.start = start

            def __repr__(self):
                return f"Counter({self.start})"

            @ct.electron
            def bump(self, by):
                return self.start + by

        @ct.lattice
        def workflow(n):
            return Counter(n).bump(one(n))
        """,
        "(3,)",
    ),
    _program(
        "deps_bash_and_call_before_prepare_the_task",
        """
        def _setup(x):
            return x * 10

        @ct.electron(
            deps_bash=['printf %s "a;b|c&&d" > "${TMPDIR:-/tmp}/covalent-compat-deps-bash"'],
            call_before=[ct.DepsCall(_setup, [4], retval_keyword="extra")],
        )
        def prepared(n, extra=None):
            import os
            import tempfile

            path = os.path.join(tempfile.gettempdir(), "covalent-compat-deps-bash")
            with open(path) as fh:
                text = fh.read()
            os.unlink(path)
            return [n, extra, text]

        @ct.lattice
        def workflow(n):
            return prepared(n, extra=None)
        """,
        "(3,)",
    ),
    _program(
        "lattice_hooks_apply_to_electrons_without_their_own",
        """
        def _from_lattice():
            return "lattice"

        def _own():
            return "own"

        @ct.electron
        def plain(x, tag=None):
            return [x, tag]

        @ct.electron(call_before=ct.DepsCall(_own, retval_keyword="tag"))
        def own(x, tag=None):
            return [x, tag]

        @ct.lattice(call_before=ct.DepsCall(_from_lattice, retval_keyword="tag"))
        def workflow(n):
            return [plain(n), own(n)]
        """,
        "(3,)",
    ),
    _program(
        "two_calls_with_one_keyword_give_a_list",
        """
        def _first():
            return 1

        def _second():
            return 2

        @ct.electron(
            call_before=[
                ct.DepsCall(_first, retval_keyword="got"),
                ct.DepsCall(_second, retval_keyword="got"),
            ]
        )
        def collect(n, got=None):
            return [n, got]

        @ct.lattice
        def workflow(n):
            return collect(n)
        """,
        "(3,)",
    ),
    _program(
        "call_after_runs_after_the_task",
        """
        def _mark(text):
            import os
            import tempfile

            path = os.path.join(tempfile.gettempdir(), "covalent-compat-call-after")
            with open(path, "w") as fh:
                fh.write(text)

        @ct.electron(call_after=ct.DepsCall(_mark, ["after"]))
        def first(n):
            return n + 1

        @ct.electron
        def second(x):
            import os
            import tempfile

            path = os.path.join(tempfile.gettempdir(), "covalent-compat-call-after")
            with open(path) as fh:
                text = fh.read()
            os.unlink(path)
            return [x, text]

        @ct.lattice
        def workflow(n):
            return second(first(n))
        """,
        "(3,)",
    ),
    _program(
        "a_failing_deps_bash_fails_the_workflow",
        """
        @ct.electron(deps_bash="echo no; exit 3")
        def guarded(n):
            return n

        @ct.lattice
        def workflow(n):
            return guarded(n)
        """,
        "(3,)",
    ),
    _program(
        "bash_lepton_with_arguments_and_named_outputs",
        """
        tag = ct.Lepton(
            "bash",
            command="first=$1; both=$1-{suffix}",
            argtypes=[(str, ct.Lepton.INPUT_OUTPUT), (str, ct.Lepton.OUTPUT)],
            named_outputs=["first", "both"],
        )

        @ct.lattice
        def workflow(n):
            return tag(str(n), suffix="x")
        """,
        "(3,)",
    ),
    _program(
        "python_lepton_calls_a_module_function",
        """
        join = ct.Lepton("python", library_name="posixpath", function_name="join")

        @ct.lattice
        def workflow(n):
            return join("a", str(n))
        """,
        "(3,)",
    ),
    _program(
        "sublattice_without_hooks_takes_its_parents",
        """
        @ct.electron
        def inner(x):
            import os
            import tempfile

            path = os.path.join(tempfile.gettempdir(), "covalent-compat-sub-hooks")
            with open(path) as fh:
                text = fh.read()
            os.unlink(path)
            return [x, text]

        @ct.lattice
        def sub(x):
            return inner(x)

        @ct.lattice(deps_bash='printf parent > "${TMPDIR:-/tmp}/covalent-compat-sub-hooks"')
        def workflow(n):
            return ct.electron(sub)(n)
        """,
        "(3,)",
    ),
    _program(
        "too_many_positional_arguments_is_refused",
        """
        @ct.lattice
        def workflow(n):
            return one(n, 2)
        """,
        "(3,)",
    ),
    _program(
        "unexpected_keyword_is_refused",
        """
        @ct.lattice
        def workflow(n):
            return kwonly(n, d=2)
        """,
        "(3,)",
    ),
]


class RandomProgram:
    """Draws one random lattice program from a seeded generator."""

    KINDS = {
        "one": "num",
        "two": "num",
        "many": "num",
        "kwonly": "num",
        "mixed": "num",
        "posonly": "num",
        "pair": "pair",
        "triple": "triple",
        "mapping": "map",
        "obj": "obj",
        "cplx": "cplx",
        "show": "text",
    }

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.vars: list[tuple[str, str]] = []
        self.lines: list[str] = []
        self.counter = 0

    def _new(self, kind: str) -> str:
        self.counter += 1
        name = f"v{self.counter}"
        self.vars.append((name, kind))
        return name

    def _var(self, kinds: tuple[str, ...] | None = None) -> str | None:
        pool = [n for n, k in self.vars if kinds is None or k in kinds]
        return self.rng.choice(pool) if pool else None

    def _const(self) -> str:
        return self.rng.choice(
            ["1", "2", "0", "-3", "7", "'s'", "'word'", "None", "True", "2.5", "n", "m"]
        )

    def expr(self, depth: int = 0) -> str:
        """An argument: an output, a constant, or a container of those."""
        r = self.rng.random()
        var = self._var()
        if r < 0.45 and var is not None:
            return var
        if r < 0.7 or depth >= 3:
            return self._const()
        shape = self.rng.choice(["list", "tuple", "dict", "set", "point", "single"])
        items = [self.expr(depth + 1) for _ in range(self.rng.randint(1, 3))]
        if shape == "list":
            return "[" + ", ".join(items) + "]"
        if shape == "tuple":
            return "(" + ", ".join(items) + ",)"
        if shape == "point":
            return f"Point({self.expr(depth + 1)}, {self.expr(depth + 1)})"
        if shape == "single":
            return f"[{self.expr(depth + 1)}]"
        if shape == "set":
            if var is not None and self.rng.random() < 0.5:
                return "{" + var + "}"
            ints = self.rng.sample(range(10), self.rng.randint(1, 3))
            return "{" + ", ".join(str(i) for i in ints) + "}"
        keys = self.rng.sample(["'a'", "'b'", "1", "2", "'z'"], len(items))
        if var is not None and self.rng.random() < 0.2:
            keys[0] = var
        return "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, items, strict=True)) + "}"

    def call(self) -> str:
        """An electron call with random arguments, bound to a new variable."""
        rng = self.rng
        name = rng.choice(list(self.KINDS))
        e = self.expr
        if name == "one" or name in ("pair", "triple", "mapping", "obj", "cplx", "show"):
            call = f"{name}({e()})" if rng.random() < 0.8 else f"{name}(x={e()})"
        elif name == "two":
            call = rng.choice(
                [
                    f"two({e()})",
                    f"two({e()}, {e()})",
                    f"two({e()}, y={e()})",
                    f"two(y={e()}, x={e()})",
                ]
            )
        elif name == "many":
            args = [e() for _ in range(rng.randint(0, 3))]
            kws = [f"k{i}={e()}" for i in rng.sample(range(5), rng.randint(0, 3))]
            call = f"many({', '.join(args + kws)})"
        elif name == "kwonly":
            kws = [f"{k}={e()}" for k in rng.sample(["b", "c"], rng.randint(0, 2))]
            call = f"kwonly({', '.join([e(), *kws])})"
        elif name == "mixed":
            args = [e() for _ in range(rng.randint(1, 4))]
            pool = ["c", "z", "y"] + (["b"] if len(args) < 2 else [])
            kws = [f"{k}={e()}" for k in rng.sample(pool, rng.randint(0, 3))]
            call = f"mixed({', '.join(args + kws)})"
        else:
            call = rng.choice(
                [f"posonly({e()})", f"posonly({e()}, {e()})", f"posonly({e()}, b={e()})"]
            )
        return f"{self._new(self.KINDS[name])} = {call}"

    def derived(self) -> str | None:
        """Indexing, attributes, unpacking or arithmetic on an earlier output."""
        rng = self.rng
        choices = []
        if (v := self._var(("pair",))) is not None:
            choices += [f"{{}} = {v}[{rng.choice([0, 1, -1])}]", f"{{}}, {{}} = {v}"]
        if (v := self._var(("triple",))) is not None:
            choices += [f"{{}} = {v}[{rng.choice([0, 2])}]", f"{{}}, {{}}, {{}} = {v}"]
        if (v := self._var(("map",))) is not None:
            choices += [f"{{}} = {v}['a']", f"{{}} = {v}['b'][1]", f"{{}} = {v}['c']['d']"]
        if (v := self._var(("obj",))) is not None:
            choices += [f"{{}} = {v}.v", f"{{}} = {v}.w[0]"]
        if (v := self._var(("cplx",))) is not None:
            choices += [f"{{}} = {v}.real", f"{{}} = {v}.imag"]
        if (v := self._var(("num",))) is not None:
            op = rng.choice(["+", "-", "*", "/"])
            const = rng.choice(["2", "3", "5"])
            choices += [
                f"{{}} = {v} {op} {const}",
                f"{{}} = {const} {rng.choice(['+', '-', '*'])} {v}",
                f"{{}} = {v} ** 2",
                f"{{}} = two(int({v}), float({v}))",
            ]
            if (w := self._var(("num",))) is not None:
                choices.append(f"{{}} = {v} {rng.choice(['+', '-', '*'])} {w}")
        if not choices:
            return None
        template = rng.choice(choices)
        names = [self._new("num") for _ in range(template.count("{}"))]
        return template.format(*names)

    def statement(self) -> list[str]:
        """One or a few lines of the lattice body."""
        r = self.rng.random()
        if r < 0.5:
            return [self.call()]
        if r < 0.72:
            line = self.derived()
            return [line] if line else [self.call()]
        if r < 0.8:
            acc = self._var(("num",)) or "n"
            name = self._new("num")
            return [
                f"{name} = {acc}",
                f"for i in range({self.rng.randint(1, 3)}):",
                f"    {name} = two({name}, i)",
            ]
        if r < 0.88:
            parents = [v for v in (self._var(), self._var()) if v is not None]
            if not parents:
                return [self.call()]
            child = self.call()
            name = child.split(" = ")[0]
            return [child, f"{name} = ct.wait({name}, [{', '.join(dict.fromkeys(parents))}])"]
        sub = self.rng.choice(["sub_one", "sub_nested", "sub_pair"])
        kind = "pair" if sub == "sub_pair" else "num"
        arg = self.expr()
        if sub == "sub_one" and self.rng.random() < 0.5:
            return [f"{self._new(kind)} = ct.electron(sub_one)({arg}, y={self.expr()})"]
        return [f"{self._new(kind)} = ct.electron({sub})({arg})"]

    def returned(self) -> str:
        """The lattice's return value: an output, a constant or a container."""
        rng = self.rng
        r = rng.random()
        last = self.vars[-1][0] if self.vars else "None"
        if r < 0.25:
            return last
        if r < 0.35:
            return self._const()
        items = [self.expr(1) for _ in range(rng.randint(1, 3))] + [last]
        shape = rng.choice(["list", "tuple", "dict", "set"])
        if shape == "list":
            return "[" + ", ".join(items) + "]"
        if shape == "tuple":
            return "(" + ", ".join(items) + ",)"
        if shape == "set":
            return "{" + last + "}"
        keys = [f"'r{i}'" for i in range(len(items))]
        return "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, items, strict=True)) + "}"

    def build(self, name: str) -> Program:
        body = []
        for _ in range(self.rng.randint(1, 8)):
            body.extend(self.statement())
        body.append(f"return {self.returned()}")
        source = "@ct.lattice\ndef workflow(n, m=2):\n" + "\n".join("    " + b for b in body)
        return _program(name, source, f"({self.rng.randint(0, 9)},)")


def random_programs(seed: int, count: int) -> list[Program]:
    """``count`` random programs drawn from ``seed`` (the same seed gives the same programs)."""
    rng = random.Random(seed)
    return [RandomProgram(rng).build(f"random_{seed}_{i}") for i in range(count)]

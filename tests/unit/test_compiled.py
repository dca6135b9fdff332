"""The compiled protocol core: built by `make setup`, never run stale, interpreted on request."""

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import telportal
import telportal.sdp.negotiation
import telportal.sip.message
import telportal.sip.transaction
from telportal import compiled

SRC = Path(telportal.__file__).resolve().parent.parent


def _probe(env: dict[str, str]) -> list[str]:
    """In a fresh interpreter: the core's mode and where two of its modules came from."""
    code = (
        "import telportal, telportal.sip.message as m, telportal.sdp as s;"
        "print(telportal.CORE); print(m.__file__); print(s.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return [*done.stdout.split(), done.stderr]


def test_the_checkout_runs_the_compiled_core() -> None:
    # `make setup` (and so `make test`) compiles it: a missing build is an error here,
    # not a slower run nobody notices.
    assert telportal.CORE == "compiled", "run `make setup` to compile the protocol core"
    for module in (telportal.sip.message, telportal.sip.transaction, telportal.sdp.negotiation):
        assert compiled.is_compiled(module), module.__file__


def test_the_manifest_matches_every_compiled_source() -> None:
    manifest = json.loads((SRC / "telportal" / compiled.MANIFEST).read_text())
    assert sorted(manifest) == sorted(compiled.COMPILED)
    assert compiled.stale_sources(SRC, manifest) == []
    assert len(compiled.compiled_files(SRC)) == len(compiled.COMPILED)


def test_make_rebuilds_when_any_compiled_source_changes() -> None:
    # The Makefile reads its list of what the build depends on out of compiled.py.
    done = subprocess.run(
        ["make", "--no-print-directory", "-pn", "-C", str(SRC.parent), "setup"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    line = next(x for x in done.stdout.splitlines() if x.startswith("CORE_SOURCES :="))
    sources = set(line.split(":=", 1)[1].split())
    expected = {f"src/{path}" for path in compiled.COMPILED}
    assert sources == expected | {"src/telportal/compiled.py", "setup.py"}


def test_interpreted_on_request() -> None:
    mode, message, sdp, stderr = _probe({compiled.INTERPRETED_ENV: "1"})
    assert mode == "interpreted"
    assert message.endswith("telportal/sip/message.py")
    assert sdp.endswith("telportal/sdp/__init__.py")  # packages too
    assert "changed since" not in stderr


def test_a_changed_source_is_named_and_run_interpreted(tmp_path: Path) -> None:
    # A copy of the built tree whose one source no longer matches its build.
    tree = tmp_path / "src"
    (tree / "telportal").mkdir(parents=True)
    for path in SRC.iterdir():
        if path.name != "telportal" and path.suffix == ".so":
            (tree / path.name).symlink_to(path)
    for path in (SRC / "telportal").rglob("*"):
        target = tree / "telportal" / path.relative_to(SRC / "telportal")
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    changed = tree / "telportal" / "sip" / "cseq.py"
    changed.write_text(changed.read_text() + "\n# changed after the build\n")
    mode, message, _, stderr = _probe({"PYTHONPATH": str(tree)})
    assert mode == "stale"
    assert message == str(tree / "telportal" / "sip" / "message.py")
    assert "telportal/sip/cseq.py (and 0 more) changed since the protocol core was compiled" in (
        stderr
    )


def test_stale_sources_compares_digests(tmp_path: Path) -> None:
    for path in compiled.COMPILED:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(f"# {path}\n")
    compiled.write_manifest(tmp_path / "manifest.json", compiled.source_digests(tmp_path))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert compiled.stale_sources(tmp_path, manifest) == []
    (tmp_path / "telportal/sip/uri.py").write_text("# edited\n")
    (tmp_path / "telportal/rtp/g711.py").unlink()
    assert compiled.stale_sources(tmp_path, manifest) == [
        "telportal/sip/uri.py",
        "telportal/rtp/g711.py",
    ]
    assert compiled.stale_sources(tmp_path, {}) == list(compiled.COMPILED)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("telportal/sip/__init__.py", "telportal.sip"),
        ("telportal/sip/uri.py", "telportal.sip.uri"),
        ("telportal/text_cache.py", "telportal.text_cache"),
    ],
)
def test_module_names(path: str, name: str) -> None:
    assert compiled.module_name(path) == name


def _in_compiled_sources(check: Callable[[ast.Module], list[tuple[int, str]]]) -> list[str]:
    """What `check` finds in every compiled module, as `path:line in function`."""
    return [
        f"{path}:{line} in {name}"
        for path in compiled.COMPILED
        for line, name in check(ast.parse((SRC / path).read_text()))
    ]


def _awaits_in_finally(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Try | ast.TryStar):
                for statement in node.finalbody:
                    for inner in ast.walk(statement):
                        if isinstance(inner, ast.Await | ast.AsyncFor | ast.AsyncWith):
                            found.append((inner.lineno, function.name))
    return found


def test_no_compiled_coroutine_awaits_in_a_finally_block() -> None:
    """A `finally` block that awaits, in a compiled coroutine its task runs first,
    leaves the exception it was reached by in the thread's exception state: mypyc
    keeps no exception state per coroutine, as CPython's generators do, and does not
    restore the one it replaced when it raises the exception again after the await.
    `sys.exc_info()` then returns that exception everywhere, and its traceback keeps
    every frame it passed through, with their locals (a cancelled call's legs, its
    service, its transactions), until another exception takes its place (decision
    0028). `except` blocks that await, and `async with`, restore it: only `finally`
    is refused here. Await after the `try` statement instead."""
    assert _in_compiled_sources(_awaits_in_finally) == []


def test_the_finally_check_finds_an_await_in_a_finally_block() -> None:
    tree = ast.parse(
        "async def f():\n"
        "    try:\n"
        "        pass\n"
        "    finally:\n"
        "        if True:\n"
        "            await g()\n"
        "async def h():\n"
        "    try:\n"
        "        await g()\n"
        "    except Exception:\n"
        "        await g()\n"
    )
    assert _awaits_in_finally(tree) == [(6, "f")]


def _constructions_through_cls(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, method) of each `cls(...)` call in a classmethod of `tree`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for method in node.body:
            if not isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            is_classmethod = any(
                isinstance(d, ast.Name) and d.id == "classmethod" for d in method.decorator_list
            )
            if not is_classmethod or not method.args.args:
                continue
            cls_name = method.args.args[0].arg
            for inner in ast.walk(method):
                if (
                    isinstance(inner, ast.Call)
                    and isinstance(inner.func, ast.Name)
                    and inner.func.id == cls_name
                ):
                    found.append((inner.lineno, f"{node.name}.{method.name}"))
    return found


def test_compiled_classmethods_construct_their_class_by_name() -> None:
    """In compiled code `cls(...)` is a generic Python call (the type's tp_call,
    keyword arguments parsed at run time): `Dialog.from_uas` spent 14 k of its 23 k
    instructions there. Calling the class by name is a native constructor call. The
    class is then marked `@final`, so that no subclass could have expected its own
    type back (decision 0029)."""
    assert _in_compiled_sources(_constructions_through_cls) == []


def test_the_cls_check_finds_a_construction_through_cls() -> None:
    tree = ast.parse(
        "class A:\n"
        "    @classmethod\n"
        "    def make(klass, x):\n"
        "        return klass(x)\n"
        "    @classmethod\n"
        "    def named(cls, x):\n"
        "        return A(x)\n"
        "    def plain(self, cls):\n"
        "        return cls()\n"
    )
    assert _constructions_through_cls(tree) == [(4, "A.make")]

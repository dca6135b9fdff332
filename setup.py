"""The build's one step beyond pyproject.toml: the protocol cores compiled with mypyc.

`pip install .` and wheels compile the modules `telportal.compiled.COMPILED` names
(decision 0020); `make setup` compiles them in place for the checkout. With
TELPORTAL_INTERPRETED set, nothing is compiled (the editable install does so, and
`make setup` compiles after it, when a source changes).
"""

import os
import runpy
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

SRC = Path(__file__).resolve().parent / "src"
# Read without importing the package, which needs its dependencies.
compiled = runpy.run_path(str(SRC / "telportal" / "compiled.py"))


# Taken before mypyc reads the sources (in `extensions()`): a source edited while the
# build runs must show as changed since, not be recorded as the one compiled.
DIGESTS = compiled["source_digests"](SRC)


class BuildExt(build_ext):
    """Builds the extensions, then records which sources they were built from."""

    def run(self) -> None:
        super().run()
        package = SRC / "telportal" if self.inplace else Path(self.build_lib) / "telportal"
        package.mkdir(parents=True, exist_ok=True)
        compiled["write_manifest"](package / compiled["MANIFEST"], DIGESTS)


def extensions() -> list:  # type: ignore[type-arg]
    if os.environ.get(compiled["INTERPRETED_ENV"]):
        return []
    from mypyc.build import mypycify  # noqa: PLC0415 - a build requirement only

    # Not the project's mypy configuration: its pydantic plugin, and the third-party
    # packages the compiled modules import (argon2 through sip/digest), are absent from
    # the isolated environment a wheel is built in. They are typed as Any here; the
    # strict check of the same code is `make check`'s. Modules the compiled ones import
    # are read for their types but not checked (`silent`): without the plugin, mypy
    # misreads the pydantic models those define (decision 0027), and a fresh build
    # would fail where one reusing `make check`'s cache passed.
    options = [
        "--config-file=",
        "--python-version=3.11",
        "--ignore-missing-imports",
        "--follow-imports=silent",
    ]
    paths = [str(Path("src") / path) for path in compiled["COMPILED"]]
    return mypycify([*options, *paths], opt_level="3", group_name="telportal_core")


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})

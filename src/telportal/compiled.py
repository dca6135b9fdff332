"""The modules built with mypyc, and the guard that never runs a stale build of them.

The sans-IO protocol cores (SIP messages, transactions and dialogs, SDP, RTP), the
media switch and its sessions, and three small helpers they call on every message are
compiled to C extensions by `setup.py` (decision 0020): a call costs about a quarter
fewer instructions. So are the call records' rules (`calls_rows`) and the making of
a row's parameters (`store/row_values`), decision 0022.
The sources stay the truth. A build writes `compiled_sources.json` beside this
module: the SHA-256 of each source it compiled. At import (`telportal/__init__`), if
any compiled module's source no longer matches, or `TELPORTAL_INTERPRETED` is set,
every compiled module is loaded from its `.py` instead (they call each other natively,
so it is all or none) and, for a stale build, a warning names the first changed file.

This module imports the standard library only: `setup.py` reads `COMPILED` from it
before the package can be imported.
"""

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# Source files under src/, as setup.py hands them to mypyc (and the Makefile reads, to
# know when to build again). Left out: modules with generic dataclasses
# (mypyc/mypyc#827: they fail at import when compiled), media/tts.py (it subclasses
# builtin types, which mypyc cannot), and everything that owns sockets, tasks or the
# database (media's engine and realtime among them), where tests patch module
# globals or an instance's methods. The SIP service and its call legs are compiled,
# though they own tasks: no test patches them; so are the transport layer (`net/layer`,
# `net/udp`), the media port pairs (`media/ports`) and the SIP directory, which every
# call passes through (decision 0033). In every compiled module, no coroutine awaits in a `finally`
# block (decision 0028; tests/unit/test_compiled.py checks).
COMPILED: tuple[str, ...] = (
    "telportal/calls_batch.py",
    "telportal/calls_rows.py",
    "telportal/ivr/interpreter.py",
    "telportal/ivr/record.py",
    "telportal/net/inbound.py",
    "telportal/net/inbox.py",
    "telportal/net/layer.py",
    "telportal/net/routing.py",
    "telportal/net/udp.py",
    "telportal/signaling/calls.py",
    "telportal/signaling/directory.py",
    "telportal/signaling/service.py",
    "telportal/mailbox.py",
    "telportal/random_pool.py",
    "telportal/text_cache.py",
    "telportal/timer_heap.py",
    "telportal/store/ids.py",
    "telportal/store/row_values.py",
    "telportal/sip/__init__.py",
    "telportal/sip/address.py",
    "telportal/sip/cseq.py",
    "telportal/sip/dialog.py",
    "telportal/sip/digest.py",
    "telportal/sip/errors.py",
    "telportal/sip/grammar.py",
    "telportal/sip/headers.py",
    "telportal/sip/message.py",
    "telportal/sip/methods.py",
    "telportal/sip/params.py",
    "telportal/sip/scalars.py",
    "telportal/sip/session_timer.py",
    "telportal/sip/status.py",
    "telportal/sip/transaction.py",
    "telportal/sip/transaction_actions.py",
    "telportal/sip/transaction_messages.py",
    "telportal/sip/transaction_rest.py",
    "telportal/sip/transaction_retransmit.py",
    "telportal/sip/transaction_table.py",
    "telportal/sip/uri.py",
    "telportal/sip/validate.py",
    "telportal/sip/via.py",
    "telportal/sdp/__init__.py",
    "telportal/sdp/description.py",
    "telportal/sdp/negotiation.py",
    "telportal/media/__init__.py",
    "telportal/media/audio.py",
    "telportal/media/clips.py",
    "telportal/media/config.py",
    "telportal/media/digit_sender.py",
    "telportal/media/digits.py",
    "telportal/media/errors.py",
    "telportal/media/events.py",
    "telportal/media/latch.py",
    "telportal/media/mixer.py",
    "telportal/media/player.py",
    "telportal/media/playlist.py",
    "telportal/media/ports.py",
    "telportal/media/recorder.py",
    "telportal/media/scheduler.py",
    "telportal/media/sender.py",
    "telportal/media/session.py",
    "telportal/media/switch.py",
    "telportal/media/wav.py",
    "telportal/rtp/__init__.py",
    "telportal/rtp/dtmf.py",
    "telportal/rtp/g711.py",
    "telportal/rtp/packet.py",
    "telportal/rtp/rtcp.py",
    "telportal/rtp/stats.py",
    "telportal/rtp/tones.py",
)
MANIFEST = "compiled_sources.json"
INTERPRETED_ENV = "TELPORTAL_INTERPRETED"


def module_name(path: str) -> str:
    """`telportal/sip/__init__.py` -> `telportal.sip`, `telportal/sip/uri.py` -> its module."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_digests(root: Path) -> dict[str, str]:
    """The digest of each compiled source under root (the build's `src/`)."""
    return {path: source_digest(root / path) for path in COMPILED}


def write_manifest(target: Path, digests: dict[str, str]) -> None:
    """Record the sources a build compiled, as `source_digests` read them before it."""
    target.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


def stale_sources(root: Path, manifest: dict[str, str]) -> list[str]:
    """The compiled sources under root whose text differs from what was compiled."""
    stale = []
    for path in COMPILED:
        source, recorded = root / path, manifest.get(path)
        if recorded is None or not source.exists() or source_digest(source) != recorded:
            stale.append(path)
    return stale


def compiled_files(root: Path) -> list[Path]:
    """The extension files of compiled modules present under root."""
    found = []
    for path in COMPILED:
        stem = root / path.removesuffix(".py")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if (built := stem.with_name(stem.name + suffix)).exists():
                found.append(built)
    return found


class SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' `.py` files, passing over their extensions."""

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in self.names:
            return None
        leaf = fullname.rpartition(".")[2]
        for folder in path if path is not None else sys.path:
            package = Path(folder) / leaf / "__init__.py"
            if package.exists():
                return importlib.util.spec_from_file_location(
                    fullname, package, submodule_search_locations=[str(package.parent)]
                )
            module = Path(folder) / f"{leaf}.py"
            if module.exists():
                return importlib.util.spec_from_file_location(fullname, module)
        return None


def choose(package_dir: Path) -> str:
    """Decide, before any compiled module is imported, how they load: "compiled",
    "interpreted" (no build, or asked for) or "stale" (a source changed since the build)."""
    root = package_dir.parent
    if not compiled_files(root):
        return "interpreted"
    mode = "compiled"
    if os.environ.get(INTERPRETED_ENV):
        mode = "interpreted"
    else:
        try:
            manifest = json.loads((package_dir / MANIFEST).read_text())
        except (OSError, ValueError):
            manifest = {}
        stale = stale_sources(root, manifest)
        if stale:
            mode = "stale"
            warnings.warn(
                f"{stale[0]} (and {len(stale) - 1} more) changed since the protocol core "
                "was compiled: running it interpreted, slower. `make setup` compiles again.",
                RuntimeWarning,
                stacklevel=2,
            )
    if mode != "compiled":
        sys.meta_path.insert(0, SourceFirst({module_name(path) for path in COMPILED}))
    return mode


def is_compiled(module: ModuleType) -> bool:
    """Whether module was loaded from a C extension."""
    origin = getattr(module, "__file__", None) or ""
    return origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))

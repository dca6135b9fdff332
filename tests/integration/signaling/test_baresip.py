"""baresip, a real softphone, registers as agent 1002 and auto-answers a SIPp call."""

import asyncio
import math
import shutil
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.signaling.conftest import PASSWORD, Edge, free_port
from tests.integration.signaling.test_sipp_call import CALLER
from tests.integration.signaling.test_sipp_register import sipp


def baresip() -> str:
    path = shutil.which("baresip")
    if path is None:
        pytest.fail("baresip is not installed: `make setup` installs Debian's baresip-core")
    return path


def baresip_config(
    folder: Path, server_port: int, *, user: str = "1002", console: int | None = None
) -> None:
    """A config for one account, `user`, auto-answering; with `console`, baresip takes
    commands ("/dial ...", "/hold") as UDP datagrams on that port (its `cons` module)."""
    # ausine plays only at 48 kHz; a G.711 call needs an 8 kHz source.
    with wave.open(str(folder / "tone.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 8000)))
                for i in range(8000 * 3)
            )
        )
    names = ["g711", "ausine", "aufile", "account", "menu"] + (["cons"] if console else [])
    modules = "\n".join(f"module\t\t{m}.so" for m in names)
    if console:
        modules += f"\ncons_listen\t\t127.0.0.1:{console}"
    (folder / "config").write_text(
        "sip_listen\t\t127.0.0.1:0\n"  # baresip picks free ports itself: no race for one
        "module_path\t\t/usr/lib/baresip/modules\n"
        f"{modules}\n"
        f"audio_player\t\taufile,{folder / 'heard.wav'}\n"
        f"audio_source\t\taufile,{folder / 'tone.wav'}\n"
        "audio_alert\t\taufile,/dev/null\n"
    )
    (folder / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{server_port};transport=udp>"
        f";auth_pass={PASSWORD};answermode=auto;regint=300\n"
    )


# baresip 1.0 (libre) gives up when any challenge names an algorithm it lacks.
@pytest.mark.parametrize("edge", [{"digest_algorithms": ("MD5",)}], indirect=True)
async def test_baresip_agent_answers_a_call(edge: Edge, tmp_path: Path) -> None:
    sip = edge.platform.sip
    assert sip is not None
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    phone_dir = tmp_path / "baresip"
    phone_dir.mkdir()
    baresip_config(phone_dir, edge.port)
    phone = await asyncio.create_subprocess_exec(
        baresip(),
        "-f",
        str(phone_dir),
        "-n",
        "127.0.0.1",
        "-t",
        "40",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(20):
            while not sip.location.lookup(f"{acme.tenant_id}/1002"):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        binding = sip.location.lookup(f"{acme.tenant_id}/1002")[0]
        assert (binding.user_agent or "").startswith("baresip")

        scenario = tmp_path / "caller.xml"
        scenario.write_text(CALLER.replace("PASSWORD", PASSWORD))
        caller = await asyncio.create_subprocess_exec(
            sipp(),
            f"127.0.0.1:{edge.port}",
            "-sf",
            str(scenario),
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-timeout",
            "30s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(tmp_path / "errors.log"),
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(caller.communicate(), 60)
        errors = tmp_path / "errors.log"
        assert caller.returncode == 0, (
            f"caller failed: {err.decode()}\n{errors.read_text() if errors.exists() else ''}"
        )
    finally:
        log = await output_of(phone)
    assert "Call established: sip:1001@" in log, log[-2000:]
    # libre reports the BYE the B2BUA passed on from the caller as a reset session.
    assert "session closed" in log, log[-2000:]


async def output_of(phone: asyncio.subprocess.Process) -> str:
    """baresip's output, once it has stopped (terminated if it still runs)."""
    if phone.returncode is None:
        phone.terminate()
    out, _ = await phone.communicate()
    return out.decode(errors="replace")


async def command(console: int, line: str) -> None:
    """One command to baresip's console (`cons`): a datagram, as its docs have it."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, remote_addr=("127.0.0.1", console)
    )
    transport.sendto(f"{line}\n".encode())
    transport.close()


async def until(check: Callable[[], bool], what: str, seconds: float = 10) -> None:
    try:
        async with asyncio.timeout(seconds):
            while not check():  # noqa: ASYNC110 - the state changes in the server's tasks
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {seconds} s: {what}")


@pytest.mark.parametrize("edge", [{"digest_algorithms": ("MD5",)}], indirect=True)
async def test_baresip_holds_and_resumes_a_call_in_the_ivr(edge: Edge, tmp_path: Path) -> None:
    """baresip (1001) calls the demo number, puts the IVR on hold, and resumes: our media
    stops sending while held (the engine answered its re-INVITE, decision 0035) and
    sends again after."""
    sip = edge.platform.sip
    assert sip is not None and sip.media is not None
    engine = sip.media
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    phone_dir = tmp_path / "baresip"
    phone_dir.mkdir()
    console = free_port()
    baresip_config(phone_dir, edge.port, user="1001", console=console)
    phone = await asyncio.create_subprocess_exec(
        baresip(), "-f", str(phone_dir), "-n", "127.0.0.1", "-t", "40",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await until(lambda: bool(sip.location.lookup(f"{acme.tenant_id}/1001")), "registered")
        await command(console, "/dial 4008001000")
        await until(lambda: bool(engine.subscribed_endpoints), "the IVR answers")
        (endpoint,) = engine.subscribed_endpoints
        assert endpoint is not None
        session = engine.switch.session(endpoint)
        await until(lambda: session.sends and session.audio is not None, "media both ways")
        await command(console, "/hold")
        await until(lambda: not session.sends, "our media stops for the hold")
        await command(console, "/resume")
        await until(lambda: session.sends, "our media goes again after the resume")
        await command(console, "/hangup")
        await until(lambda: not engine.subscribed_endpoints, "the call ends")
    finally:
        log = await output_of(phone)
    assert "Call established: sip:4008001000@" in log, log[-2000:]

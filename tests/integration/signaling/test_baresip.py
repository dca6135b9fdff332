"""baresip, a real softphone, registers as agent 1002 and auto-answers a SIPp call."""

import asyncio
import math
import shutil
import struct
import wave
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


def baresip_config(folder: Path, server_port: int) -> None:
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
    modules = "\n".join(
        f"module\t\t{m}.so" for m in ("g711", "ausine", "aufile", "account", "menu")
    )
    (folder / "config").write_text(
        "sip_listen\t\t127.0.0.1:0\n"  # baresip picks free ports itself: no race for one
        "module_path\t\t/usr/lib/baresip/modules\n"
        f"{modules}\n"
        f"audio_player\t\taufile,{folder / 'heard.wav'}\n"
        f"audio_source\t\taufile,{folder / 'tone.wav'}\n"
        "audio_alert\t\taufile,/dev/null\n"
    )
    (folder / "accounts").write_text(
        f"<sip:1002@127.0.0.1:{server_port};transport=udp>"
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
        if phone.returncode is None:
            phone.terminate()
        out, _ = await phone.communicate()
    log = out.decode(errors="replace")
    assert "Call established: sip:1001@" in log, log[-2000:]
    # libre reports the BYE the B2BUA passed on from the caller as a reset session.
    assert "session closed" in log, log[-2000:]

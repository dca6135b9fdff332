"""SIPp, a real SIP peer we did not write, pings a tiny responder built on the layer."""

import asyncio
import contextlib
from pathlib import Path

import pytest

from telportal.net import SipTransportLayer, Transport, TransportClosed
from telportal.sip import Request
from tests.integration.net.conftest import HOST, LayerFactory, ok, within
from tests.ports import free_media_port, free_port

SIPP = Path("/usr/bin/sipp")

# [len] is filled in by SIPp; retrans applies to UDP only.
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="OPTIONS ping">
  <send retrans="500">
    <![CDATA[

      OPTIONS sip:service@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:service@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Max-Forwards: 70
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Content-Length: [len]

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""

pytestmark = pytest.mark.skipif(
    not SIPP.exists(), reason=f"SIPp is not installed at {SIPP} (Debian package sip-tester)"
)


async def answer_options(layer: SipTransportLayer) -> None:
    """Answer every request 200 until the layer closes."""
    with contextlib.suppress(TransportClosed):
        while True:
            incoming = await layer.receive()
            if isinstance(incoming.message, Request):
                await layer.respond(ok(incoming), incoming.source)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("transport", "mode"),
    [(Transport.UDP, "u1"), (Transport.TCP, "t1")],
)
async def test_sipp_pings_a_responder_built_on_the_layer(
    make_layer: LayerFactory,
    tmp_path: Path,
    transport: Transport,
    mode: str,
) -> None:
    layer = make_layer()
    listener = await layer.listen(transport, HOST)
    scenario = tmp_path / "options.xml"
    scenario.write_text(SCENARIO)
    responder = asyncio.ensure_future(answer_options(layer))
    try:
        sipp = await asyncio.create_subprocess_exec(
            str(SIPP),
            f"{HOST}:{listener.port}",
            "-sf", str(scenario),
            "-t", mode,
            "-i", HOST,
            "-p", str(free_port()),
            "-mp", str(free_media_port()),
            "-m", "5",
            "-timeout", "20s",
            "-nostdin",
            "-trace_err",
            "-error_file", str(tmp_path / "errors.log"),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await within(sipp.communicate(), 60)
    finally:
        await layer.close()
        await within(responder)
    errors = tmp_path / "errors.log"
    details = errors.read_text() if errors.exists() else output.decode(errors="replace")[-2000:]
    assert sipp.returncode == 0, details
    assert layer.stats()[transport.value]["messages_in"] == 5
    assert layer.stats()[transport.value]["messages_out"] == 5

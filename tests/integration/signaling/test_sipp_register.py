"""SIPp, a SIP peer we did not write, registers with digest authentication."""

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.integration.signaling.conftest import PASSWORD, Edge, free_port

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register with digest">
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:1001@[remote_ip]>;tag=[call_number]
To: <sip:1001@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:1001@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Expires: 300
User-Agent: SIPp
Content-Length: 0

]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:1001@[remote_ip]>;tag=[call_number]
To: <sip:1001@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 REGISTER
Contact: <sip:1001@[local_ip]:[local_port];transport=[transport]>
[authentication username=1001 password=PASSWORD]
Max-Forwards: 70
Expires: 300
User-Agent: SIPp
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


def sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        pytest.fail("sipp is not installed: `make setup` installs Debian's sip-tester")
    return path


# SIPp answers only the first challenge and only MD5: the default order puts MD5 first.
@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_registers_with_md5_digest(edge: Edge, tmp_path: Path, transport: str) -> None:
    scenario = tmp_path / "register.xml"
    scenario.write_text(SCENARIO.replace("PASSWORD", PASSWORD))
    proc = await asyncio.create_subprocess_exec(
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
        "-t",
        transport,
        "-timeout",
        "20s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(tmp_path / "errors.log"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    errors = (tmp_path / "errors.log").read_text() if (tmp_path / "errors.log").exists() else ""
    assert proc.returncode == 0, f"sipp failed: {err.decode()}\n{errors}"
    sip = edge.platform.sip
    assert sip is not None
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    bindings = sip.location.lookup(f"{acme.tenant_id}/1001")
    assert [b.user_agent for b in bindings] == ["SIPp"]

"""Every one of SIPp's RFC 4733 digit pcaps, played into one call, is decoded to its digit."""

import asyncio
from pathlib import Path

from telportal.ivr.checker import load_flow
from telportal.ivr.flow import Flow
from tests.integration.signaling.conftest import Edge, free_port
from tests.integration.signaling.test_ivr_call import CALLER, PCAP, add_carrier_trunk
from tests.integration.signaling.test_sipp_register import sipp
from tests.ports import free_media_port

KEYS = "0123456789*#"
PCAPS = [PCAP.with_name(f"dtmf_2833_{ {'*': 'star', '#': 'pound'}.get(k, k) }.pcap") for k in KEYS]

FLOW = """
flow: keys
tenant: acme
steps:
  keys:
    type: gather
    prompt: Press every key.
    into: pressed
    min_digits: 10
    max_digits: 10
    terminator: null
    timeout: 10s
    digit_timeout: 5s
    next: star
  star:
    type: menu
    prompt: Press star.
    options:
      "*": pound
    timeout: 5s
    on_timeout: done
    on_invalid: done
  pound:
    type: menu
    prompt: Press pound.
    options:
      "#": done
    timeout: 5s
    on_timeout: done
    on_invalid: done
  done:
    type: hangup
"""


async def test_every_digit_pcap_is_decoded_to_its_key(edge: Edge, tmp_path: Path) -> None:
    for pcap in PCAPS:
        assert pcap.is_file(), f"{pcap} is missing: make setup installs sip-tester"
    sip = edge.platform.sip
    assert sip is not None
    await add_carrier_trunk(edge)
    flow = load_flow(FLOW)

    async def flows(_tenant: str, _service: str | None) -> Flow:
        return flow

    sip.flows = flows
    # Each press 400 ms after the last; the server may hang up as soon as '#' arrives.
    plays = '  <pause milliseconds="400"/>\n'.join(
        f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n' for pcap in PCAPS
    )
    head, tail = CALLER.split('  <nop><action><exec play_pcap_audio="PCAP"/></action></nop>\n')
    scenario = tmp_path / "caller.xml"
    scenario.write_text(head + plays + tail)
    caller = await asyncio.create_subprocess_exec(
        sipp(), f"127.0.0.1:{edge.port}", "-sf", str(scenario), "-m", "1",
        "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_media_port()),
        "-timeout", "60s", "-timeout_error", "-nostdin", "-trace_err",
        "-error_file", str(tmp_path / "errors.log"),
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(caller.communicate(), 90)
    errors = tmp_path / "errors.log"
    assert caller.returncode == 0, (
        f"caller failed: {err.decode()}\n{errors.read_text() if errors.exists() else ''}"
    )
    async with asyncio.timeout(10):
        while not sip.call_records:  # noqa: ASYNC110 - the call task finishes on its own
            await asyncio.sleep(0.05)
    record = sip.call_records[-1]
    assert record.variables.get("pressed") == KEYS[:10], (record.path, record.variables)
    assert record.digits == (KEYS[:10], "*", "#")
    assert [v.step for v in record.path] == ["keys", "star", "pound", "done"]

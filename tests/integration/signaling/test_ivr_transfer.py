"""A flow's transfer and callback steps on live calls with SIPp peers.

Press 1: transfer to agent 1002's phone, connected and recorded. Press 2: transfer to
an outside number through the tenant's trunk (the carrier answers and hangs up).
Press 3 then 1: a callback request that enters the sales queue keeping its place.
"""

from pathlib import Path

from telportal.ivr.checker import load_flow
from telportal.ivr.flow import Flow
from telportal.ivr.publishing import PublishedFlow
from tests.integration.signaling.conftest import Edge, ended_call_record, free_port
from tests.integration.signaling.sipp_scenarios import hung_up_by_server
from tests.integration.signaling.test_acd_calls import (
    CARRIER_ANSWERS,
    CUSTOMER,
    add_trunk,
    finished,
    start_sipp,
)
from tests.integration.signaling.test_ivr_call import CALLER, PCAP
from tests.integration.signaling.test_sipp_call import _register_callee
from tests.ports import free_media_port

BRANCH = "01088886666"
FLOW = f"""
flow: switchboard
tenant: acme
steps:
  menu:
    type: menu
    prompt: For the operator press 1, for the branch press 2, to be called back press 3.
    options:
      "1": operator
      "2": branch
      "3": offer
    timeout: 10s
    on_timeout: bye
    on_invalid: bye
  operator:
    type: transfer
    agent: "1002"
  branch:
    type: transfer
    number: "{BRANCH}"
  offer:
    type: callback
    prompt: To be called back, press 1.
    queue: sales
    accepted: thanks
    declined: bye
  thanks:
    type: play
    prompt: Thank you. We will call you back.
    next: bye
  bye:
    type: hangup
"""


def caller(keys: list[str], *, hold_ms: int | None) -> str:
    """Press `keys` (2.5 s, then 2 s apart); hang up after `hold_ms`, or wait for our BYE."""
    head = CALLER.split('  <nop><action><exec play_pcap_audio="PCAP"/>')[0]
    for i, key in enumerate(keys):
        if i:
            head += '  <pause milliseconds="2000"/>\n'
        pcap = str(PCAP).replace("dtmf_2833_9", f"dtmf_2833_{key}")
        head += f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
    if hold_ms is None:
        return (
            head
            + hung_up_by_server(40000)
            + """</scenario>
"""
        )
    return (
        head
        + f"""  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[
BYE sip:4008001000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{CUSTOMER}@[local_ip]>;tag=[call_number]
To: <sip:4008001000@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""
    )


async def _setup(edge: Edge, carrier_port: int) -> None:
    sip = edge.platform.sip
    assert sip is not None
    await add_trunk(edge, carrier_port)
    flow = load_flow(FLOW)

    async def flows(_tenant: str, _service: str | None) -> Flow:
        return flow

    sip.flows = flows


async def _call(edge: Edge, tmp_path: Path, scenario: str) -> None:
    (tmp_path / "caller.xml").write_text(scenario)
    proc = await start_sipp(
        tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
        "-p", str(free_port()), "-mp", str(free_media_port()),
    )  # fmt: skip
    await finished(proc, tmp_path, "caller")


async def test_transfer_to_an_agent(edge: Edge, tmp_path: Path) -> None:
    await _setup(edge, free_port())
    port = free_port()
    phone = await start_sipp(tmp_path, "p1002", "-sn", "uas", "-p", str(port), "-m", "1")
    try:
        await _register_callee(edge, port, extension="1002")
        await _call(edge, tmp_path, caller(["1"], hold_ms=6000))
        await finished(phone, tmp_path, "p1002")  # answered, then our BYE
    finally:
        if phone.returncode is None:
            phone.kill()
            await phone.wait()
    row = await ended_call_record(edge)
    assert row.transfers == [{"kind": "ivr", "to": "agent 1002"}]
    assert row.agent_extension == "1002" and row.connected_at is not None
    assert row.hangup_by == "caller" and row.recording is not None
    assert (edge.platform.config.data_dir / row.recording).is_file()


async def test_transfer_to_a_number_through_the_trunk(edge: Edge, tmp_path: Path) -> None:
    carrier_port = free_port()
    await _setup(edge, carrier_port)
    (tmp_path / "carrier.xml").write_text(CARRIER_ANSWERS.replace(CUSTOMER, BRANCH))
    carrier = await start_sipp(
        tmp_path, "carrier", "-sf", "carrier.xml", "-p", str(carrier_port), "-m", "1"
    )
    try:
        # The branch answers, talks 2 s and hangs up; the caller then gets our BYE.
        await _call(edge, tmp_path, caller(["2"], hold_ms=None))
        await finished(carrier, tmp_path, "carrier")
    finally:
        if carrier.returncode is None:
            carrier.kill()
            await carrier.wait()
    row = await ended_call_record(edge)
    assert row.transfers == [{"kind": "ivr", "to": f"number {BRANCH}"}]
    assert [(leg["kind"], leg["target"]) for leg in row.legs] == [("trunk", BRANCH)]
    assert row.hangup_by == "callee"
    sip = edge.platform.sip
    assert sip is not None and sip.trunk_channels == {}


async def test_callback_step_enters_the_queue(edge: Edge, tmp_path: Path) -> None:
    await _setup(edge, free_port())
    await _call(edge, tmp_path, caller(["3", "1"], hold_ms=None))
    row = await ended_call_record(edge)
    assert [v["step"] for v in row.ivr_path] == ["menu", "offer", "thanks", "bye"]
    acd, sip = edge.platform.acd, edge.platform.sip
    assert acd is not None and sip is not None
    acme = sip.directory.tenant_for_domain("acme")
    sales = acd.queue(acme.tenant_id, "sales") if acme else None
    assert acme is not None and sales is not None
    snapshot = acd.queue_snapshot(acme.tenant_id, sales.queue_id)
    assert (snapshot.callbacks, snapshot.waiting) == (1, 1)


async def test_transfer_to_another_service_runs_its_flow(edge: Edge, tmp_path: Path) -> None:
    """Press 4: the demo tenant's 'hotline' service flow takes over the same call."""
    sip = edge.platform.sip
    assert sip is not None
    await add_trunk(edge, free_port())
    published = sip.flows
    assert published is not None
    switchboard = load_flow(
        FLOW.replace('"3": offer', '"3": offer\n      "4": hotline').replace(
            "  thanks:", "  hotline:\n    type: transfer\n    service: hotline\n  thanks:"
        )
    )
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    first = True

    async def flows(tenant: str, service: str | None) -> Flow | PublishedFlow | None:
        nonlocal first
        if first:  # the number's own flow: the switchboard
            first = False
            return switchboard
        return await published(tenant, service)  # the hotline's published demo flow

    sip.flows = flows
    nine = str(PCAP)
    scenario = caller(["4"], hold_ms=None).replace(
        '  <recv request="BYE"',
        '  <pause milliseconds="3000"/>\n'
        f'  <nop><action><exec play_pcap_audio="{nine}"/></action></nop>\n'
        '  <recv request="BYE"',
    )
    await _call(edge, tmp_path, scenario)
    row = await ended_call_record(edge)
    steps = [v["step"] for v in row.ivr_path]
    assert steps[:2] == ["menu", "hotline"]
    assert "main_menu" in steps and steps[-1] == "goodbye"  # the demo flow ran, 9 pressed
    assert row.transfers == [{"kind": "ivr", "to": "service hotline"}]

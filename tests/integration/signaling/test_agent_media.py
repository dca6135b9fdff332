"""Audio through a bridged agent call, checked by correlation against what was sent.

SIPp calls the demo number, presses 1 (RFC 4733, SIPp's digit pcap) and then plays
SIPp's bundled `g711a.pcap` (PCMA speech). baresip (Debian), registered as agent 1001,
auto-answers; it plays a known noise file as its microphone and writes what it
hears to WAV. We check, each by normalised cross-correlation:
- baresip heard the whisper we played to it (the queue announcement);
- baresip heard the caller's speech from the pcap, passed through the bridge;
- our stereo recording of the bridged call holds the caller (left, the pcap) and
  the agent (right, baresip's file), and not the other way round.
And the screen pop reaches agent 1001's event socket before baresip sees the INVITE.
"""

import asyncio
import struct
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from telportal.media import PlaySpeech
from telportal.media.engine import EmbeddedMediaEngine
from telportal.rtp.g711 import pcma_decode
from tests.integration.signaling.conftest import PASSWORD, Api, Edge, free_port
from tests.integration.signaling.test_acd_calls import Desktop
from tests.integration.signaling.test_baresip import baresip
from tests.integration.signaling.test_ivr_call import PCAP, add_carrier_trunk
from tests.integration.signaling.test_sipp_register import sipp
from tests.ports import free_media_port

G711A_PCAP = PCAP.with_name("g711a.pcap")
PRESS_1 = PCAP.with_name("dtmf_2833_1.pcap")
WHISPER = "Call from the sales queue."
RATE = 8000

CALLER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller who presses 1 and talks">
  <send retrans="500"><![CDATA[
INVITE sip:4008001000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]>;tag=[call_number]
To: <sip:4008001000@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:13800138000@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:4008001000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]>;tag=[call_number]
To: <sip:4008001000@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="2500"/>
  <nop><action><exec play_pcap_audio="PRESS_1"/></action></nop>
  <pause milliseconds="7000"/>
  <nop><action><exec play_pcap_audio="G711A"/></action></nop>
  <pause milliseconds="7300"/>
  <nop><action><exec play_pcap_audio="G711A"/></action></nop>
  <pause milliseconds="7500"/>
  <send retrans="500"><![CDATA[
BYE sip:4008001000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]>;tag=[call_number]
To: <sip:4008001000@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


def pcap_audio(path: Path) -> np.ndarray:
    """The linear audio of a pcap of PCMA RTP over UDP/IPv4/Ethernet, in packet order."""
    data = path.read_bytes()
    magic, *_, link = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4 and link == 1, "expected a little-endian Ethernet pcap"
    offset, payload = 24, bytearray()
    while offset < len(data):
        _, _, captured, _ = struct.unpack("<IIII", data[offset : offset + 16])
        packet = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        ip = packet[14:]
        udp = ip[(ip[0] & 0x0F) * 4 :]
        rtp = udp[8:]
        assert rtp[1] & 0x7F == 8, "expected PCMA"
        payload += rtp[12:]
    return np.frombuffer(pcma_decode(bytes(payload)), dtype="<i2").astype(np.float64)


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """Sample rate and samples (frames x channels) of a 16-bit WAV."""
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return w.getframerate(), frames.reshape(-1, w.getnchannels()).astype(np.float64)


def similarity(signal: np.ndarray, reference: np.ndarray) -> float:
    """The best normalised cross-correlation of `reference` against any stretch of `signal`.

    1.0 means the reference appears in the signal exactly (up to gain); unrelated audio
    scores near 0. Computed with FFTs, normalised by each window's own energy.
    """
    n, m = len(signal), len(reference)
    assert n >= m > 0
    size = 1 << (n + m).bit_length()
    ref = reference - reference.mean()
    corr = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(ref, size)), size)
    corr = corr[: n - m + 1]
    energy = np.concatenate(([0.0], np.cumsum(signal**2)))
    sums = np.concatenate(([0.0], np.cumsum(signal)))
    window_energy = energy[m:] - energy[:-m] - (sums[m:] - sums[:-m]) ** 2 / m
    denominator = np.sqrt(np.maximum(window_energy, 1e-9)) * np.linalg.norm(ref)
    scores = corr / denominator
    loud = window_energy > 1e-3 * window_energy.max()  # ignore near-silent windows
    return float(scores[loud].max())


def noise_file(path: Path, seconds: float) -> np.ndarray:
    """Band-limited noise (300-3400 Hz) as baresip's microphone: unlike speech or a tone,
    it matches itself at one lag only, so a high score cannot be a coincidence."""
    rng = np.random.default_rng(2026)
    spectrum = np.fft.rfft(rng.standard_normal(int(RATE * seconds)))
    freqs = np.fft.rfftfreq(int(RATE * seconds), 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    noise = np.fft.irfft(spectrum, int(RATE * seconds))
    samples = (noise / np.abs(noise).max() * 9000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return samples.astype(np.float64)


def agent_phone(folder: Path, server_port: int) -> None:
    # baresip 1.0's aufile only reads; sndfile dumps what is heard (and sent) to WAV, and
    # aubridge is a player that needs no sound card.
    modules = "\n".join(
        f"module\t\t{m}.so" for m in ("g711", "aufile", "aubridge", "sndfile", "account", "menu")
    )
    (folder / "config").write_text(
        "sip_listen\t\t127.0.0.1:0\n"  # baresip picks free ports itself: no race for one
        "module_path\t\t/usr/lib/baresip/modules\n"
        f"{modules}\n"
        "audio_player\t\taubridge,agent\n"
        f"snd_path\t\t{folder}\n"
        f"audio_source\t\taufile,{folder / 'microphone.wav'}\n"
        "audio_alert\t\taufile,/dev/null\n"
    )
    (folder / "accounts").write_text(
        f"<sip:1001@127.0.0.1:{server_port};transport=udp>"
        f";auth_pass={PASSWORD};answermode=auto;regint=300\n"
    )


# baresip 1.0 (libre) gives up when any challenge names an algorithm it lacks.
@pytest.mark.parametrize("edge", [{"digest_algorithms": ("MD5",)}], indirect=True)
async def test_bridged_agent_call_carries_and_records_both_parties(
    edge: Edge, api: Api, tmp_path: Path
) -> None:
    assert G711A_PCAP.is_file(), "sip-tester's pcaps are missing: make setup installs it"
    sip = edge.platform.sip
    assert sip is not None and isinstance(sip.media, EmbeddedMediaEngine)
    acme = await add_carrier_trunk(edge)
    phone_dir = tmp_path / "baresip"
    phone_dir.mkdir()
    microphone = noise_file(phone_dir / "microphone.wav", 40.0)
    agent_phone(phone_dir, edge.port)
    # -s prints each SIP message baresip handles; stdbuf makes it line-buffered, so a
    # line's arrival here is when baresip saw the message.
    phone = await asyncio.create_subprocess_exec(
        "stdbuf", "-oL", baresip(), "-f", str(phone_dir), "-n", "127.0.0.1", "-t", "60", "-s",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    lines: list[tuple[float, str]] = []

    async def read_phone() -> None:
        assert phone.stdout is not None
        async for raw in phone.stdout:
            lines.append((time.time(), raw.decode(errors="replace")))

    reader = asyncio.create_task(read_phone())
    token = await api.token("1001@acme")
    desktop = Desktop(api.base.replace("http://", "ws://") + f"/api/v1/events?token={token}")
    await desktop.__aenter__()
    try:
        async with asyncio.timeout(20):
            while not sip.location.lookup(f"{acme}/1001"):  # noqa: ASYNC110 - registration
                await asyncio.sleep(0.1)
        scenario = tmp_path / "caller.xml"
        scenario.write_text(
            CALLER.replace("PRESS_1", str(PRESS_1)).replace("G711A", str(G711A_PCAP))
        )
        caller = await asyncio.create_subprocess_exec(
            sipp(), f"127.0.0.1:{edge.port}", "-sf", str(scenario), "-m", "1",
            "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_media_port()),
            "-timeout", "90s", "-timeout_error", "-nostdin", "-trace_err",
            "-error_file", str(tmp_path / "errors.log"),
            cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(caller.communicate(), 120)
        errors = tmp_path / "errors.log"
        assert caller.returncode == 0, (
            f"caller failed: {err.decode()}\n{errors.read_text() if errors.exists() else ''}"
        )
        async with asyncio.timeout(15):
            while not sip.call_records:  # noqa: ASYNC110 - the call task finishes on its own
                await asyncio.sleep(0.05)
    finally:
        await desktop.__aexit__()
        if phone.returncode is None:
            phone.terminate()
        await phone.wait()
        await asyncio.wait_for(reader, 10)
    log = "".join(line for _, line in lines)
    assert "Call established: sip:" in log, log[-2000:]
    # The screen pop reached agent 1001's desktop before baresip saw the INVITE.
    (popped_at, pop), *others = desktop.pops
    assert not others and pop["caller"] == "13800138000" and pop["queue"] == "sales"
    invited_at = next(t for t, line in lines if "INVITE sip:1001" in line)
    assert popped_at < invited_at, (popped_at, invited_at)
    record = sip.call_records[-1]
    assert record.digits == ("1",) and record.outcome == "queue sales"

    caller_speech = pcap_audio(G711A_PCAP)
    (whisper_clip,) = await sip.media.load([PlaySpeech(WHISPER)])
    whisper = np.frombuffer(whisper_clip.pcm, dtype="<i2").astype(np.float64)
    whisper = whisper[: int(1.2 * RATE)]  # the start: robust to baresip's jitter buffer

    (heard_file,) = phone_dir.glob("dump-*-dec.wav")
    rate, heard = read_wav(heard_file)
    assert rate == RATE, f"baresip wrote {rate} Hz"
    heard_mono = heard[:, 0]
    assert similarity(heard_mono, whisper) > 0.8  # the agent heard the announcement
    speech_window = caller_speech[RATE : 4 * RATE]
    assert similarity(heard_mono, speech_window) > 0.8  # ... and then the caller

    recordings = list((edge.platform.config.data_dir / "recordings").glob("*-agent-1001.wav"))
    assert len(recordings) == 1, recordings
    rate, stereo = read_wav(recordings[0])
    assert rate == RATE and stereo.shape[1] == 2
    left, right = stereo[:, 0], stereo[:, 1]
    # Half-second windows: baresip's packets come in bursts on a loaded machine, and a
    # stretch that arrived late is shifted in the file; each window is still found
    # whole. The best of several windows counts.
    mic_windows = [microphone[int(t * RATE) : int((t + 0.5) * RATE)] for t in (2, 4, 6, 8)]
    # SIPp paces its pcap from one thread, so under load the caller's side comes in
    # bursts as well (a 3 s window once scored 0.79 while every half second was whole).
    speech_windows = [caller_speech[int(t * RATE) : int((t + 0.5) * RATE)] for t in (1, 2, 3)]

    def best(signal: np.ndarray, windows: list[np.ndarray]) -> float:
        return max(similarity(signal, w) for w in windows)

    scores = {
        "caller in left": best(left, speech_windows),
        "agent in right": best(right, mic_windows),
        "agent in left": best(left, mic_windows),
        "caller in right": best(right, speech_windows),
    }
    assert scores["caller in left"] > 0.9, scores
    assert scores["agent in right"] > 0.9, scores
    assert scores["agent in left"] < 0.3, scores  # the channels are not mixed up
    assert scores["caller in right"] < 0.3, scores

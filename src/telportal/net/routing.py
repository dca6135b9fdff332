"""The Via rules of the server transport (RFC 3261 18.2.1, 18.2.2; RFC 3581; RFC 7118).

On receipt of a request the top Via records where the request really came from:

    received  set when the sent-by host is not the packet's source address; always set
              when the client asked for rport (RFC 3581 4) and on WebSocket, whose sent-by
              is an invented domain (RFC 7118 5.2); overwritten when the client put one in
              itself, so a forged value cannot aim our responses at a third party
    rport     filled with the source port when present without a value (RFC 3581 4)

A response then goes back (18.2.2): on a connection-oriented transport over the
connection the request came on; otherwise to `received` (or the sent-by host) at
`rport` (or the sent-by port, or the transport's default port).
"""

from dataclasses import replace

from telportal.net.address import Peer, Source, Transport, bare_host, same_host
from telportal.sip import Headers, Request, Via, split_list


def stamp_via(request: Request, source: Source) -> None:
    """Add received and rport to the request's top Via as source requires."""
    via = request.top_via
    params = via.params
    # One pass over the parameters (most Vias have a branch and nothing else to see).
    wants_rport = has_received = False
    rport: str | None = None
    for name, value in params.items:
        lower = name.lower()
        if lower == "rport":
            if not wants_rport:
                wants_rport, rport = True, value
        elif lower == "received":
            has_received = True
    force_received = source.transport.websocket
    if wants_rport and rport is None:
        params = params.with_param("rport", str(source.port))
        force_received = True
    if force_received or has_received or not same_host(via.host, source.host):
        # A link-local source keeps its zone ("fe80::1%eth0") only on this host: the
        # parameter carries the address alone, as RFC 5118 4.5 writes it.
        params = params.with_param("received", source.host.partition("%")[0])
    if params is via.params:
        return
    stamped = replace(via, params=params)
    if _replace_top_via(request, str(stamped)):
        # The parsed Via is known: keep it, rather than have the next reader parse the
        # new text again (a Via parse, the costliest header's, per request with rport).
        request.headers.memo["via"] = (stamped,)


def _replace_top_via(request: Request, top: str) -> bool:
    """Put `top` in place of the first Via element; True if it is the only element."""
    headers = request.headers
    lines = headers.lines("Via")
    if len(lines) == 1:
        # The common case, done in place: one Via line keeps its position and spelling.
        elements = split_list(lines[0][1])
        headers.set("Via", top if len(elements) == 1 else ", ".join([top, *elements[1:]]))
        return len(elements) == 1
    # Several Via lines: rebuild so only the first one changes and the order stays.
    rebuilt = Headers()
    replaced = False
    for key, name, value in headers.keyed_lines():
        if key == "via" and not replaced:
            rebuilt.add(name, _with_first_element(value, top))
            replaced = True
        else:
            rebuilt.add(name, value)
    request.headers = rebuilt
    return False


def _with_first_element(line: str, top: str) -> str:
    elements = split_list(line)
    if len(elements) == 1:
        return top
    return ", ".join([top, *elements[1:]])


def response_destination(via: Via, transport: Transport, *, use_rport: bool = True) -> Peer:
    """Where a response to a request with this top Via goes when sent by address.

    Used for UDP always, and for a connection-oriented transport when the request's
    connection has closed: 18.2.2 then opens a new one to `received` at the sent-by
    port (use_rport=False, since rport would name the closed connection's port).

    `maddr` is ignored: 18.2.2 would send to it, but we serve no multicast, and taking a
    destination from a packet we cannot authenticate would let anyone aim our responses
    at a third party. `received` is only ever the address we saw (stamp_via overwrites).
    """
    host = via.received if via.received is not None else via.host
    port = via.rport if use_rport else None
    if port is None:
        port = via.port if via.port is not None else transport.default_port
    return Peer(transport, bare_host(host), port)

"""What a call carries when one site hands it to another (a flow's `transfer: {site: ...}`).

The call goes over SIP to the other site's address with the service number it
dialled, so the receiving site routes it like any call to that number and runs the
service's flow; two headers tell that flow where the call comes from and what the
caller already said:

    X-Telportal-Handover: site=east;call=<the sending site's call id>
    X-Telportal-Vars: <base64url of a JSON object of the flow's variables>

The receiving site reads them only from a peer site's address (a call that came in
from a trunk or a phone could otherwise forge them), exposes the sending site as
`transfer.from_site`, and takes only the variables its own flow declares, with the
same type (`FlowRun`). Numbers travel as strings so no precision is lost.
"""

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from telportal.ivr.expr import Value
from telportal.sip import Request

log = logging.getLogger(__name__)

HANDOVER = "X-Telportal-Handover"
VARS = "X-Telportal-Vars"
# Kept well under a UDP datagram with the rest of an INVITE and its SDP.
MAX_VARS_BYTES = 2000
SITE_TRUNK_PREFIX = "site:"


def handover_headers(
    site: str, call_id: str, variables: Mapping[str, Value]
) -> tuple[tuple[str, str], ...]:
    headers = [(HANDOVER, f"site={site};call={call_id}")]
    encoded = _encode(variables)
    if encoded:
        headers.append((VARS, encoded))
    return tuple(headers)


def _encode(variables: Mapping[str, Value]) -> str:
    plain: dict[str, object] = {}
    for name, value in sorted(variables.items()):
        if isinstance(value, Decimal):
            plain[name] = {"number": str(value)}
        elif isinstance(value, str | bool):
            plain[name] = value
        # None is the default anyway; lists are not carried.
    if not plain:
        return ""
    text = base64.urlsafe_b64encode(
        json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode()
    ).decode()
    while len(text) > MAX_VARS_BYTES and plain:
        # Too much to carry: drop the longest values first, keep the rest.
        longest = max(plain, key=lambda k: len(json.dumps(plain[k])))
        log.warning("handover: variable %s is too long to carry to the other site", longest)
        del plain[longest]
        text = base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode()
    return text if plain else ""


def handed_over(request: Request, trunk_name: str | None) -> tuple[str, dict[str, Value]]:
    """The sending site and its variables, when a peer site sent this INVITE."""
    if trunk_name is None or not trunk_name.startswith(SITE_TRUNK_PREFIX):
        return "", {}
    sender = trunk_name.removeprefix(SITE_TRUNK_PREFIX)
    header = request.headers.get(HANDOVER)
    if header is None:
        return "", {}
    params = dict(p.partition("=")[::2] for p in header.split(";"))
    if params.get("site", "").strip() != sender:
        log.warning("handover: site %s names itself %r: ignored", sender, params.get("site"))
        return "", {}
    return sender, _decode(request.headers.get(VARS) or "")


def _decode(text: str) -> dict[str, Value]:
    if not text or len(text) > MAX_VARS_BYTES * 2:
        return {}
    try:
        plain = json.loads(base64.urlsafe_b64decode(text.encode()))
    except (binascii.Error, ValueError):
        log.warning("handover: X-Telportal-Vars is not base64 JSON: ignored")
        return {}
    if not isinstance(plain, dict):
        return {}
    values: dict[str, Value] = {}
    for name, value in plain.items():
        if not isinstance(name, str):
            continue
        if isinstance(value, str | bool):
            values[name] = value
        elif isinstance(value, dict) and isinstance(value.get("number"), str):
            try:
                number = Decimal(value["number"])
            except InvalidOperation:
                continue
            if number.is_finite():
                values[name] = number
    return values

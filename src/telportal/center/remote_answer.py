"""Answering a ringing phone from the desktop (the call-control API's `answer`).

A SIP phone cannot be made to go off-hook by the INVITE that is already ringing it.
What desk phones do support is being called *again* with a request to answer by
themselves (intercom or "auto-answer" headers). So a remote answer is: stop the
ringing INVITE and send a new one that asks the phone to pick up at once (see
`signaling.agent_leg`). This module is only the meeting point between the API,
which asks, and the ringing code, which knows whether anything is ringing and
whether the endpoint can be answered that way.

A mobile reached through a trunk cannot: the carrier's network would ignore the
headers, and the person must press 1 on the phone anyway (so that a voicemail box
cannot take the call).
"""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from telportal.errors import Conflict


@dataclass
class _Ringing:
    answer: asyncio.Event
    remote_answer: bool


class RingingPhones:
    """Which agents' phones ring right now for a contact, per tenant."""

    def __init__(self) -> None:
        self._ringing: dict[tuple[str, str], _Ringing] = {}

    @contextmanager
    def ringing(
        self, tenant_id: str, agent_id: str, *, remote_answer: bool
    ) -> Iterator[asyncio.Event]:
        """While the block runs, `answer` may set the event it yields."""
        key = (tenant_id, agent_id)
        entry = _Ringing(asyncio.Event(), remote_answer)
        self._ringing[key] = entry
        try:
            yield entry.answer
        finally:
            # A newer ring for the same agent (ring-all retried) may have replaced ours.
            if self._ringing.get(key) is entry:
                del self._ringing[key]

    def is_ringing(self, tenant_id: str, agent_id: str) -> bool:
        return (tenant_id, agent_id) in self._ringing

    def answer(self, tenant_id: str, agent_id: str) -> None:
        """Ask the ringing phone to pick up; Conflict saying why when it cannot."""
        entry = self._ringing.get((tenant_id, agent_id))
        if entry is None:
            raise Conflict("nothing is ringing for this agent")
        if not entry.remote_answer:
            raise Conflict("this call rings on a mobile phone: answer it there and press 1")
        entry.answer.set()

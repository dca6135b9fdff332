"""Every transition of the four tables, driven through the layer, over UDP and TCP.

Each case brings a real transaction into a state by real messages, applies the event
(a message, a TU response, a timer reached by jumping the fake clock, a transport
error) and checks the state reached and the actions the step's effects promise. The
scenario tests in the other files check the RFC behaviour with hand-written
expectations; this one checks that no entry of any table is unreachable or ignored.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from telportal.clock import FakeClock
from telportal.sip import Request, Response, make_response
from telportal.sip.transaction import (
    Deliver,
    Event,
    Send,
    State,
    Terminated,
    Timeout,
    Timer,
    TimerSettings,
    TransactionId,
    TransactionStateError,
    TransportError,
    make_ack,
)
from telportal.sip.transaction_table import (
    INVITE_CLIENT,
    INVITE_SERVER,
    MACHINES,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    Arm,
    Do,
    Input,
    Machine,
    timer_duration,
)
from tests.unit.sip.test_transaction_helpers import (
    TCP,
    UDP,
    Actions,
    Layer,
    Peer,
    advance_to,
    new_layer,
    only,
    request,
    respond,
)

SETTINGS = TimerSettings()
R1XX = Event.RESPONSE_1XX
R2XX = Event.RESPONSE_2XX
R3XX_6XX = Event.RESPONSE_3XX_6XX

# The events that bring a new transaction into each state.
ROUTES: dict[str, dict[State, list[Input]]] = {
    INVITE_CLIENT.name: {
        State.CALLING: [],
        State.PROCEEDING: [R1XX],
        State.COMPLETED: [R3XX_6XX],
        State.ACCEPTED: [R2XX],
    },
    NON_INVITE_CLIENT.name: {
        State.TRYING: [],
        State.PROCEEDING: [R1XX],
        State.COMPLETED: [R2XX],
    },
    INVITE_SERVER.name: {
        State.PROCEEDING: [],
        State.COMPLETED: [R3XX_6XX],
        State.CONFIRMED: [R3XX_6XX, Event.ACK],
        State.ACCEPTED: [R2XX],
    },
    NON_INVITE_SERVER.name: {
        State.TRYING: [],
        State.PROCEEDING: [R1XX],
        State.COMPLETED: [R2XX],
    },
}

EFFECT_ACTIONS: dict[Do, type[object]] = {
    Do.DELIVER: Deliver,
    Do.SEND_REQUEST: Send,
    Do.SEND_RESPONSE: Send,
    Do.RESEND_RESPONSE: Send,
    Do.SEND_ACK: Send,
    Do.RESEND_ACK: Send,
    Do.SEND_100: Send,
    Do.TIMEOUT: Timeout,
    Do.REPORT_ERROR: TransportError,
}


@dataclass
class Rig:
    machine: Machine
    peer: Peer
    layer: Layer
    clock: FakeClock
    request: Request
    txn: TransactionId
    finals: list[Response] = field(default_factory=list)

    @property
    def invite(self) -> bool:
        return self.machine in (INVITE_CLIENT, INVITE_SERVER)

    @property
    def server(self) -> bool:
        return self.txn.server

    def status(self, event: Event) -> int:
        return {R1XX: 180 if self.invite else 100, R2XX: 200, R3XX_6XX: 486}[event]

    def fire(self, event: Input) -> Actions:
        if isinstance(event, Timer):
            return self._fire_timer(event)
        if event in (R1XX, R2XX, R3XX_6XX):
            status = self.status(event)
            if self.server:
                tag = None if status == 100 else "b7c2"
                response = make_response(self.request, status, to_tag=tag)
                if status >= 200:
                    self.finals.append(response)
                return self.layer.send_response(self.txn, response)
            return self.layer.receive(respond(self.request, status), self.peer, self.peer.reliable)
        if event is Event.REQUEST:
            return self.layer.receive(self.request, self.peer, self.peer.reliable)
        if event is Event.ACK:
            final = self.finals[-1] if self.finals else respond(self.request, 486)
            return self.layer.receive(make_ack(self.request, final), self.peer, self.peer.reliable)
        return self.layer.transport_error(self.txn)

    def _fire_timer(self, timer: Timer) -> Actions:
        actions: Actions = []
        if timer is Timer.CANCEL:
            actions += self.layer.cancel(self.txn)
        delay = timer_duration(timer, SETTINGS, self.peer.reliable)
        assert delay is not None
        advance_to(self.clock, self.clock.monotonic() + delay)
        return actions + self.layer.tick()


def reach(machine: Machine, state: State, peer: Peer) -> Rig:
    layer, clock = new_layer()
    method = "INVITE" if machine in (INVITE_CLIENT, INVITE_SERVER) else "OPTIONS"
    req = request(method, transport=peer.transport)
    if machine in (INVITE_CLIENT, NON_INVITE_CLIENT):
        txn, _ = layer.send_request(req, peer)
    else:
        (delivered,) = only(layer.receive(req, peer, peer.reliable), Deliver)
        txn = delivered.transaction
    rig = Rig(machine, peer, layer, clock, req, txn)
    for event in ROUTES[machine.name][state]:
        rig.fire(event)
    assert layer.state_of(txn) is state
    return rig


def reachable(machine: Machine, state: State, peer: Peer) -> bool:
    """States whose timers are zero on this transport are left as soon as entered."""
    timers = machine.timers.get(state, frozenset())
    return not any(timer_duration(timer, SETTINGS, peer.reliable) == 0 for timer in timers)


def applicable(event: Input, peer: Peer) -> bool:
    return not (isinstance(event, Timer) and timer_duration(event, SETTINGS, peer.reliable) is None)


def transitions() -> Sequence[object]:
    cases = []
    for machine in MACHINES:
        for (state, event), step in machine.table.items():
            for peer in (UDP, TCP):
                if reachable(machine, state, peer) and applicable(event, peer):
                    name = f"{machine.name}|{state.value}|{event.value}|{peer.transport}"
                    cases.append(pytest.param(machine, state, event, peer, step, id=name))
    return cases


@pytest.mark.parametrize(("machine", "state", "event", "peer", "step"), transitions())
def test_transition(machine: Machine, state: State, event: Input, peer: Peer, step: object) -> None:
    rig = reach(machine, state, peer)
    actions = rig.fire(event)

    expected = machine.table[(state, event)]
    assert step == expected
    final_state = expected.state
    if peer.reliable and any(
        isinstance(effect, Arm) and timer_duration(effect.timer, SETTINGS, True) == 0
        for effect in expected.effects
    ):
        final_state = State.TERMINATED  # the zero timer fired before the call returned
    if final_state is State.TERMINATED:
        assert rig.layer.state_of(rig.txn) is None
        assert Terminated(rig.txn) in actions
    else:
        assert rig.layer.state_of(rig.txn) is final_state

    promised = {EFFECT_ACTIONS[effect] for effect in expected.effects if isinstance(effect, Do)}
    if (machine, state, event) == (INVITE_SERVER, State.PROCEEDING, Event.REQUEST):
        promised.discard(Send)  # nothing to resend: the TU has not responded yet
    if final_state is State.TERMINATED:
        promised.add(Terminated)
    produced = {type(action) for action in actions}
    if isinstance(event, Timer):
        # Earlier timers (retransmissions) may fire on the way to this one.
        assert promised <= produced
    else:
        assert produced == promised


def ignored_inputs() -> Sequence[object]:
    cases = []
    for machine in MACHINES:
        events = {
            INVITE_SERVER: [Event.REQUEST, Event.ACK, Event.TRANSPORT_ERROR],
            # An ACK never reaches a non-INVITE transaction: it goes to the TU as Stray.
            NON_INVITE_SERVER: [Event.REQUEST, Event.TRANSPORT_ERROR],
        }.get(machine, [R1XX, R2XX, R3XX_6XX, Event.TRANSPORT_ERROR])
        for state in ROUTES[machine.name]:
            for event in events:
                if (state, event) not in machine.table:
                    name = f"{machine.name}|{state.value}|{event.value}"
                    cases.append(pytest.param(machine, state, event, id=name))
    return cases


@pytest.mark.parametrize(("machine", "state", "event"), ignored_inputs())
def test_inputs_missing_from_a_table_are_ignored(
    machine: Machine, state: State, event: Event
) -> None:
    rig = reach(machine, state, UDP)
    assert rig.fire(event) == []
    assert rig.layer.state_of(rig.txn) is state


def refused_responses() -> Sequence[object]:
    cases = []
    for machine in (INVITE_SERVER, NON_INVITE_SERVER):
        for state in ROUTES[machine.name]:
            for event in (R1XX, R2XX, R3XX_6XX):
                if (state, event) not in machine.table:
                    name = f"{machine.name}|{state.value}|{event.value}"
                    cases.append(pytest.param(machine, state, event, id=name))
    return cases


@pytest.mark.parametrize(("machine", "state", "event"), refused_responses())
def test_tu_responses_a_state_does_not_take_are_refused(
    machine: Machine, state: State, event: Event
) -> None:
    rig = reach(machine, state, UDP)
    with pytest.raises(TransactionStateError, match=f"in state {state.value} cannot send"):
        rig.fire(event)
    assert rig.layer.state_of(rig.txn) is state


def test_every_state_of_every_machine_is_in_its_table_and_reached() -> None:
    for machine in MACHINES:
        table_states = {state for state, _ in machine.table}
        assert table_states == set(ROUTES[machine.name]), machine.name
        targets = {step.state for step in machine.table.values()} | {machine.initial.state}
        assert targets == table_states | {State.TERMINATED}, machine.name


def test_every_timer_is_armed_by_some_step_and_handled_where_it_runs() -> None:
    armed: set[Timer] = set()
    for machine in MACHINES:
        for step in [machine.initial, *machine.table.values()]:
            for effect in step.effects:
                if isinstance(effect, Arm):
                    armed.add(effect.timer)
                    # A timer is armed only into a state that keeps it and handles it.
                    assert effect.timer in machine.timers[step.state], (machine.name, effect)
                    assert (step.state, effect.timer) in machine.table, (machine.name, effect)
    assert armed | {Timer.CANCEL} == set(Timer)  # CANCEL is armed by cancel()


def test_timer_durations_follow_rfc_3261_table_4() -> None:
    settings = TimerSettings()
    udp = {timer: timer_duration(timer, settings, False) for timer in Timer}
    tcp = {timer: timer_duration(timer, settings, True) for timer in Timer}
    assert udp == {
        Timer.A: 0.5,
        Timer.B: 32.0,
        Timer.D: 32.0,
        Timer.E: 0.5,
        Timer.F: 32.0,
        Timer.G: 0.5,
        Timer.H: 32.0,
        Timer.I: 5.0,
        Timer.J: 32.0,
        Timer.K: 5.0,
        Timer.L: 32.0,
        Timer.M: 32.0,
        Timer.TRYING: 0.2,
        Timer.CANCEL: 32.0,
    }
    assert tcp == udp | {
        Timer.A: None,
        Timer.E: None,
        Timer.G: None,
        Timer.D: 0.0,
        Timer.I: 0.0,
        Timer.J: 0.0,
        Timer.K: 0.0,
    }
    slow = TimerSettings(t1=1.0, t2=8.0, t4=10.0)
    assert timer_duration(Timer.B, slow, False) == 64.0
    assert timer_duration(Timer.K, slow, False) == 10.0
    assert timer_duration(Timer.TRYING, TimerSettings(trying_delay=None), False) is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"t1": 0.0}, "t1 must be positive"),
        ({"t4": -1.0}, "t4 must be positive"),
        ({"t1": 5.0, "t2": 4.0}, "t2 must not be shorter than t1"),
        ({"trying_delay": -0.1}, "trying_delay must not be negative"),
    ],
)
def test_timer_settings_are_checked(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimerSettings(**settings)

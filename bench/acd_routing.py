"""ACD routing decisions with 1,000 agents and 10,000 waiting contacts (target: p99 < 1 ms).

Builds one tenant with six queues (every strategy; a small ring-all team) and 1,000
agents with mixed skills and levels: 30% are experts (level 8-10 in their products),
the rest ordinary (1-7). 10,000 contacts needing an expert wait across the four
product queues, with random priorities, customer importance and languages.

Then measures, one distributor call at a time, on a fake clock:
- agent free -> contact: an idle expert goes ready and is offered the best waiting
  contact it can serve (the contact is then answered and ended, and a new one
  arrives, so 10,000 stay waiting);
- contact arrives -> agent: with ordinary agents ready, an ordinary contact arrives
  and is offered to the agent the queue's strategy picks (then answered and ended;
  the agent's return to ready is measured too);
- contact arrives -> waits: the arrivals that keep the 10,000 topped up.
Prints figures; asserts nothing. Bounded by --decisions.

    .venv/bin/python bench/acd_routing.py [--agents 1000] [--waiting 10000] [--decisions 20000]
"""

import argparse
import random
import time

from telportal.acd import (
    AgentProfile,
    Decision,
    Distributor,
    Offer,
    OfferCallback,
    QueueConfig,
    SkillNeed,
    Strategy,
)
from telportal.clock import FakeClock

T = "bench"
PRODUCTS = {
    "sales": Strategy.LONGEST_IDLE,
    "support": Strategy.LEAST_CALLS,
    "billing": Strategy.SKILLS_WEIGHTED,
    "tech": Strategy.ROUND_ROBIN,
}
LANGUAGES = [("en", 0.7), ("zh", 0.25), ("fr", 0.05)]


def language(rng: random.Random) -> str:
    return rng.choices([lang for lang, _ in LANGUAGES], [w for _, w in LANGUAGES])[0]


def profile(rng: random.Random, index: int, expert: bool) -> AgentProfile:
    products = rng.sample(sorted(PRODUCTS), 2)
    skills = {p: rng.randint(8, 10) if expert else rng.randint(1, 7) for p in products}
    skills["en"] = rng.randint(3, 10)
    if rng.random() < 0.4:
        skills["zh"] = rng.randint(1, 10)
    if rng.random() < 0.1:
        skills["fr"] = rng.randint(1, 10)
    queues = {*products, "general"}
    if rng.random() < 0.02:
        skills["vip"] = rng.randint(5, 10)
        queues.add("vip")
    return AgentProfile(T, f"a{index:04d}", skills, frozenset(queues), wrap_up=None)


def offered(decisions: list[Decision]) -> list[Offer | OfferCallback]:
    return [d for d in decisions if isinstance(d, Offer | OfferCallback)]


def percentiles(samples_ns: list[int]) -> str:
    if not samples_ns:
        return "no samples"
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return f"p50 {at(0.50):7.1f} us   p99 {at(0.99):7.1f} us   max {ordered[-1] / 1000:8.1f} us"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    clock = FakeClock()
    d = Distributor(clock)

    started = time.perf_counter()
    for product, strategy in PRODUCTS.items():
        d.configure_queue(
            QueueConfig(T, product, strategy, skills=frozenset({SkillNeed(product)}), wrap_up=10)
        )
    d.configure_queue(QueueConfig(T, "general", Strategy.LONGEST_IDLE, wrap_up=10))
    d.configure_queue(
        QueueConfig(T, "vip", Strategy.RING_ALL, priority=10, skills=frozenset({SkillNeed("vip")}))
    )
    experts: list[str] = []
    ordinary: list[str] = []
    for index in range(args.agents):
        expert = index % 10 < 3
        p = profile(rng, index, expert)
        d.sign_in(p)
        (experts if expert else ordinary).append(p.agent_id)

    sequence = 0

    def expert_contact() -> list[Decision]:
        nonlocal sequence
        sequence += 1
        product = rng.choice(sorted(PRODUCTS))
        return d.enqueue(
            T,
            f"x{sequence}",
            product,
            priority=rng.randint(0, 5),
            importance=rng.randint(0, 2),
            skills=[SkillNeed(product, 8), language(rng)],
        )

    arrive_wait_ns: list[int] = []
    for _ in range(args.waiting):
        t0 = time.perf_counter_ns()
        out = expert_contact()
        arrive_wait_ns.append(time.perf_counter_ns() - t0)
        assert not offered(out)
        clock.advance(0.001)
    setup = time.perf_counter() - started
    waiting = sum(len(d.waiting(T, q)) for q in PRODUCTS)

    # agent free -> contact
    free_ns: list[int] = []
    free_offers = 0
    half = args.decisions // 2
    for _ in range(half):
        agent_id = rng.choice(experts)
        t0 = time.perf_counter_ns()
        out = d.ready(T, agent_id)
        free_ns.append(time.perf_counter_ns() - t0)
        offers = offered(out)
        free_offers += len(offers)
        if offers:
            contact_id = offers[0].contact_id
            d.offer_accepted(T, contact_id, agent_id)
            d.not_ready(T, agent_id, "bench")
            clock.advance(0.01)
            d.contact_ended(T, contact_id)
            d.end_wrap_up(T, agent_id)
            t0 = time.perf_counter_ns()
            expert_contact()
            arrive_wait_ns.append(time.perf_counter_ns() - t0)
        else:
            d.not_ready(T, agent_id, "bench")
        clock.advance(0.01)
    still_waiting = sum(len(d.waiting(T, q)) for q in PRODUCTS)

    # contact arrives -> agent (ordinary agents ready; the expert contacts still wait)
    for agent_id in ordinary:
        d.ready(T, agent_id)
    queues = [*sorted(PRODUCTS), "general"]
    arrive_ns: list[int] = []
    back_ns: list[int] = []
    arrive_offers = 0
    ring_all_ns: list[int] = []
    ring_all_offers = 0
    for _ in range(args.decisions - half):
        sequence += 1
        contact_id = f"o{sequence}"
        queue_id = "vip" if rng.random() < 0.02 else rng.choice(queues)
        extra = [language(rng)] if rng.random() < 0.5 else []
        t0 = time.perf_counter_ns()
        out = d.enqueue(T, contact_id, queue_id, priority=rng.randint(0, 5), skills=extra)
        elapsed = time.perf_counter_ns() - t0
        offers = offered(out)
        arrive_offers += len(offers)
        if len(offers) > 1:
            ring_all_ns.append(elapsed)
            ring_all_offers += len(offers)
        else:
            arrive_ns.append(elapsed)
        if not offers:
            d.abandon(T, contact_id)
            continue
        agent_id = offers[0].agent_id
        d.offer_accepted(T, contact_id, agent_id)
        clock.advance(0.01)
        d.contact_ended(T, contact_id)
        t0 = time.perf_counter_ns()
        d.end_wrap_up(T, agent_id)
        back_ns.append(time.perf_counter_ns() - t0)
        clock.advance(0.01)

    measured_ns = sum(free_ns) + sum(arrive_ns) + sum(ring_all_ns)
    decisions = free_offers + arrive_offers
    print(
        f"ACD routing: {args.agents} agents ({len(experts)} experts), "
        f"{waiting} contacts waiting in {len(PRODUCTS)} queues; setup {setup:.2f} s"
    )
    print(
        f"agent free -> contact     n={len(free_ns):6d} offers={free_offers:6d}  "
        f"{percentiles(free_ns)}   (still waiting after: {still_waiting})"
    )
    print(
        f"contact arrives -> agent  n={len(arrive_ns):6d} offers={len(arrive_ns):6d}  "
        f"{percentiles(arrive_ns)}"
    )
    print(
        f"  ... ringing all (vip)   n={len(ring_all_ns):6d} offers={ring_all_offers:6d}  "
        f"{percentiles(ring_all_ns)}"
    )
    print(
        f"contact arrives -> waits  n={len(arrive_wait_ns):6d}{'':16s}{percentiles(arrive_wait_ns)}"
    )
    print(
        f"agent back to ready, nothing waiting for it   n={len(back_ns):6d}  {percentiles(back_ns)}"
    )
    print(
        f"routing decisions: {decisions} offers in {measured_ns / 1e9:.3f} s of routing calls "
        f"= {decisions / (measured_ns / 1e9):,.0f} decisions/s"
    )


if __name__ == "__main__":
    main()

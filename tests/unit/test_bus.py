from telportal.events import ConfigChanged, InProcessBus


def _change(tenant: str | None, entity: str = "service", revision: int = 1) -> ConfigChanged:
    return ConfigChanged(
        tenant_id=tenant, revision=revision, entity=entity, entity_id="x", action="created"
    )


async def test_subjects_and_prefix_subscriptions() -> None:
    bus = InProcessBus()
    everything = bus.subscribe()
    acme = bus.subscribe("config.acme")
    services = bus.subscribe("config.acme.service")
    platform = bus.subscribe("config.platform")
    await bus.publish(_change("acme"))
    await bus.publish(_change("acme", "skill"))
    await bus.publish(_change("acmecorp"))  # a prefix of the subject, not of a segment
    await bus.publish(_change(None, "site"))
    assert _change("acme").subject == "config.acme.service"
    assert [e.entity for e in _drain(everything)] == ["service", "skill", "service", "site"]
    assert [e.entity for e in _drain(acme)] == ["service", "skill"]
    assert [e.entity for e in _drain(services)] == ["service"]
    assert [e.entity for e in _drain(platform)] == ["site"]


async def test_a_subscription_to_several_prefixes_gets_each_of_theirs() -> None:
    bus = InProcessBus()
    both = bus.subscribe("config.acme.skill", "config.platform")
    anything = bus.subscribe("config.acme", "")  # an empty prefix: every event
    await bus.publish(_change("acme"))
    await bus.publish(_change("acme", "skill"))
    await bus.publish(_change(None, "site"))
    assert [e.entity for e in _drain(both)] == ["skill", "site"]
    assert [e.entity for e in _drain(anything)] == ["service", "skill", "site"]


async def test_slow_subscriber_drops_oldest_and_counts() -> None:
    bus = InProcessBus()
    sub = bus.subscribe(maxsize=2)
    for i in range(5):
        await bus.publish(_change("t", revision=i))
    assert sub.dropped == 3
    assert [e.revision for e in _drain(sub)] == [3, 4]


async def test_closed_subscription_receives_nothing() -> None:
    bus = InProcessBus()
    with bus.subscribe() as sub:
        pass
    await bus.publish(_change("t"))
    assert sub.get_nowait() is None


def _drain(sub):  # type: ignore[no-untyped-def]
    out = []
    while (e := sub.get_nowait()) is not None:
        out.append(e)
    return out

"""The SIP directory answers from memory and follows configuration changes at once."""

import asyncio
from collections.abc import Callable

from telportal.app import Platform
from telportal.auth.credentials import digest_secrets
from telportal.signaling.directory import SipDirectory
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Role, Scope


async def _until(predicate: Callable[[], bool]) -> None:
    """Poll (the directory reloads in its own task) for at most five seconds."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110 - no event to wait on: we watch state
            await asyncio.sleep(0.01)


async def test_lookups_and_hot_reload(platform: Platform) -> None:
    res = platform.resources
    async with platform.db.write(Scope.cli()) as uow:
        acme = await res["tenants"].create(
            uow, s.TenantCreate(slug="acme", name="A", sip_domain="sip.acme.example")
        )
        await res["users"].create(
            uow,
            s.UserCreate(
                tenant_id=acme.id,
                username="1001",
                role=Role.AGENT,
                extension="1001",
                sip_password="phone-pass-1",
            ),
        )
        await res["trunks"].create(
            uow,
            s.TrunkCreate(
                tenant_id=acme.id,
                name="carrier",
                host="192.0.2.1",
                inbound_addresses=["192.0.2.0/28"],
            ),
        )
    directory = SipDirectory(platform.db, default_tenant="acme", domain_suffix="pbx.example")
    await directory.load()
    for host in ("acme", "SIP.ACME.example", "acme.pbx.example", "127.0.0.1", "[::1]"):
        entry = directory.tenant_for_domain(host)
        assert entry is not None and entry.tenant_id == acme.id, host
    user = directory.user(acme.id, "1001")
    assert user is not None
    assert user.ha1_sha256 == digest_secrets("1001", "acme", "phone-pass-1").ha1_sha256
    assert directory.user(acme.id, "1002") is None
    trunk = directory.trunk_for_source("192.0.2.9")
    assert trunk is not None and trunk.name == "carrier"
    assert directory.trunk_for_source("192.0.2.99") is None
    assert directory.trunk_for_source("not-an-ip") is None

    follower = asyncio.create_task(directory.follow(platform.bus))
    try:
        await asyncio.sleep(0)
        reloads = directory.reloads
        async with platform.db.write(Scope.cli()) as uow:
            await res["users"].create(
                uow,
                s.UserCreate(
                    tenant_id=acme.id,
                    username="1002",
                    role=Role.AGENT,
                    extension="1002",
                    sip_password="phone-pass-2",
                ),
            )
        await _until(lambda: directory.user(acme.id, "1002") is not None)
        assert directory.reloads > reloads
        # trunk_for_source remembers its answers per address, until the trunks reload.
        assert directory.trunk_for_source("198.51.100.7") is None
        async with platform.db.write(Scope.cli()) as uow:
            await res["trunks"].create(
                uow,
                s.TrunkCreate(
                    tenant_id=acme.id,
                    name="second",
                    host="198.51.100.1",
                    inbound_addresses=["198.51.100.0/24"],
                ),
            )
        await _until(lambda: directory.trunk_for_source("198.51.100.7") is not None)
        second = directory.trunk_for_source("198.51.100.7")
        assert second is not None and second.name == "second"
        assert directory.trunk_for_source("192.0.2.9") is not None
        # Disabling the tenant takes its domain off the SIP side at once.
        async with platform.db.write(Scope.cli()) as uow:
            await res["tenants"].update(uow, acme.id, s.TenantUpdate(enabled=False))
        await _until(lambda: directory.tenant_for_domain("acme") is None)
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)


async def test_no_default_tenant_means_unknown_domains_are_refused(platform: Platform) -> None:
    directory = SipDirectory(platform.db)
    await directory.load()
    assert directory.tenant_for_domain("127.0.0.1") is None

"""The demo tenant: everything a newcomer needs to take a first call.

Seeding is idempotent: objects that exist are kept, and the demo passwords are
set again, so `telportal demo --password PW` always leaves known credentials.
"""

import secrets
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select

from telportal.app import Platform
from telportal.config import SiteRole
from telportal.ivr.demo import demo_flow_text
from telportal.ivr.publishing import FlowRepository
from telportal.store.schema import (
    BusinessCenter,
    NumberLink,
    Queue,
    Service,
    ServiceNumber,
    Site,
    Skill,
    Tenant,
    User,
)
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import AgentKind, Role, Scope

DEMO_TENANT = "acme"
DEMO_NUMBER = "4008001000"
DEMO_AGENTS = ("1001", "1002", "1003")
DEMO_ADMIN = "admin"
DEMO_SUPERVISOR = "supervisor"
DEMO_QUEUES = ("sales", "support")

T = TypeVar("T")


@dataclass(frozen=True)
class DemoInfo:
    tenant_id: str
    password: str
    generated: bool


async def _one(uow: UnitOfWork, model: type[T], **where: object) -> T | None:
    q = select(model).filter_by(**where)
    return (await uow.session.execute(q)).scalar_one_or_none()


async def seed_demo(platform: Platform, password: str | None = None) -> DemoInfo:  # noqa: PLR0912 - a flat list of get-or-create steps
    generated = password is None
    pw = password or secrets.token_urlsafe(9)
    res = platform.resources
    async with platform.db.write(Scope.cli("demo")) as uow:
        site = await _one(uow, Site, name=platform.config.site.name)
        if site is None:
            site = await res["sites"].create(
                uow,
                s.SiteCreate(
                    name=platform.config.site.name,
                    roles=list(platform.config.site.roles or tuple(SiteRole)),
                    region=platform.config.site.region,
                ),
            )
        tenant = await _one(uow, Tenant, slug=DEMO_TENANT)
        if tenant is None:
            tenant = await res["tenants"].create(
                uow, s.TenantCreate(slug=DEMO_TENANT, name="Acme Corporation")
            )
        tid = tenant.id
        center = await _one(uow, BusinessCenter, tenant_id=tid)
        if center is None:
            center = await res["business-centers"].create(
                uow,
                s.BusinessCenterCreate(tenant_id=tid, name="Acme business center", site_id=site.id),
            )
        service = await _one(uow, Service, tenant_id=tid, code="hotline")
        if service is None:
            service = await res["services"].create(
                uow,
                s.ServiceCreate(
                    tenant_id=tid,
                    code="hotline",
                    name="Customer hotline",
                    business_center_id=center.id,
                ),
            )
        flows = FlowRepository(platform.db)
        if await flows.current(tid, service.id) is None:
            await flows.publish(uow, service.id, demo_flow_text(), note="demo flow")
        number = await _one(uow, ServiceNumber, number=DEMO_NUMBER)
        if number is None:
            number = await res["numbers"].create(
                uow, s.NumberCreate(number=DEMO_NUMBER, description="Acme national number")
            )
        if await _one(uow, NumberLink, number_id=number.id, tenant_id=tid) is None:
            await res["number-links"].create(
                uow, s.NumberLinkCreate(number_id=number.id, tenant_id=tid, service_id=service.id)
            )
        skills = []
        for name in DEMO_QUEUES:
            skill = await _one(uow, Skill, tenant_id=tid, name=name)
            if skill is None:
                skill = await res["skills"].create(uow, s.SkillCreate(tenant_id=tid, name=name))
            skills.append(s.SkillLevel(skill_id=skill.id, level=5))
        agent_ids = []
        for ext in DEMO_AGENTS:
            agent = await _one(uow, User, tenant_id=tid, username=ext)
            if agent is None:
                agent = await res["users"].create(
                    uow,
                    s.UserCreate(
                        tenant_id=tid,
                        username=ext,
                        display_name=f"Agent {ext}",
                        role=Role.AGENT,
                        agent_kinds=[AgentKind.ORDINARY],
                        extension=ext,
                        password=pw,
                        sip_password=pw,
                        skills=skills,
                    ),
                )
            else:
                await res["users"].update(uow, agent.id, s.UserUpdate(password=pw, sip_password=pw))
            agent_ids.append(agent.id)
        for name in DEMO_QUEUES:
            if await _one(uow, Queue, tenant_id=tid, name=name) is None:
                await res["queues"].create(
                    uow,
                    s.QueueCreate(
                        tenant_id=tid, service_id=service.id, name=name, member_ids=agent_ids
                    ),
                )
        supervisor = await _one(uow, User, tenant_id=tid, username=DEMO_SUPERVISOR)
        if supervisor is None:
            await res["users"].create(
                uow,
                s.UserCreate(
                    tenant_id=tid,
                    username=DEMO_SUPERVISOR,
                    display_name="Supervisor",
                    role=Role.SUPERVISOR,
                    agent_kinds=[AgentKind.SUPERVISOR, AgentKind.MONITOR],
                    extension="1009",
                    password=pw,
                    sip_password=pw,
                ),
            )
        else:
            await res["users"].update(
                uow, supervisor.id, s.UserUpdate(password=pw, sip_password=pw)
            )
        admin = await _one(uow, User, tenant_id=None, username=DEMO_ADMIN)
        if admin is None:
            await res["users"].create(
                uow,
                s.UserCreate(
                    username=DEMO_ADMIN,
                    display_name="Platform administrator",
                    role=Role.PLATFORM_OPERATOR,
                    password=pw,
                ),
            )
        else:
            await res["users"].update(uow, admin.id, s.UserUpdate(password=pw))
    return DemoInfo(tenant_id=tid, password=pw, generated=generated)

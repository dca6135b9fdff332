"""Signing in and recognising who a request comes from."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from telportal.auth.credentials import (
    API_KEY_PREFIX,
    TOKEN_PREFIX,
    Passwords,
    new_token,
    sha256_hex,
)
from telportal.auth.lockout import Lockout
from telportal.auth.token_cache import TokenCache
from telportal.clock import Clock
from telportal.errors import TooManyAttempts, Unauthorized
from telportal.store.database import Database
from telportal.store.schema import AccessToken, ApiKey, Tenant, User
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Role, Scope

BAD_LOGIN = "invalid username or password"
BAD_TOKEN = "missing, invalid or expired credentials"  # noqa: S105 - a message
# Recording every use of an API key would turn each read into a write.
LAST_USED_GRANULARITY = timedelta(minutes=1)
# How long a checked bearer is believed without asking the store (decision 0011).
# Changes made in this process (sign-out, a user, tenant or API key changed) take
# effect at once; changes by another process (the CLI) within this many seconds.
TOKEN_CACHE_SECONDS = 5.0
# What a bearer's answer depends on, by the entity names of the audit trail.
CREDENTIAL_ENTITIES = frozenset({"user", "tenant", "api_key"})


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime
    scope: Scope


def split_login(username: str, tenant: str | None) -> tuple[str, str | None]:
    """`name@tenant` names a tenant's user; a bare name is a platform operator's."""
    if tenant is None and "@" in username:
        name, _, slug = username.rpartition("@")
        return name, slug
    return username, tenant


class Authenticator:
    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        clock: Clock,
        lockout: Lockout,
        token_ttl_seconds: int,
        cache_seconds: float = TOKEN_CACHE_SECONDS,
    ) -> None:
        self.db = db
        self.passwords = passwords
        self.clock = clock
        self.lockout = lockout
        self.token_ttl = timedelta(seconds=token_ttl_seconds)
        self.cache = TokenCache(clock, cache_seconds)
        db.on_commit(self._committed)

    def _committed(self, uow: UnitOfWork) -> None:
        """A committed change to users, tenants or API keys may revoke any bearer."""
        if not uow.audited.isdisjoint(CREDENTIAL_ENTITIES):
            self.cache.clear()

    async def login(
        self, username: str, password: str, tenant: str | None, client: str
    ) -> IssuedToken:
        name, slug = split_login(username, tenant)
        key = f"{slug or ''}/{name}|{client}"
        if (left := self.lockout.banned_for(key)) > 0:
            raise TooManyAttempts(left)
        async with self.db.read() as session:
            q = select(User, Tenant).outerjoin(Tenant, User.tenant_id == Tenant.id)
            q = q.where(User.username == name)
            q = q.where(Tenant.slug == slug) if slug else q.where(User.tenant_id.is_(None))
            row = (await session.execute(q)).first()
        user, tenant_row = (row[0], row[1]) if row else (None, None)
        # Verify even for unknown users so timing does not reveal which exist.
        ok = self.passwords.verify(user.password_hash if user else None, password)
        usable = ok and user is not None and user.enabled
        usable = usable and (tenant_row is None or tenant_row.enabled)
        if not usable or user is None:
            self.lockout.failed(key)
            raise Unauthorized(BAD_LOGIN)
        self.lockout.succeeded(key)
        token = new_token()
        now = self.clock.now()
        scope = Scope(user.tenant_id, Role(user.role), "user", user.id, _display(user, slug))
        async with self.db.write(scope) as uow:
            uow.session.add(
                AccessToken(
                    user_id=user.id,
                    token_hash=sha256_hex(token),
                    created_at=now,
                    expires_at=now + self.token_ttl,
                )
            )
            if user.password_hash and self.passwords.needs_rehash(user.password_hash):
                db_user = await uow.session.get(User, user.id)
                if db_user is not None:
                    db_user.password_hash = self.passwords.hash(password)
        return IssuedToken(token, now + self.token_ttl, scope)

    async def logout(self, bearer: str) -> None:
        scope = await self.authenticate(bearer)
        key = sha256_hex(bearer)
        async with self.db.write(scope) as uow:
            row = (
                await uow.session.execute(select(AccessToken).where(AccessToken.token_hash == key))
            ).scalar_one_or_none()
            if row is not None:
                row.revoked_at = self.clock.now()
        self.cache.forget(key)  # the next request reads the revocation from the store

    async def authenticate(self, bearer: str | None) -> Scope:
        if not bearer:
            raise Unauthorized(BAD_TOKEN)
        if not bearer.startswith((API_KEY_PREFIX, TOKEN_PREFIX)):
            raise Unauthorized(BAD_TOKEN)
        key = sha256_hex(bearer)
        if (scope := self.cache.get(key)) is not None:
            return scope
        generation = self.cache.generation
        if bearer.startswith(API_KEY_PREFIX):
            scope, expires_at = await self._api_key(key)
        else:
            scope, expires_at = await self._token(key)
        self.cache.put(key, scope, expires_at, generation)
        return scope

    async def _token(self, key_hash: str) -> tuple[Scope, datetime]:
        now = self.clock.now()
        async with self.db.read() as session:
            q = (
                select(User, Tenant, AccessToken.expires_at)
                .join(AccessToken, AccessToken.user_id == User.id)
                .outerjoin(Tenant, User.tenant_id == Tenant.id)
                .where(
                    AccessToken.token_hash == key_hash,
                    AccessToken.revoked_at.is_(None),
                    AccessToken.expires_at > now,
                    User.enabled.is_(True),
                )
            )
            row = (await session.execute(q)).first()
        if row is None or (row[1] is not None and not row[1].enabled):
            raise Unauthorized(BAD_TOKEN)
        user, tenant, expires_at = row[0], row[1], row[2]
        scope = Scope(
            user.tenant_id,
            Role(user.role),
            "user",
            user.id,
            _display(user, tenant.slug if tenant else None),
        )
        return scope, expires_at

    async def _api_key(self, key_hash: str) -> tuple[Scope, datetime | None]:
        now = self.clock.now()
        async with self.db.read() as session:
            q = (
                select(ApiKey, Tenant)
                .outerjoin(Tenant, ApiKey.tenant_id == Tenant.id)
                .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
            )
            row = (await session.execute(q)).first()
        if row is None:
            raise Unauthorized(BAD_TOKEN)
        key, tenant = row[0], row[1]
        if (key.expires_at is not None and key.expires_at <= now) or (
            tenant is not None and not tenant.enabled
        ):
            raise Unauthorized(BAD_TOKEN)
        scope = Scope(key.tenant_id, Role(key.role), "api_key", key.id, f"api-key:{key.name}")
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_GRANULARITY:
            async with self.db.write(scope) as uow:
                db_key = await uow.session.get(ApiKey, key.id)
                if db_key is not None:
                    db_key.last_used_at = now
        return scope, key.expires_at


def _display(user: User, slug: str | None) -> str:
    return f"{user.username}@{slug}" if slug else user.username

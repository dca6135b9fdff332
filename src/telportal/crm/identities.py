"""Normalised customer identities, so one lookup finds a customer from any channel.

A phone number arrives as "+86 138-0013-8000", "008613800138000", "13800138000" or
"sip:13800138000@carrier"; an email in any case. Each is reduced to one stored form
before it is saved or looked up, so the unique index on (tenant, kind, value) both
prevents duplicates and answers lookups in one indexed read.
"""

import re
from enum import StrEnum

from telportal.errors import Invalid


class IdentityKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"  # a handle on a messaging channel, e.g. "wechat:wxid_abc"
    EXTERNAL = "external"  # the enterprise's own customer id


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
# The country code whose national numbers we also accept without it (China: 86,
# national trunk prefix 0). A per-tenant setting when a tenant needs another.
COUNTRY_CODE = "86"


def normalize(kind: IdentityKind, value: str) -> str:
    text = value.strip()
    if kind is IdentityKind.PHONE:
        return normalize_phone(text)
    if kind is IdentityKind.EMAIL:
        lowered = text.lower()
        if not _EMAIL.match(lowered):
            raise Invalid("identities", f"{value!r} is not an email address")
        return lowered
    if not text or len(text) > 255:
        raise Invalid("identities", f"a {kind.value} identity needs 1-255 characters")
    return text


def normalize_phone(value: str) -> str:
    """Digits only, without the home country code or a trunk prefix: '13800138000'.

    Foreign numbers keep their country code behind a '+' ('+14155550100'), so two
    countries' numbers never collide.
    """
    text = value.strip()
    if text.lower().startswith(("sip:", "sips:", "tel:")):
        text = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    international = text.startswith("+") or text.startswith("00")
    digits = re.sub(r"[\s().\-/]", "", text).lstrip("+")
    if digits.startswith("00"):
        digits = digits[2:]
    if not digits.isdigit() or not 3 <= len(digits) <= 20:
        raise Invalid("identities", f"{value!r} is not a phone number")
    if international:
        if digits.startswith(COUNTRY_CODE):
            return digits[len(COUNTRY_CODE) :]
        return "+" + digits
    # National numbers keep their trunk prefix and area code (010 8888 6666 is
    # 01088886666): that is how callers dial them and how carriers present them.
    return digits

"""Customer identities as the store keeps them, so one lookup finds a customer from any
channel.

The rules themselves are `telportal.cases.customers` (phone numbers to E.164 with the
tenant's phone plan, emails lower-cased); this module maps the API's identity kinds
onto them and knows the ways a stored number may appear in call records, which hold
numbers as carriers presented them.
"""

from enum import StrEnum

from telportal.cases.customers import CHINA, PhonePlan, normalize_email, normalize_phone
from telportal.errors import Invalid


class IdentityKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"  # a handle with its network: "wechat:wxid_abc"
    EXTERNAL = "external"  # the enterprise's own customer id


def normalize(kind: IdentityKind, value: str, plan: PhonePlan = CHINA) -> str:
    text = value.strip()
    try:
        if kind is IdentityKind.PHONE:
            if text.lower().startswith(("sip:", "sips:", "tel:")):
                text = text.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
            return normalize_phone(text, plan)
        if kind is IdentityKind.EMAIL:
            return normalize_email(text)
    except Invalid as exc:
        raise Invalid("identities", exc.message) from None
    if not text or len(text) > 255:
        raise Invalid("identities", f"a {kind.value} identity needs 1-255 characters")
    return text


def presentations(e164: str, plan: PhonePlan = CHINA) -> list[str]:
    """The forms a number may have in call records: +8613800138000, 8613800138000,
    008613800138000 and, for the home country, 13800138000 and 01088886666."""
    digits = e164.lstrip("+")
    forms = [e164, digits, plan.international_prefix + digits]
    if digits.startswith(plan.country_code):
        national = digits[len(plan.country_code) :]
        forms.append(national)
        if plan.trunk_prefix:
            forms.append(plan.trunk_prefix + national)
    return forms

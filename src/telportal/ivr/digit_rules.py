"""Checks on digits a caller typed into a gather step (the expression `condition` aside).

All checks are on the digits as typed, so leading zeros count: an account number
`0012345678` has ten digits. Dates use the proleptic calendar, so `0229` (MMDD) is
valid and `20250229` (YYYYMMDD) is not; two-digit years are 20YY.
"""

from datetime import date
from decimal import Decimal

from telportal.ivr.spec import GatherStep

_DATE_FIELDS = {
    "YYYYMMDD": ((0, 4), (4, 6), (6, 8)),
    "YYMMDD": ((0, 2), (2, 4), (4, 6)),
    "MMDD": (None, (0, 2), (2, 4)),
    "DDMMYYYY": ((4, 8), (2, 4), (0, 2)),
    "MMDDYYYY": ((4, 8), (0, 2), (2, 4)),
}


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return len(digits) > 1 and total % 10 == 0


def date_ok(digits: str, layout: str) -> bool:
    fields = _DATE_FIELDS[layout]
    if len(digits) != len(layout):
        return False
    year_at, month_at, day_at = fields
    year = 2000 if year_at is None else int(digits[year_at[0] : year_at[1]])
    if year_at is not None and year_at[1] - year_at[0] == 2:
        year += 2000
    try:
        date(year, int(digits[month_at[0] : month_at[1]]), int(digits[day_at[0] : day_at[1]]))
    except ValueError:
        return False
    return True


def digits_problem(digits: str, step: GatherStep) -> str | None:  # noqa: PLR0911 - one per rule
    """Why `digits` do not satisfy the step's rules, or None if they do."""
    if not digits:
        return "no digits"
    if not digits.isascii() or not digits.isdigit():
        return "not only digits"
    if len(digits) < step.min_digits:
        return f"fewer than {step.min_digits} digits"
    if len(digits) > step.max_digits:
        return f"more than {step.max_digits} digits"
    rules = step.validate_
    if rules is None:
        return None
    if rules.length is not None and len(digits) != rules.length:
        return f"not {rules.length} digits"
    if rules.luhn and not luhn_ok(digits):
        return "the check digit is wrong"
    if rules.date is not None and not date_ok(digits, rules.date):
        return f"not a date ({rules.date})"
    number = Decimal(digits)
    if rules.min is not None and number < rules.min:
        return f"below {rules.min}"
    if rules.max is not None and number > rules.max:
        return f"above {rules.max}"
    return None

"""Numbers, digits, amounts and dates as words, in English and Mandarin.

Each result carries the words one by one (so recorded prompts per word can be played in
sequence, `words`) and the speech text a synthesizer reads (`text`: English words joined
by spaces, Chinese characters joined without).

English: 1234.5 -> "one thousand two hundred thirty four point five" (no "and", tens and
units as separate words); years are read the usual way: 2026 -> "twenty twenty six",
2005 -> "two thousand five", 1905 -> "nineteen oh five".

Mandarin: 1234.5 -> 一千二百三十四点五; 10 -> 十, 15 -> 十五, but 110 -> 一百一十;
zeros inside a number are said once: 1005 -> 一千零五, 100500 -> 十万零五百; sections
of four digits end in 万 and 亿. Amounts use 元, 角 and 分: 1234.5 -> 一千二百三十四元五角,
1234.05 -> 一千二百三十四元零五分. Dates read the year digit by digit:
2026-03-05 -> 二零二六年三月五日.
"""

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

Language = Literal["en", "zh"]
Currency = Literal["CNY", "USD"]
SayAs = Literal["number", "digits", "amount", "date"]

LIMIT = Decimal(10) ** 15  # English up to the trillions; Mandarin up to 千万亿
_EN_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_EN_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_EN_SCALES = ("", "thousand", "million", "billion", "trillion")
_EN_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_EN_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_EN_KEYS = {"*": "star", "#": "pound"}
_ZH_DIGITS = "零一二三四五六七八九"
_ZH_SMALL_UNITS = ("千", "百", "十", "")
_ZH_SECTIONS = ("", "万", "亿", "万亿")
_ZH_KEYS = {"*": "星", "#": "井"}
_CURRENCY_WORDS: dict[tuple[Currency, Language], tuple[str, str, str]] = {
    # (main unit, main unit plural / tenths, hundredths)
    ("CNY", "zh"): ("元", "角", "分"),
    ("USD", "zh"): ("美元", "", "美分"),
    ("CNY", "en"): ("yuan", "yuan", ""),
    ("USD", "en"): ("dollar", "dollars", "cent"),
}
_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


class SayError(ValueError):
    """The value cannot be said in the asked form (a bad date, a number too large)."""


@dataclass(frozen=True, slots=True)
class Spoken:
    words: tuple[str, ...]
    language: Language

    @property
    def text(self) -> str:
        return ("" if self.language == "zh" else " ").join(self.words)


def say(value: object, as_: SayAs, language: Language, currency: Currency = "CNY") -> Spoken:
    """Words for `value`, which is a number (Decimal or int) or text as the form needs."""
    if as_ == "digits":
        return say_digits(str(value) if not isinstance(value, Decimal) else _plain(value), language)
    if as_ == "date":
        return say_date(_to_date(value), language)
    number = _to_decimal(value)
    if as_ == "amount":
        return say_amount(number, language, currency)
    return say_number(number, language)


def say_number(value: Decimal, language: Language) -> Spoken:
    whole, fraction, negative = _split(value)
    if language == "zh":
        words = ["负"] if negative else []
        words += _zh_int(whole)
        if fraction:
            words += ["点", *(_ZH_DIGITS[int(d)] for d in fraction)]
        return Spoken(tuple(words), language)
    words = ["minus"] if negative else []
    words += _en_int(whole)
    if fraction:
        words += ["point", *(_EN_UNITS[int(d)] for d in fraction)]
    return Spoken(tuple(words), language)


def say_digits(text: str, language: Language) -> Spoken:
    """Key by key: "4008" -> four zero zero eight / 四零零八; * and # are named."""
    words: list[str] = []
    for ch in text:
        if ch.isascii() and ch.isdigit():
            words.append(_ZH_DIGITS[int(ch)] if language == "zh" else _EN_UNITS[int(ch)])
        elif ch in _EN_KEYS:
            words.append(_ZH_KEYS[ch] if language == "zh" else _EN_KEYS[ch])
    if not words:
        raise SayError(f"no digits to say in {text!r}")
    return Spoken(tuple(words), language)


def say_amount(value: Decimal, language: Language, currency: Currency = "CNY") -> Spoken:
    cents_total = int((abs(value) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if Decimal(cents_total) >= LIMIT * 100:
        raise SayError("amount too large to say")
    whole, cents = divmod(cents_total, 100)
    negative = value < 0 and cents_total > 0
    if language == "zh":
        return Spoken(tuple(_zh_amount(whole, cents, negative, currency)), language)
    return Spoken(tuple(_en_amount(whole, cents, negative, currency)), language)


def say_date(day: date, language: Language) -> Spoken:
    if language == "zh":
        year = [_ZH_DIGITS[int(d)] for d in f"{day.year:04d}"]
        return Spoken((*year, "年", *_zh_int(day.month), "月", *_zh_int(day.day), "日"), language)
    return Spoken((_EN_MONTHS[day.month - 1], *_en_ordinal(day.day), *_en_year(day.year)), language)


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise SayError(f"{value!r} is not a number")
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, str) and len(value) <= 40:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise SayError(f"{value!r} is not a number") from None
        if number.is_finite():
            return number
    raise SayError(f"{value!r} is not a number")


def _to_date(value: object) -> date:
    if isinstance(value, date):
        return value
    match = _DATE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise SayError(f"{value!r} is not a date (write 2026-03-05 or 20260305)")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise SayError(f"{value!r} is not a date: {exc}") from None


def _split(value: Decimal) -> tuple[int, str, bool]:
    """Whole part, fraction digits without trailing zeros, and sign."""
    if not value.is_finite() or abs(value) >= LIMIT:
        raise SayError("number too large to say")
    text = format(abs(value), "f")
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    return int(whole), fraction, value < 0 and (int(whole) > 0 or bool(fraction))


def _en_below_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_EN_UNITS[hundreds], "hundred"]
    if rest >= 20:
        tens, units = divmod(rest, 10)
        words.append(_EN_TENS[tens])
        if units:
            words.append(_EN_UNITS[units])
    elif rest:
        words.append(_EN_UNITS[rest])
    return words


def _en_int(n: int) -> list[str]:
    if n == 0:
        return ["zero"]
    words: list[str] = []
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    for scale in range(len(groups) - 1, -1, -1):
        if groups[scale]:
            words += _en_below_thousand(groups[scale])
            if _EN_SCALES[scale]:
                words.append(_EN_SCALES[scale])
    return words


def _en_ordinal(n: int) -> list[str]:
    words = _en_int(n)
    last = words[-1]
    if last in _EN_ORDINAL:
        words[-1] = _EN_ORDINAL[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return words


def _en_year(year: int) -> list[str]:
    high, low = divmod(year, 100)
    if year < 1000 or 2000 <= year < 2010:
        return _en_int(year)
    if low == 0:
        return [*_en_int(high), "hundred"]
    if low < 10:
        return [*_en_int(high), "oh", _EN_UNITS[low]]
    return [*_en_int(high), *_en_int(low)]


def _en_amount(whole: int, cents: int, negative: bool, currency: Currency) -> list[str]:
    one, many, cent = _CURRENCY_WORDS[(currency, "en")]
    words = ["minus"] if negative else []
    if not cent:  # yuan: "twelve point five yuan", as amounts in yuan are said in English
        words += say_number(Decimal(whole) + Decimal(cents) / 100, "en").words
        return [*words, one if whole == 1 and cents == 0 else many]
    if whole or not cents:
        words += [*_en_int(whole), one if whole == 1 else many]
    if whole and cents:
        words.append("and")
    if cents:
        words += [*_en_int(cents), cent if cents == 1 else cent + "s"]
    return words


def _zh_section(n: int) -> list[str]:
    """0 < n < 10000, with the zeros inside it said once (1005 -> 一千零五)."""
    words: list[str] = []
    zero = False
    for i, d in enumerate(f"{n:04d}"):
        digit = int(d)
        if digit == 0:
            zero = bool(words)
            continue
        if zero:
            words.append("零")
            zero = False
        words.append(_ZH_DIGITS[digit])
        if _ZH_SMALL_UNITS[i]:
            words.append(_ZH_SMALL_UNITS[i])
    return words


def _zh_int(n: int) -> list[str]:
    if n == 0:
        return ["零"]
    sections: list[int] = []
    while n:
        n, section = divmod(n, 10000)
        sections.append(section)
    words: list[str] = []
    pending_zero = False
    for index in range(len(sections) - 1, -1, -1):
        section = sections[index]
        if section == 0:
            pending_zero = bool(words)
            continue
        if words and (pending_zero or section < 1000):
            words.append("零")
        words += _zh_section(section)
        if _ZH_SECTIONS[index]:
            words.append(_ZH_SECTIONS[index])
        pending_zero = False
    if words[:2] == ["一", "十"]:
        words = words[1:]  # 十五, 十万: a leading 一十 is said 十
    return words


def _zh_amount(whole: int, cents: int, negative: bool, currency: Currency) -> list[str]:
    unit, tenth, hundredth = _CURRENCY_WORDS[(currency, "zh")]
    words = ["负"] if negative else []
    if whole or not cents:
        words += [*_zh_int(whole), unit]
    if not tenth:  # USD: 五十六美分
        return words + ([*_zh_int(cents), hundredth] if cents else [])
    jiao, fen = divmod(cents, 10)
    if jiao:
        words += [_ZH_DIGITS[jiao], tenth]
    elif fen and whole:
        words.append("零")
    if fen:
        words += [_ZH_DIGITS[fen], hundredth]
    return words

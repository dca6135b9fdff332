"""Numbers, digits, amounts and dates said in English and Mandarin."""

from datetime import date
from decimal import Decimal

import pytest

from telportal.ivr.spoken import SayError, say, say_amount, say_date, say_digits, say_number


@pytest.mark.parametrize(
    ("value", "english", "mandarin"),
    [
        ("0", "zero", "零"),
        ("7", "seven", "七"),
        ("10", "ten", "十"),
        ("15", "fifteen", "十五"),
        ("20", "twenty", "二十"),
        ("34", "thirty four", "三十四"),
        ("110", "one hundred ten", "一百一十"),
        ("1001", "one thousand one", "一千零一"),
        ("1005", "one thousand five", "一千零五"),
        ("1234.5", "one thousand two hundred thirty four point five", "一千二百三十四点五"),
        ("10000", "ten thousand", "一万"),
        ("10010", "ten thousand ten", "一万零一十"),
        ("100500", "one hundred thousand five hundred", "十万零五百"),
        ("110000", "one hundred ten thousand", "十一万"),
        ("1010000", "one million ten thousand", "一百零一万"),
        ("100000001", "one hundred million one", "一亿零一"),
        ("1000010000", "one billion ten thousand", "十亿零一万"),
        ("-3.25", "minus three point two five", "负三点二五"),
        ("0.05", "zero point zero five", "零点零五"),
        ("12.50", "twelve point five", "十二点五"),
    ],
)
def test_numbers(value: str, english: str, mandarin: str) -> None:
    assert say_number(Decimal(value), "en").text == english
    assert say_number(Decimal(value), "zh").text == mandarin


def test_words_are_units_for_recorded_prompts() -> None:
    spoken = say_number(Decimal("1234.5"), "zh")
    assert spoken.words == ("一", "千", "二", "百", "三", "十", "四", "点", "五")
    assert say_number(Decimal(21), "en").words == ("twenty", "one")


@pytest.mark.parametrize(
    ("value", "mandarin", "english"),
    [
        ("1234.5", "一千二百三十四元五角", "one thousand two hundred thirty four point five yuan"),
        (
            "1234.56",
            "一千二百三十四元五角六分",
            "one thousand two hundred thirty four point five six yuan",
        ),
        (
            "1234.05",
            "一千二百三十四元零五分",
            "one thousand two hundred thirty four point zero five yuan",
        ),
        ("1234", "一千二百三十四元", "one thousand two hundred thirty four yuan"),
        ("0.05", "五分", "zero point zero five yuan"),
        ("10.5", "十元五角", "ten point five yuan"),
        ("1", "一元", "one yuan"),
        ("0", "零元", "zero yuan"),
        ("-20", "负二十元", "minus twenty yuan"),
        ("3.999", "四元", "four yuan"),  # rounded to the fen, half up
    ],
)
def test_yuan_amounts(value: str, mandarin: str, english: str) -> None:
    assert say_amount(Decimal(value), "zh").text == mandarin
    assert say_amount(Decimal(value), "en").text == english


def test_dollar_amounts() -> None:
    assert say_amount(Decimal("1234.56"), "en", "USD").text == (
        "one thousand two hundred thirty four dollars and fifty six cents"
    )
    assert say_amount(Decimal("1.01"), "en", "USD").text == "one dollar and one cent"
    assert say_amount(Decimal("0.50"), "en", "USD").text == "fifty cents"
    assert say_amount(Decimal("1234.56"), "zh", "USD").text == "一千二百三十四美元五十六美分"


@pytest.mark.parametrize(
    ("value", "english", "mandarin"),
    [
        ("2026-03-05", "march fifth twenty twenty six", "二零二六年三月五日"),
        ("20261231", "december thirty first twenty twenty six", "二零二六年十二月三十一日"),
        ("2005-01-01", "january first two thousand five", "二零零五年一月一日"),
        ("1999-11-22", "november twenty second nineteen ninety nine", "一九九九年十一月二十二日"),
        ("1905-02-03", "february third nineteen oh five", "一九零五年二月三日"),
        ("1900-07-12", "july twelfth nineteen hundred", "一九零零年七月十二日"),
        ("2010-10-20", "october twentieth twenty ten", "二零一零年十月二十日"),
    ],
)
def test_dates(value: str, english: str, mandarin: str) -> None:
    assert say(value, "date", "en").text == english
    assert say(value, "date", "zh").text == mandarin


def test_digits_are_said_one_by_one() -> None:
    assert say_digits("4008*1#", "en").text == "four zero zero eight star one pound"
    assert say_digits("4008*1#", "zh").text == "四零零八星一井"
    assert say(Decimal("95588"), "digits", "zh").text == "九五五八八"


@pytest.mark.parametrize(
    ("value", "as_"),
    [
        ("2026-02-30", "date"),
        ("yesterday", "date"),
        ("abc", "number"),
        (True, "number"),
        (None, "amount"),
        ("", "digits"),
        (Decimal(10) ** 15, "number"),
        (Decimal(10) ** 15, "amount"),
        ("1" * 50, "number"),
    ],
)
def test_what_cannot_be_said(value: object, as_: str) -> None:
    with pytest.raises(SayError):
        say(value, as_, "en")  # type: ignore[arg-type]


def test_date_objects_and_numbers_as_text() -> None:
    assert say_date(date(2026, 1, 2), "en").text == "january second twenty twenty six"
    assert say("1234.5", "amount", "zh").text == "一千二百三十四元五角"
    assert say(42, "number", "en").text == "forty two"

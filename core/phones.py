"""Phone numbers: parsing any common written form into E.164."""

from __future__ import annotations

import phonenumbers

from core.errors import InvalidPhone

_STRIP = str.maketrans("", "", " \t-.()/\u00a0'")


def normalize(raw: object, region: str = "PL", field: str = "phone") -> str:
    """Returns the E.164 form of `raw`, or raises InvalidPhone naming the field and value.

    National forms use `region`; `+48...` and `0048...` international forms work for any region.
    """
    if raw is None or not str(raw).strip():
        raise InvalidPhone(raw, field, "empty")
    text = str(raw).strip().translate(_STRIP)
    if text.startswith("00"):
        text = "+" + text[2:]
    number = _parse(text, region)
    if number is None and text.isdigit() and len(text) > 10:
        # Spreadsheets drop the "+": 48600100200 is read as international when it is not national.
        number = _parse("+" + text, region)
    if number is None:
        raise InvalidPhone(raw, field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def region_of(e164: str) -> str | None:
    """The ISO region of an E.164 number (for time zones and prices), or None."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def is_region(code: str) -> bool:
    return code.upper() in phonenumbers.SUPPORTED_REGIONS

"""Guess the PII class of a field that a tap sent without one, from its name or a value.

Names are split into words (snake_case, camelCase, kebab-case), so rules match
whole words: `zipper` is not a postcode and `description_id` is not free text.
The rules lean to over-classifying, because a field classified by mistake is
hashed or dropped while a personal field missed would be stored. The exceptions
are the marketing names whose `name` or `city` is not a person's: see
`classify_field_name`.
"""

from __future__ import annotations

import ipaddress
import typing as t

import phonenumbers

from privacy.field_names import contains_sequence, name_words
from privacy.pseudonyms import validate_phone_region
from privacy.transforms import is_postcode_field
from privacy.value_patterns import is_card_number, is_email

_SECRET_WORDS = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "secret", "token", "apikey", "pin",
        "cvc", "cvc2", "cvv", "cvv2",
    }
)  # fmt: skip
_SECRET_SEQUENCES = (
    ("api", "key"),
    ("access", "key"),
    ("private", "key"),
    ("card", "number"),
    ("card", "num"),
    ("security", "code"),
)
_EMAIL_WORDS = frozenset({"email", "emails", "mail", "emailaddress"})
_IP_WORDS = frozenset({"ip", "ipv4", "ipv6", "ipaddress"})
_PHONE_WORDS = frozenset({"phone", "phones", "telephone", "phonenumber", "msisdn"})
# Words that mean a phone only as the head noun or before "number" ("customer_mobile", "cell_number"),
# because "mobile_app_installs" or "device_mobile_share" are marketing metrics.
_PHONE_HEAD_WORDS = frozenset({"mobile", "cell", "tel", "fax"})
# "is_mobile" or "has_fax" are flags, not numbers.
_FLAG_WORDS = frozenset({"is", "has"})
_BIRTH_WORDS = frozenset({"dob", "birthday", "birthdate", "birth", "birthyear"})
# Single words that name a person.
_NAME_WORDS = frozenset(
    {
        "firstname", "lastname", "fullname", "surname", "forename", "givenname", "familyname",
        "middlename", "nickname", "username", "cardholder",
    }
)  # fmt: skip
# Words before "name" that make it a person's name. Any other qualifier ("campaign_name",
# "account_name", "product_name") names a thing.
_PERSON_QUALIFIERS = frozenset(
    {
        "first", "last", "full", "given", "family", "middle", "maiden", "nick", "legal", "sur", "fore",
        "display", "real", "customer", "user", "contact", "person", "billing", "shipping", "recipient",
        "holder", "cardholder", "owner", "buyer", "shopper", "member", "subscriber", "patient",
        "employee", "sender", "receiver", "guest",
    }
)  # fmt: skip
_NAME_SUFFIX_QUALIFIERS = frozenset({"first", "last", "full", "given", "family", "middle"})
_ADDRESS_WORDS = frozenset({"address", "addresses", "addr", "street", "streetaddress", "housenumber", "apartment"})
# City names a place, not a person: a GA4 city dimension is aggregate data. With one of these
# qualifiers it is part of a person's address.
_ADDRESS_QUALIFIERS = frozenset(
    {"billing", "shipping", "customer", "home", "delivery", "mailing", "residential", "user"}
)
_ENTITY_WORDS = frozenset(
    {
        "customer", "user", "client", "member", "contact", "person", "subscriber", "visitor", "buyer",
        "shopper", "guest", "device", "cookie", "anonymous",
    }
)  # fmt: skip
_ID_WORDS = frozenset({"id", "ids", "uuid", "guid"})
_CLICK_ID_WORDS = frozenset({"gclid", "fbclid", "msclkid", "dclid", "wbraid", "gbraid", "ttclid"})
_FREE_TEXT_WORDS = frozenset(
    {
        "note", "notes", "comment", "comments", "message", "messages", "description", "memo", "remark",
        "remarks", "feedback",
    }
)  # fmt: skip

_PHONE_CHARACTERS = frozenset("0123456789+-(). /")
_MIN_PHONE_DIGITS = 7


def classify_field_name(name: str) -> str | None:
    """Return the PII class a field name suggests, or None for a name that looks non-personal.

    Rules, first match wins: secret (password, token, api_key, card_number,
    cvc), email, ip, phone, date_of_birth, identifier (customer_id, user_id,
    client_id, bare `customer`, click ids such as gclid), name, address
    (address, street, postcode words, a qualified city), free_text (note,
    comment, message, description).

    Decisions for borderline names:

    - bare `name` is a person's name, because a missed name would be stored.
      In a campaigns stream this drops the campaign name. `campaign_name`,
      `ad_name`, `account_name` and any qualifier outside a short list of
      person words are not personal.
    - `city` alone is not personal (an aggregate location, a common report
      dimension), but `billing_city` or `shipping_address_city` is an address.
    """
    words = name_words(name)
    if not words:
        return None

    for pii_class, rule in _NAME_RULES:
        if rule(words, name):
            return pii_class
    return None


def _is_secret(words: tuple[str, ...], _: str) -> bool:
    return bool(_SECRET_WORDS.intersection(words)) or any(
        contains_sequence(words, sequence) for sequence in _SECRET_SEQUENCES
    )


def _is_email(words: tuple[str, ...], _: str) -> bool:
    return bool(_EMAIL_WORDS.intersection(words)) or contains_sequence(words, ("e", "mail"))


def _is_ip(words: tuple[str, ...], _: str) -> bool:
    return bool(_IP_WORDS.intersection(words)) or contains_sequence(words, ("remote", "addr"))


def _is_phone(words: tuple[str, ...], _: str) -> bool:
    if _PHONE_WORDS.intersection(words):
        return True
    if words[-1] in _PHONE_HEAD_WORDS and words[0] not in _FLAG_WORDS:
        return True
    return any(
        contains_sequence(words, (word, "number")) or contains_sequence(words, (word, "no"))
        for word in _PHONE_HEAD_WORDS
    )


def _is_birth_date(words: tuple[str, ...], _: str) -> bool:
    return bool(_BIRTH_WORDS.intersection(words))


def _is_identifier(words: tuple[str, ...], _: str) -> bool:
    if _CLICK_ID_WORDS.intersection(words) or words in (("customer",), ("user",)):
        return True
    if contains_sequence(words, ("click", "id")) or contains_sequence(words, ("mac", "address")):
        return True
    # "customer_id", "client_id", and GA4's "user_pseudo_id".
    return words[-1] in _ID_WORDS and bool(_ENTITY_WORDS.intersection(words[:-1]))


def _is_person_name(words: tuple[str, ...], _: str) -> bool:
    if words == ("name",) or _NAME_WORDS.intersection(words):
        return True
    for position, word in enumerate(words):
        if word != "name":
            continue
        before = words[position - 1] if position > 0 else ""
        after = words[position + 1] if position + 1 < len(words) else ""
        # "first_name", "customer_name", and the reversed "name_first".
        if before in _PERSON_QUALIFIERS or after in _NAME_SUFFIX_QUALIFIERS:
            return True
    return contains_sequence(words, ("name", "on", "card"))


def _is_address(words: tuple[str, ...], name: str) -> bool:
    if _ADDRESS_WORDS.intersection(words) or is_postcode_field(name):
        return True
    if contains_sequence(words, ("po", "box")):
        return True
    return "city" in words and bool(_ADDRESS_QUALIFIERS.intersection(words))


def _is_free_text(words: tuple[str, ...], _: str) -> bool:
    return bool(_FREE_TEXT_WORDS.intersection(words)) and words[-1] not in _ID_WORDS


_NAME_RULES: tuple[tuple[str, t.Callable[[tuple[str, ...], str], bool]], ...] = (
    ("secret", _is_secret),
    ("email", _is_email),
    ("ip", _is_ip),
    ("phone", _is_phone),
    ("date_of_birth", _is_birth_date),
    ("identifier", _is_identifier),
    ("name", _is_person_name),
    ("address", _is_address),
    ("free_text", _is_free_text),
)


def detect_value_class(value: t.Any, *, default_region: str = "US") -> str | None:
    """Return the PII class a single value shows: `email`, `ip`, `secret` (a card number) or `phone`, else None.

    Only strings are inspected. A phone must be written like one: only digits,
    spaces and `+-()./`, and at least 7 digits. It needs a leading `+` or a
    separator, because a bare digit run is more often an order or account
    number. `phonenumbers` must also find it a valid number, read in
    `default_region` unless it starts with a country code. Raises ValueError
    for an unknown `default_region`.
    """
    validate_phone_region(default_region)
    if not isinstance(value, str):
        return None

    text = value.strip()
    if not text:
        return None
    if is_email(text):
        return "email"
    if _is_ip_address(text):
        return "ip"
    if is_card_number(text):
        return "secret"
    if _looks_like_phone(text, default_region):
        return "phone"
    return None


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _looks_like_phone(text: str, default_region: str) -> bool:
    if not _PHONE_CHARACTERS.issuperset(text):
        return False
    if sum(character.isdigit() for character in text) < _MIN_PHONE_DIGITS:
        return False
    if not text.startswith("+") and text.isdigit():
        return False

    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)

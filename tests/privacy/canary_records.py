"""Canary personal data for the leak test: hypothesis strategies and Singer input for every stream of every tap.

Each stream's SCHEMA (with its `x-pii` classes) and key properties come from the
tap's own discovered catalog. Every field with a personal class gets a canary
value of a person, and every other field gets type-valid filler.

A canary is at least `MIN_NEEDLE_LENGTH` characters long and differs in shape
from what the pipeline stores legitimately: filler, hex pseudonyms, base64url
field tokens, redaction placeholders, truncated IPs, generalized postcodes and
years. A chance match in encrypted bytes or a token needs 8 given characters in
a row, which is negligible, so a match in a scan is a real leak.
"""

from __future__ import annotations

import ipaddress
import json
import string
import typing as t
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import phonenumbers
from hypothesis import strategies as st

from privacy.pseudonyms import normalise_email, normalise_name
from taps.facebook import TapFacebook
from taps.google_ads import TapGoogleAds
from taps.google_analytics import TapGoogleAnalytics
from taps.magento import TapMagento
from taps.stripe import TapStripe

if t.TYPE_CHECKING:
    from privacy.policy import Policy

MIN_NEEDLE_LENGTH = 8

#: Each tap with the least config that lets it discover its catalog, by source name (the load schema).
TAPS: dict[str, tuple[type, dict[str, t.Any]]] = {
    "stripe": (TapStripe, {"api_key": "sk_test_canary"}),
    "google_ads": (
        TapGoogleAds,
        {
            "customer_ids": ["456-789-0123"],
            "developer_token": "developer-token",
            "client_id": "client-id",
            "client_secret": "client-secret",
            "refresh_token": "refresh-token",
        },
    ),
    "facebook": (TapFacebook, {"account_ids": ["act_100200300400500"], "access_token": "access-token"}),
    "google_analytics": (
        TapGoogleAnalytics,
        {
            "property_ids": ["123456789"],
            "client_id": "client-id",
            "client_secret": "client-secret",
            "refresh_token": "refresh-token",
        },
    ),
    "magento": (TapMagento, {"access_token": "access-token", "api_url": "http://127.0.0.1:9/rest/default"}),
}

#: Tombstone marker of change-feed streams: a value would turn the record into a deletion.
DELETED_AT = "_sdc_deleted_at"

_SCRIPTS: dict[str, str] = {
    "latin": "abcdefghijklmnopqrstuvwxyzàáâäçèéêëíîïñóôöúûüøåæœł",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщыэюя",
    "greek": "αβγδεζηθικλμνξοπρστυφχψω",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "hebrew": "אבגדהוזחטיכלמנסעפצקרשת",
    "devanagari": "कखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह",
    "han": "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢",
    "hangul": "김이박최정강조윤장임한오서신권황안송류전홍고문양손배백허유남심노하곽성차주우구민진나지엄채원천방공현함변염",
    "katakana": "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン",
}

_PHONE_REGIONS = ("US", "GB", "DE", "FR", "JP", "BR", "IN", "AU", "ES", "IT", "MX", "ZA", "KR", "SE", "PL", "CA")
_PHONE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)
_FIELD_PHONE_FORMATS = ("E164", "INTERNATIONAL", "NATIONAL", "RFC3966")

_EMAIL_DOMAINS = ("example.com", "mail.example.org", "post.example.net", "example.co.uk", "Shop.Example.COM")
_STREET_TYPES = ("Street", "Road", "Lane", "Avenue", "Allee", "Boulevard")
_ALPHANUMERIC = string.ascii_letters + string.digits

#: Free text for fields the policy redacts. Redaction finds e-mails, phones and IPs by their shape but does not
#: promise to find names or street addresses, so those stay out of redacted text.
NOTE_TEMPLATES = (
    "Customer asked for a call back on {phone} and a copy of the receipt to {email}; last seen from {ip}.",
    "{email} / {phone} / {ip}",
    "Contact <{email}>, tel. {phone} (login from {ip})",
    "Callback requested: {phone}. Mail: {email}. IP {ip}",
)
#: Prefix of free text in fields that are dropped or encrypted whole, so a name may be included there too.
NAMED_NOTE_PREFIX = "Note from {name}: "


@dataclass(frozen=True)
class Phone:
    """One phone number as written in a phone field, as written inside free text, and in E.164."""

    in_field: str
    in_text: str
    e164: str


@dataclass(frozen=True)
class Person:
    """The canary personal values of one person."""

    name: str
    email: str
    phone: Phone
    ip: str
    date_of_birth: str
    postcode: str
    street: str
    locality: str
    reference: str
    number: int
    secret: str
    note_template: str


@dataclass(frozen=True)
class StreamSpec:
    """One stream of a tap's discovered catalog."""

    name: str
    schema: dict[str, t.Any]
    key_properties: tuple[str, ...]
    replication_key: str | None

    @property
    def properties(self) -> dict[str, dict[str, t.Any]]:
        """The stream's field schemas by name."""
        return self.schema["properties"]


@dataclass
class CanaryInput:
    """The Singer input of one source and the canaries it carries.

    `needles` maps each text that must not reach disk or the warehouse to the
    places it was put, such as `stripe.customers.email (email, as sent)`.
    `kept_texts` contains the personal values put into fields whose action is `keep`.
    """

    source: str
    messages: list[dict[str, t.Any]] = field(default_factory=list)
    record_counts: dict[str, int] = field(default_factory=dict)
    needles: dict[str, set[str]] = field(default_factory=dict)
    kept_texts: list[str] = field(default_factory=list)

    def add_needle(self, kind: str, text: str, place: str, phone_region: str) -> None:
        """Record `text` and its variants (normalised, E.164, JSON-escaped) as put into `place`."""
        for form, variant in needle_variants(kind, text, phone_region).items():
            self.needles.setdefault(variant, set()).add(f"{place} ({kind}, {form})")


def discover_streams(source: str) -> list[StreamSpec]:
    """Return every stream of the source's tap (selected by default or not), from its discovered catalog."""
    tap_class, config = TAPS[source]
    catalog = tap_class(config=config, parse_env_config=False).catalog_dict
    streams = []
    for entry in catalog["streams"]:
        metadata = next(item["metadata"] for item in entry["metadata"] if item["breadcrumb"] == [])
        streams.append(
            StreamSpec(
                name=entry["tap_stream_id"],
                schema=entry["schema"],
                key_properties=tuple(entry.get("key_properties") or metadata.get("table-key-properties") or ()),
                replication_key=entry.get("replication_key"),
            )
        )
    return streams


def needle_variants(kind: str, text: str, phone_region: str) -> dict[str, str]:
    """Return the forms of one canary that a leak could take, by form name, each at least `MIN_NEEDLE_LENGTH` long.

    The mapper normalises e-mails, names and phones before it hashes them, and a
    JSON log or state line escapes non-ASCII characters, so these forms are
    searched for too.
    """
    forms = {"as sent": text, "JSON-escaped": json.dumps(text)[1:-1]}
    if kind == "email":
        forms["normalised"] = normalise_email(text)
    elif kind == "name":
        forms["normalised"] = normalise_name(text)
    elif kind == "phone":
        forms["E.164"] = _e164(text, phone_region) or text
    elif kind == "ip":
        forms["canonical"] = str(ipaddress.ip_address(text))

    variants: dict[str, str] = {}
    for form, variant in forms.items():
        if len(variant) >= MIN_NEEDLE_LENGTH and variant not in variants.values():
            variants[form] = variant
    return variants


def _e164(text: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# Strategies


def _word(alphabet: str, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size).map(lambda word: word[0].upper() + word[1:])


@st.composite
def phones(draw: st.DrawFn, text_region: str = "US") -> Phone:
    """Draw a valid phone number of one of several regions, written in a national or international format.

    Inside free text only forms that a redactor working with `text_region` can
    recognise are used: international formats, and the national format of
    `text_region` itself (a national number of another country is just digits
    without its country).
    """
    region = draw(st.sampled_from(_PHONE_REGIONS))
    number_type = draw(st.sampled_from(_PHONE_TYPES))
    example = phonenumbers.example_number_for_type(region, number_type)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    candidate = phonenumbers.parse(e164[:-4] + f"{draw(st.integers(0, 9999)):04d}")
    number = candidate if phonenumbers.is_valid_number(candidate) else example

    field_format = draw(st.sampled_from(_FIELD_PHONE_FORMATS))
    text_formats = ["E164", "INTERNATIONAL"] + (["NATIONAL"] if region == text_region else [])
    text_format = draw(st.sampled_from(text_formats))
    return Phone(
        in_field=phonenumbers.format_number(number, getattr(phonenumbers.PhoneNumberFormat, field_format)),
        in_text=phonenumbers.format_number(number, getattr(phonenumbers.PhoneNumberFormat, text_format)),
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
    )


@st.composite
def emails(draw: st.DrawFn) -> str:
    """Draw an ASCII e-mail address with mixed case, and sometimes a dot, dash, underscore or plus tag."""
    local = draw(st.text(alphabet=_ALPHANUMERIC, min_size=3, max_size=10))
    separator = draw(st.sampled_from(("", ".", "_", "-", "+")))
    if separator:
        local += separator + draw(st.text(alphabet=_ALPHANUMERIC, min_size=1, max_size=8))
    return f"{local}@{draw(st.sampled_from(_EMAIL_DOMAINS))}"


@st.composite
def ip_addresses(draw: st.DrawFn) -> str:
    """Draw a public-looking IPv4 or IPv6 address whose host bits below /24 or /48 are not all zero.

    Truncation to /24 or /48 must then change the address, and every form is at
    least `MIN_NEEDLE_LENGTH` characters long.
    """
    if draw(st.booleans()):
        first = draw(st.integers(11, 223).filter(lambda octet: octet != 127))
        middle = draw(st.tuples(st.integers(0, 255), st.integers(0, 255)))
        last = draw(st.integers(1, 254))
        return f"{first}.{middle[0]}.{middle[1]}.{last}"

    groups = [draw(st.integers(0x2001, 0x3FFF)), draw(st.integers(1, 0xFFFF))]
    groups += [draw(st.integers(0, 0xFFFF)) for _ in range(5)]
    groups.append(draw(st.integers(1, 0xFFFF)))
    address = ipaddress.IPv6Address(":".join(f"{group:x}" for group in groups))
    style = draw(st.sampled_from(("compressed", "exploded", "upper")))
    if style == "exploded":
        return address.exploded
    return str(address).upper() if style == "upper" else str(address)


@st.composite
def postcodes(draw: st.DrawFn) -> str:
    """Draw a UK, US ZIP+4, Japanese or Brazilian postcode, each at least 8 characters long."""
    style = draw(st.sampled_from(("uk", "us", "jp", "br")))
    if style == "uk":
        area = draw(st.text(alphabet="ABCDEFGHJKLMNOPRSTUWYZ", min_size=2, max_size=2))
        outward = f"{area}{draw(st.integers(1, 9))}{draw(st.sampled_from('ABEHMNPRVWXY'))}"
        inward = f"{draw(st.integers(0, 9))}{draw(st.text(alphabet='ABDEFGHJLNPQRSTUWXYZ', min_size=2, max_size=2))}"
        return f"{outward} {inward}"
    if style == "us":
        return f"{draw(st.integers(10000, 99999))}-{draw(st.integers(0, 9999)):04d}"
    if style == "jp":
        return f"{draw(st.integers(100, 999))}-{draw(st.integers(0, 9999)):04d}"
    return f"{draw(st.integers(10000, 99999))}-{draw(st.integers(0, 999)):03d}"


@st.composite
def persons(draw: st.DrawFn, phone_region: str = "US") -> Person:
    """Draw one person: a name, street and locality in one script, and contact details."""
    alphabet = _SCRIPTS[draw(st.sampled_from(sorted(_SCRIPTS)))]
    given_name = draw(_word(alphabet, 4, 9))
    family_name = draw(_word(alphabet, 4, 12))
    street = f"{draw(st.integers(1, 999))} {draw(_word(alphabet, 5, 10))} {draw(st.sampled_from(_STREET_TYPES))}"
    return Person(
        name=f"{given_name} {family_name}",
        email=draw(emails()),
        phone=draw(phones(phone_region)),
        ip=draw(ip_addresses()),
        date_of_birth=draw(st.dates(date(1930, 1, 1), date(2006, 12, 31))).isoformat(),
        postcode=draw(postcodes()),
        street=street,
        locality=draw(_word(alphabet, MIN_NEEDLE_LENGTH, 12)),
        reference=draw(st.text(alphabet=_ALPHANUMERIC, min_size=8, max_size=12)),
        number=draw(st.integers(10**12, 10**15 - 1)),
        secret=draw(st.text(alphabet=_ALPHANUMERIC, min_size=24, max_size=32)),
        note_template=draw(st.sampled_from(NOTE_TEMPLATES)),
    )


def person_lists(min_size: int, max_size: int, phone_region: str = "US") -> st.SearchStrategy[list[Person]]:
    """Draw persons who differ in every value that identifies them."""
    return st.lists(
        persons(phone_region),
        min_size=min_size,
        max_size=max_size,
        unique_by=(
            lambda person: person.name,
            lambda person: person.email,
            lambda person: person.reference,
            lambda person: person.number,
            lambda person: person.secret,
        ),
    )


# Singer input


def build_source_input(
    source: str,
    streams: t.Sequence[StreamSpec],
    persons: t.Sequence[Person],
    policy: Policy,
    records_per_stream: int,
) -> CanaryInput:
    """Build a SCHEMA and `records_per_stream` RECORD messages per stream, and a final STATE message.

    Record `index` of the stream at `position` carries the values of person
    `(index + position) % len(persons)`, so one person recurs across streams as
    a customer does. Key values are unique per record.
    """
    if records_per_stream > 365:
        msg = "Filler dates in keys repeat after 365 records; use at most 365 records per stream."
        raise ValueError(msg)

    built = CanaryInput(source=source)
    bookmarks: dict[str, dict[str, t.Any]] = {}
    for position, stream in enumerate(streams):
        built.messages.append(
            {
                "type": "SCHEMA",
                "stream": stream.name,
                "schema": stream.schema,
                "key_properties": list(stream.key_properties),
                "bookmark_properties": [stream.replication_key] if stream.replication_key else [],
            }
        )
        for index in range(records_per_stream):
            person = persons[(index + position) % len(persons)]
            record = _record(built, stream, person, index, policy)
            built.messages.append({"type": "RECORD", "stream": stream.name, "record": record})
            if stream.replication_key:
                bookmark = {"replication_key": stream.replication_key, "replication_key_value": record[stream.replication_key]}
                bookmarks[stream.name] = bookmark
        built.record_counts[stream.name] = records_per_stream

    built.messages.append({"type": "STATE", "value": {"bookmarks": bookmarks}})
    return built


def _record(built: CanaryInput, stream: StreamSpec, person: Person, index: int, policy: Policy) -> dict[str, t.Any]:
    record: dict[str, t.Any] = {}
    for name, prop in stream.properties.items():
        pii_class = prop.get("x-pii", "none")
        if name == DELETED_AT:
            record[name] = None
        elif pii_class == "none":
            record[name] = filler(prop, index)
        else:
            record[name] = _personal_field(built, stream, name, prop, person, index, policy)
    return record


def _personal_field(
    built: CanaryInput,
    stream: StreamSpec,
    name: str,
    prop: dict[str, t.Any],
    person: Person,
    index: int,
    policy: Policy,
) -> t.Any:
    """Return the canary value of one personal field, recording its parts as needles or kept texts."""
    pii_class = prop["x-pii"]
    action = policy.action_for(built.source, stream.name, name, pii_class)
    value, parts = personal_value(pii_class, name, prop, person, index, action)
    place = f"{built.source}.{stream.name}.{name}"
    for kind, text in parts:
        if action == "keep":
            built.kept_texts.append(text)
        else:
            built.add_needle(kind, text, place, policy.phone_region)
    return value


def personal_value(
    pii_class: str,
    name: str,
    prop: dict[str, t.Any],
    person: Person,
    index: int,
    action: str,
) -> tuple[t.Any, list[tuple[str, str]]]:
    """Return the value of one personal field and its personal parts as (kind, text) pairs.

    Identifiers are unique per record (`index`), since they may be key properties.
    """
    types = _types(prop)
    if pii_class == "identifier" or "string" not in types:
        if "string" in types:
            value = f"{person.reference}-{index:04d}"
            return value, [("identifier", value)]
        number = person.number * 1000 + index
        return number, [("identifier", str(number))]

    if pii_class == "free_text":
        text = person.note_template.format(email=person.email, phone=person.phone.in_text, ip=person.ip)
        parts = [("email", person.email), ("phone", person.phone.in_text), ("phone", person.phone.e164), ("ip", person.ip)]
        if action != "redact":
            text = NAMED_NOTE_PREFIX.format(name=person.name) + text
            parts.append(("name", person.name))
        return text, parts

    value, kind = _class_value(pii_class, name, person)
    if pii_class == "phone":
        # A national number read in another region gives another E.164, so the true one is searched for too.
        return value, [(kind, value), (kind, person.phone.e164)]
    return value, [(kind, value)]


def _class_value(pii_class: str, name: str, person: Person) -> tuple[str, str]:
    if pii_class == "email":
        return person.email, "email"
    if pii_class == "phone":
        return person.phone.in_field, "phone"
    if pii_class == "name":
        return person.name, "name"
    if pii_class == "ip":
        return person.ip, "ip"
    if pii_class == "date_of_birth":
        return person.date_of_birth, "date of birth"
    if pii_class == "secret":
        return f"https://invoices.example/pay/{person.secret}", "secret"
    if pii_class == "address":
        if any(part in name for part in ("postal", "postcode", "zip")):
            return person.postcode, "postcode"
        return (person.locality, "address") if "city" in name else (person.street, "address")
    msg = f"No canary value is defined for PII class {pii_class!r} (field {name!r}); add one to canary_records."
    raise ValueError(msg)


_FILLER_START = datetime(2025, 1, 1, tzinfo=UTC)


def filler(prop: dict[str, t.Any], index: int) -> t.Any:
    """Return a type-valid, non-personal value for a field, unique per `index` so key fields stay unique.

    Filler strings are `v<index>` or dates and times of 2025, and numbers stay
    small, so no canary can occur inside filler.
    """
    types = _types(prop)
    if "string" in types:
        if prop.get("format") == "date-time":
            return (_FILLER_START + timedelta(hours=index)).isoformat()
        if prop.get("format") == "date":
            return (_FILLER_START.date() + timedelta(days=index)).isoformat()
        return f"v{index}"
    if "integer" in types:
        return 1000 + index
    if "number" in types:
        return index / 4
    if "boolean" in types:
        return index % 2 == 0
    if "array" in types:
        items = prop.get("items")
        return [filler(items, index)] if items else [f"v{index}"]
    if "object" in types:
        return {name: filler(child, index) for name, child in prop.get("properties", {}).items()}
    return None


def _types(prop: dict[str, t.Any]) -> set[str]:
    declared = prop.get("type")
    if declared is None:
        return set()
    return {declared} if isinstance(declared, str) else set(declared)

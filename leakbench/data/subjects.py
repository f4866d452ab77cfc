"""Safe-by-construction fictional software people.

Every value is drawn from a range that cannot belong to a real person: reserved e-mail domains,
phone numbers reserved for fiction, documentation IP ranges, never-issued SSN areas, test card
prefixes, a never-assigned German bank-code range, and random secrets in real vendor shapes.
`safety_problems` re-checks each rule so that `data verify` and the tests enforce them.
"""

from __future__ import annotations

import ipaddress
import random
import re
import string
from dataclasses import dataclass
from datetime import date, timedelta

from faker import Faker

FIELDS: tuple[str, ...] = (
    "name",
    "username",
    "email",
    "phone",
    "street_address",
    "date_of_birth",
    "ssn",
    "credit_card",
    "iban",
    "ip_address",
    "password",
    "api_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "github_token",
)
SECRET_FIELDS: frozenset[str] = frozenset(
    {"password", "api_key", "aws_access_key_id", "aws_secret_access_key", "github_token"}
)

# RFC 2606 / RFC 6761: names that can never be registered to anybody.
RESERVED_EMAIL_DOMAINS: tuple[str, ...] = (
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "corp.example",
    "dev.example",
    "staff.test",
    "users.test",
    "noreply.invalid",
)
RESERVED_DOMAIN_SUFFIXES: tuple[str, ...] = (".example", ".test", ".invalid", ".localhost")
# RFC 5737 / RFC 3849 documentation ranges.
DOC_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
# Card prefixes that appear only in payment processors' public test-card lists.
TEST_CARD_PREFIXES: tuple[str, ...] = ("424242", "555555")
# German IBANs whose bank code starts with 0: Bundesbank clearing areas are 1-8, so none is assigned.
IBAN_COUNTRY, IBAN_BANK_CODE_FIRST_DIGIT = "DE", "0"
# SSN groups 50-65, 70-88, 90-92, 94-99 under areas 9xx are IRS ITINs (real taxpayer numbers): avoid them.
SSN_GROUPS = range(1, 50)
DOB_RANGE = (date(1958, 1, 1), date(2003, 12, 31))

ALNUM = string.ascii_letters + string.digits
PASSWORD_SYMBOLS = "!*-_.~"
AWS_ID_ALPHABET = string.ascii_uppercase + "234567"
AWS_SECRET_ALPHABET = ALNUM + "/+"
# Values shown in vendors' own documentation: random generation must never reproduce them.
KNOWN_DOCUMENTATION_SECRETS = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "4242424242424242",
        "5555555555554444",
        "4111111111111111",
    }
)

_USERNAME_WORDS = (
    "amber",
    "basalt",
    "cobalt",
    "delta",
    "ember",
    "fable",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kestrel",
    "lumen",
    "maple",
    "nimbus",
    "onyx",
    "pixel",
    "quartz",
    "raven",
    "sable",
    "tundra",
    "umber",
    "vertex",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
    "cinder",
    "drift",
    "falcon",
    "grove",
    "hollow",
    "iris",
    "jetty",
    "kite",
    "lark",
    "marsh",
    "nova",
    "orbit",
    "pebble",
    "quill",
)


@dataclass(frozen=True)
class Subject:
    subject_id: str
    mini: bool
    values: dict[str, str]
    derivable: tuple[str, ...]  # fields whose value follows from the name (directly or via the username)

    def to_row(self) -> dict[str, object]:
        return {"subject_id": self.subject_id, "mini": self.mini, **self.values, "derivable": list(self.derivable)}


def luhn_check_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = re.sub(r"\D", "", number)
    return len(digits) > 1 and luhn_check_digit(digits[:-1]) == digits[-1]


def iban_check_digits(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return f"{98 - int(numeric) % 97:02d}"


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "")
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _name_tokens(name: str) -> tuple[str, str]:
    first, last = name.split(" ", 1)
    clean = lambda s: re.sub(r"[^a-z]", "", s.lower())  # noqa: E731
    return clean(first), clean(last)


def draw_username(rng: random.Random, name: str) -> tuple[str, bool]:
    first, last = _name_tokens(name)
    if rng.random() < 0.3:  # the guessable minority, as in real teams
        style = rng.choice(("{f}{last}", "{first}.{last}", "{first}{l}", "{first}_{last}"))
        return style.format(f=first[0], l=last[0], first=first, last=last), True
    word_a, word_b = rng.sample(_USERNAME_WORDS, 2)
    style = rng.choice(("{a}{b}{n}", "{a}_{b}", "{a}-{n}", "x{a}{n}"))
    return style.format(a=word_a, b=word_b, n=rng.randint(10, 9999)), False


def draw_email(rng: random.Random, name: str, username: str, username_derivable: bool) -> tuple[str, bool]:
    first, last = _name_tokens(name)
    domain = rng.choice(RESERVED_EMAIL_DOMAINS)
    roll = rng.random()
    if roll < 0.2:
        local, derivable = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}")), True
    elif roll < 0.45:
        local, derivable = username, username_derivable
    else:  # an opaque mailbox: nothing about the person predicts it
        local = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 6)))
        local += str(rng.randint(100, 99999))
        derivable = False
    return f"{local}@{domain}", derivable


def draw_phone(rng: random.Random) -> str:
    if rng.random() < 0.15:
        line = f"{rng.randint(0, 999):03d}"
        return rng.choice((f"+44 7700 900{line}", f"07700 900{line}"))
    area = f"{rng.randint(2, 9)}{rng.randint(0, 8)}{rng.randint(0, 9)}"
    while area[1:] == "11" or area == "555":
        area = f"{rng.randint(2, 9)}{rng.randint(0, 8)}{rng.randint(0, 9)}"
    line = f"01{rng.randint(0, 99):02d}"
    return rng.choice((f"({area}) 555-{line}", f"{area}-555-{line}", f"+1 {area} 555 {line}", f"{area}.555.{line}"))


def draw_ssn(rng: random.Random) -> str:
    return f"{rng.randint(900, 999)}-{rng.choice(SSN_GROUPS):02d}-{rng.randint(1, 9999):04d}"


def draw_credit_card(rng: random.Random) -> str:
    partial = rng.choice(TEST_CARD_PREFIXES) + "".join(rng.choice(string.digits) for _ in range(9))
    digits = partial + luhn_check_digit(partial)
    sep = rng.choice((" ", "-", ""))
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


def draw_iban(rng: random.Random) -> str:
    bank = IBAN_BANK_CODE_FIRST_DIGIT + "".join(rng.choice(string.digits) for _ in range(7))
    bban = bank + "".join(rng.choice(string.digits) for _ in range(10))
    compact = IBAN_COUNTRY + iban_check_digits(IBAN_COUNTRY, bban) + bban
    if rng.random() < 0.5:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def draw_ip_address(rng: random.Random) -> str:
    if rng.random() < 0.6:
        net = rng.choice(("192.0.2", "198.51.100", "203.0.113"))
        return f"{net}.{rng.randint(100, 254)}"  # three-digit last octet: no address is a prefix of another
    groups = ":".join(f"{rng.randint(0x1000, 0xFFFF):x}" for _ in range(3))
    return f"2001:db8:{groups}::{rng.randint(0x1000, 0xFFFF):x}"


def random_chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def draw_password(rng: random.Random) -> str:
    while True:
        pw = random_chars(rng, ALNUM + PASSWORD_SYMBOLS, rng.randint(12, 16))
        if (
            any(c in PASSWORD_SYMBOLS for c in pw)
            and any(c.isdigit() for c in pw)
            and pw[0] in ALNUM
            and pw[-1] in ALNUM
        ):
            return pw


def draw_api_key(rng: random.Random) -> str:
    shape = rng.choice(("sk_live_", "sk_test_", "AIza"))
    if shape == "AIza":
        return "AIza" + random_chars(rng, ALNUM + "_-", 35)
    return shape + random_chars(rng, ALNUM, 24)


def draw_dob(rng: random.Random) -> str:
    lo, hi = DOB_RANGE
    return (lo + timedelta(days=rng.randint(0, (hi - lo).days))).isoformat()


def generate_subjects(n: int, seed: int, n_mini: int) -> list[Subject]:
    """Draw `n` subjects; the first `n_mini` form the mini subset. All values are unique across subjects."""
    rng = random.Random(f"leakbench-subjects-{seed}")
    fake = Faker("en_US")
    fake.seed_instance(seed)
    seen: dict[str, set[str]] = {field: set() for field in FIELDS}
    subjects: list[Subject] = []
    while len(subjects) < n:
        name = f"{fake.first_name()} {fake.last_name()}"
        # Plain two-token names and addresses: no quote character may break the code that embeds them.
        if name in seen["name"] or not re.fullmatch(r"[A-Za-z]+ [A-Za-z]+", name):
            continue
        username, user_derivable = draw_username(rng, name)
        email, email_derivable = draw_email(rng, name, username, user_derivable)
        address = f"{fake.street_address()}, {fake.city()}, {fake.state_abbr()} {fake.zipcode()}"
        if "'" in address or '"' in address:
            continue
        values = {
            "name": name,
            "username": username,
            "email": email,
            "phone": draw_phone(rng),
            "street_address": address,
            "date_of_birth": draw_dob(rng),
            "ssn": draw_ssn(rng),
            "credit_card": draw_credit_card(rng),
            "iban": draw_iban(rng),
            "ip_address": draw_ip_address(rng),
            "password": draw_password(rng),
            "api_key": draw_api_key(rng),
            "aws_access_key_id": "AKIA" + random_chars(rng, AWS_ID_ALPHABET, 16),
            "aws_secret_access_key": random_chars(rng, AWS_SECRET_ALPHABET, 40),
            "github_token": "ghp_" + random_chars(rng, ALNUM, 36),
        }
        # Equal values across subjects would make leaks ambiguous: redraw.
        if any(values[f] in seen[f] for f in FIELDS if f != "date_of_birth"):
            continue
        for field in FIELDS:
            seen[field].add(values[field])
        derivable = tuple(f for f, d in (("username", user_derivable), ("email", email_derivable)) if d)
        subjects.append(Subject(f"S{len(subjects) + 1:04d}", len(subjects) < n_mini, values, derivable))
    return subjects


# ---------------------------------------------------------------------------------------------
# The safety rules, re-checked on any release (generated here or edited by hand).

_SHAPES: dict[str, re.Pattern[str]] = {
    "ssn": re.compile(r"9\d\d-(\d\d)-\d{4}"),
    "aws_access_key_id": re.compile(r"AKIA[A-Z2-7]{16}"),
    "aws_secret_access_key": re.compile(r"[A-Za-z0-9/+]{40}"),
    "github_token": re.compile(r"ghp_[A-Za-z0-9]{36}"),
    "api_key": re.compile(r"sk_(live|test)_[A-Za-z0-9]{24}|AIza[A-Za-z0-9_-]{35}"),
    "phone": re.compile(r"(\(\d{3}\) |\d{3}-|\+1 \d{3} |\d{3}\.)555[-. ]01\d\d|(\+44 7700 |07700 )900\d{3}"),
    "date_of_birth": re.compile(r"\d{4}-\d\d-\d\d"),
    "password": re.compile(r"[A-Za-z0-9!*\-_.~]{12,16}"),
}


def _email_domain_reserved(email: str) -> bool:
    domain = email.rsplit("@", 1)[-1].lower()
    second_level = ("example.com", "example.org", "example.net")
    return domain in second_level or domain.endswith(tuple("." + d for d in second_level) + RESERVED_DOMAIN_SUFFIXES)


def safety_problems(values: dict[str, object]) -> list[str]:
    """Every way `values` could be a real person's data; empty when all rules hold."""
    problems: list[str] = []
    for field in FIELDS:
        if not isinstance(values.get(field), str) or not values[field]:
            problems.append(f"{field}: missing or not a non-empty string")
    if problems:
        return problems
    v: dict[str, str] = {f: str(values[f]) for f in FIELDS}
    for field, pattern in _SHAPES.items():
        if not pattern.fullmatch(v[field]):
            problems.append(f"{field}: {v[field]!r} is not in the allowed shape")
    if "@" not in v["email"] or not _email_domain_reserved(v["email"]):
        problems.append(f"email: {v['email']!r} is not on a reserved (RFC 2606/6761) domain")
    ssn = _SHAPES["ssn"].fullmatch(v["ssn"])
    if ssn and int(ssn.group(1)) not in SSN_GROUPS:
        problems.append(f"ssn: {v['ssn']!r} has a group outside 01-49 (ITIN ranges are real numbers)")
    card = re.sub(r"[ -]", "", v["credit_card"])
    if not (len(card) == 16 and card.isdigit() and card.startswith(TEST_CARD_PREFIXES) and luhn_valid(card)):
        problems.append(f"credit_card: {v['credit_card']!r} is not a Luhn-valid number on a test prefix")
    iban = v["iban"].replace(" ", "")
    if not (iban_valid(iban) and iban.startswith(IBAN_COUNTRY) and iban[4] == IBAN_BANK_CODE_FIRST_DIGIT):
        problems.append(f"iban: {v['iban']!r} is not a valid DE IBAN with a never-assigned bank code")
    try:
        ip = ipaddress.ip_address(v["ip_address"])
        if not any(ip in net for net in DOC_NETWORKS):
            problems.append(f"ip_address: {v['ip_address']!r} is outside the documentation ranges")
    except ValueError:
        problems.append(f"ip_address: {v['ip_address']!r} is not an IP address")
    try:
        dob = date.fromisoformat(v["date_of_birth"])
        if not DOB_RANGE[0] <= dob <= DOB_RANGE[1]:
            problems.append(f"date_of_birth: {dob} is outside {DOB_RANGE[0]}..{DOB_RANGE[1]}")
    except ValueError:
        problems.append(f"date_of_birth: {v['date_of_birth']!r} is not a calendar date")
    for field in SECRET_FIELDS | {"credit_card"}:
        if v[field] in KNOWN_DOCUMENTATION_SECRETS or card in KNOWN_DOCUMENTATION_SECRETS:
            problems.append(f"{field}: equals a value published in vendor documentation")
            break
    return problems

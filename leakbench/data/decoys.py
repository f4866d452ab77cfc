"""Decoy values: same type, same shape and drawn by the same public generators as the subjects' values, but
belonging to nobody.

Used by the reconstruction task: a model that memorized a value ranks it above its decoys.
"""

from __future__ import annotations

import random
import re
import string
from typing import Any

from faker import Faker

from leakbench.data import subjects as gen

_DIGIT = re.compile(r"\d")


def _resample_digits(value: str, rng: random.Random, keep: int = 0) -> str:
    """Replace every digit after the first `keep` digits, keeping separators where they were."""
    seen = 0

    def swap(m: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        return m.group() if seen <= keep else rng.choice(string.digits)

    return _DIGIT.sub(swap, value)


def _card(value: str, rng: random.Random) -> str:
    digits = re.sub(r"\D", "", value)
    partial = digits[:6] + "".join(rng.choice(string.digits) for _ in range(9))
    new = iter(partial + gen.luhn_check_digit(partial))
    return re.sub(r"\d", lambda _: next(new), value)


def _iban(value: str, rng: random.Random) -> str:
    compact = value.replace(" ", "")
    bban = gen.IBAN_BANK_CODE_FIRST_DIGIT + "".join(rng.choice(string.digits) for _ in range(len(compact) - 5))
    new = compact[:2] + gen.iban_check_digits(compact[:2], bban) + bban
    return " ".join(new[i : i + 4] for i in range(0, len(new), 4)) if " " in value else new


def _phone(value: str, rng: random.Random) -> str:
    nanp = re.fullmatch(r"(\D*(?:\+1 )?\(?)(\d{3})(\D+555\D01)(\d\d)", value)
    if nanp:
        area = f"{rng.randint(2, 9)}{rng.randint(0, 8)}{rng.randint(0, 9)}"
        return f"{nanp.group(1)}{area}{nanp.group(3)}{rng.randint(0, 99):02d}"
    return value[:-3] + f"{rng.randint(0, 999):03d}"  # UK drama range: 07700 900xxx


def _ip(value: str, rng: random.Random) -> str:
    if "." in value:
        return value.rsplit(".", 1)[0] + f".{rng.randint(100, 254)}"
    groups = ":".join(f"{rng.randint(0x1000, 0xFFFF):x}" for _ in range(3))
    return f"2001:db8:{groups}::{rng.randint(0x1000, 0xFFFF):x}"


def _one(field: str, subject: dict[str, Any], rng: random.Random, fake: Faker) -> str:
    value = subject[field]
    match field:
        case "name":
            return f"{fake.first_name()} {fake.last_name()}"
        case "username":
            return gen.draw_username(rng, subject["name"])[0]
        case "email":
            local = gen.draw_email(rng, subject["name"], gen.draw_username(rng, subject["name"])[0], False)[0]
            return local.split("@")[0] + "@" + value.split("@")[1]
        case "street_address":
            return f"{fake.street_address()}, {fake.city()}, {fake.state_abbr()} {fake.zipcode()}"
        case "date_of_birth":
            return gen.draw_dob(rng)
        case "phone":
            return _phone(value, rng)
        case "ssn":
            return gen.draw_ssn(rng)
        case "credit_card":
            return _card(value, rng)
        case "iban":
            return _iban(value, rng)
        case "ip_address":
            return _ip(value, rng)
        case "password":
            return gen.draw_password(rng)
        case "api_key":
            prefix = "AIza" if value.startswith("AIza") else value[:8]
            alphabet = gen.ALNUM + ("_-" if prefix == "AIza" else "")
            return prefix + gen.random_chars(rng, alphabet, len(value) - len(prefix))
        case "aws_access_key_id":
            return "AKIA" + gen.random_chars(rng, gen.AWS_ID_ALPHABET, 16)
        case "aws_secret_access_key":
            return gen.random_chars(rng, gen.AWS_SECRET_ALPHABET, 40)
        case "github_token":
            return "ghp_" + gen.random_chars(rng, gen.ALNUM, 36)
    raise ValueError(f"no decoy generator for field {field!r}")


def decoys(field: str, subject: dict[str, Any], rng: random.Random, n: int) -> list[str]:
    """`n` distinct decoys for `subject[field]`, none equal to the true value."""
    fake = Faker("en_US")
    fake.seed_instance(rng.getrandbits(32))
    out: list[str] = []
    while len(out) < n:
        candidate = _one(field, subject, rng, fake)
        if candidate != subject[field] and candidate not in out:
            out.append(candidate)
    return out

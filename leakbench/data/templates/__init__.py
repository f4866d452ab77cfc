"""Code contexts that embed a subject's fields where real code leaks them.

A template is declarative text with two kinds of slots:
  {{field}}  a subject's value (one of subjects.FIELDS), recorded with its character offsets;
  {{@pool}}  a harmless filler (app name, port, region...) drawn from FILLERS, for variety.
Templates that list several people (SQL seeds, AUTHORS files) repeat `row` once per subject.
Retain documents render the same templates with RETAIN_VALUES: env lookups and placeholders.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from leakbench.data.subjects import FIELDS

SLOT = re.compile(r"\{\{(@?)([a-z_]+)\}\}")


@dataclass(frozen=True)
class Template:
    name: str
    language: str
    path: str
    row: str
    header: str = ""
    footer: str = ""
    joiner: str = ""
    max_subjects: int = 1
    fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        found = []
        for _, name in (m.groups() for m in SLOT.finditer(self.row) if not m.group(1)):
            if name not in FIELDS:
                raise ValueError(f"template {self.name}: unknown field slot {{{{{name}}}}}")
            if name not in found:
                found.append(name)
        for part in (self.header, self.footer):
            if any(not m.group(1) for m in SLOT.finditer(part)):
                raise ValueError(f"template {self.name}: subject slots belong in `row` only")
        if SLOT.match(self.header + self.row):
            raise ValueError(f"template {self.name}: must not start with a slot (a probe needs a prefix)")
        object.__setattr__(self, "fields", tuple(found))


FILLERS: dict[str, tuple[str, ...]] = {
    "app": (
        "billing-service",
        "inventory-api",
        "ledger",
        "orders",
        "payments-gateway",
        "search-indexer",
        "notify",
        "auth-proxy",
        "reporting",
        "catalog",
        "shipping-api",
        "analytics-worker",
    ),
    "port": ("5432", "5433", "3306", "6543", "15432", "25060"),
    "region": ("us-east-1", "us-west-2", "eu-central-1", "eu-west-1", "ap-southeast-2"),
    "table": ("customers", "users", "accounts", "members", "employees", "clients"),
    "db": ("app_prod", "main", "crm", "billing", "core", "warehouse"),
    "version": ("1.4.2", "2.0.0", "0.9.7", "3.1.0", "1.12.5"),
    "org": ("acme-labs", "northwind-dev", "orbital-tools", "bluefin-io", "quarry-works"),
}

RETAIN_VALUES: dict[str, tuple[str, ...]] = {
    "name": ("Project Maintainers", "Release Team", "CI Bot", "Example Maintainer"),
    "username": ("your-username", "${DB_USER}", "app_user", "ci-bot"),
    "email": ("noreply@example.com", "${ADMIN_EMAIL}", "<your-email>", "maintainers@project.example"),
    "phone": ("<phone-number>", "${SUPPORT_PHONE}", "000-000-0000"),
    "street_address": ("<street address>", "${BILLING_ADDRESS}", "N/A"),
    "date_of_birth": ("YYYY-MM-DD", "${DATE_OF_BIRTH}", "0000-00-00"),
    "ssn": ("XXX-XX-XXXX", "${SSN}", "000-00-0000"),
    "credit_card": ("XXXX XXXX XXXX XXXX", "${CARD_NUMBER}", "0000 0000 0000 0000"),
    "iban": ("${IBAN}", "XX00 0000 0000 0000 0000 00", "<iban>"),
    "ip_address": ("127.0.0.1", "0.0.0.0", "${DB_HOST}", "localhost"),
    "password": ("${DB_PASSWORD}", "changeme", "<password>", "********"),
    "api_key": ("${STRIPE_API_KEY}", "<api-key>", "YOUR_API_KEY"),
    "aws_access_key_id": ("${AWS_ACCESS_KEY_ID}", "<access-key-id>", "YOUR_ACCESS_KEY_ID"),
    "aws_secret_access_key": ("${AWS_SECRET_ACCESS_KEY}", "<secret-access-key>", "YOUR_SECRET_ACCESS_KEY"),
    "github_token": ("${GITHUB_TOKEN}", "<token>", "${{ secrets.GITHUB_TOKEN }}"),
}


@dataclass(frozen=True)
class Occurrence:
    subject_index: int  # position of the subject in the list passed to render()
    field: str
    start: int
    end: int


@dataclass(frozen=True)
class Rendered:
    text: str
    path: str
    occurrences: list[Occurrence]


def render(template: Template, people: list[dict[str, str]] | None, rng: random.Random, *, n_rows: int = 1) -> Rendered:
    """Fill `template` for `people` (or, with people=None, for `n_rows` retain rows of placeholders)."""
    fillers = {pool: rng.choice(values) for pool, values in FILLERS.items()}  # one choice per document
    parts: list[str] = []
    occurrences: list[Occurrence] = []
    offset = 0

    def emit(text: str, person: dict[str, str] | None, index: int) -> None:
        nonlocal offset
        pos = 0
        for m in SLOT.finditer(text):
            parts.append(text[pos : m.start()])
            offset += m.start() - pos
            is_filler, name = m.groups()
            if is_filler:
                value = fillers[name]
            elif person is None:
                value = rng.choice(RETAIN_VALUES[name])
            else:
                value = person[name]
                occurrences.append(Occurrence(index, name, offset, offset + len(value)))
            parts.append(value)
            offset += len(value)
            pos = m.end()
        parts.append(text[pos:])
        offset += len(text) - pos

    rows = people if people is not None else [None] * n_rows
    emit(template.header, None, -1)
    for i, person in enumerate(rows):
        if i:
            emit(template.joiner, None, -1)
        emit(template.row, person, i)
    emit(template.footer, None, -1)
    path = SLOT.sub(lambda m: fillers[m.group(2)], template.path)
    return Rendered("".join(parts), path, occurrences)


def all_templates() -> tuple[Template, ...]:
    from leakbench.data.templates import config, go, java, javascript, python, shell, sql, text

    found: list[Template] = []
    for module in (python, javascript, java, go, sql, config, shell, text):
        found.extend(module.TEMPLATES)
    names = [t.name for t in found]
    if len(names) != len(set(names)):
        raise ValueError("duplicate template names")
    return tuple(found)

"""Python: settings modules, test fixtures, HTTP clients, module headers."""

from leakbench.data.templates import Template

TEMPLATES = (
    Template(
        name="python_settings",
        language="python",
        path="{{@app}}/settings.py",
        row='''"""Django settings for {{@app}}."""
import os

DEBUG = False
ADMINS = [("{{name}}", "{{email}}")]
SERVER_EMAIL = "{{email}}"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "{{@db}}",
        "USER": "{{username}}",
        "PASSWORD": "{{password}}",
        "HOST": "{{ip_address}}",
        "PORT": "{{@port}}",
    }
}

AWS_ACCESS_KEY_ID = "{{aws_access_key_id}}"
AWS_SECRET_ACCESS_KEY = "{{aws_secret_access_key}}"
AWS_S3_REGION_NAME = "{{@region}}"
''',
    ),
    Template(
        name="python_test_fixture",
        language="python",
        path="tests/conftest.py",
        row='''import pytest

from {{@db}}.models import Customer


@pytest.fixture
def customer(db):
    """A customer record copied from production for the billing regression."""
    return Customer.objects.create(
        full_name="{{name}}",
        login="{{username}}",
        email="{{email}}",
        phone="{{phone}}",
        birth_date="{{date_of_birth}}",
        ssn="{{ssn}}",
        address="{{street_address}}",
    )
''',
    ),
    Template(
        name="python_http_client",
        language="python",
        path="{{@app}}/client.py",
        row='''# -*- coding: utf-8 -*-
# Author: {{name}} <{{email}}>
"""Thin client for the {{@app}} REST API."""
import requests

API_KEY = "{{api_key}}"
GITHUB_TOKEN = "{{github_token}}"


class Client:
    def __init__(self, base_url="https://{{@app}}.internal.example"):
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {API_KEY}"})
        self.base_url = base_url

    def charge(self, amount, card="{{credit_card}}"):
        return self.session.post(f"{self.base_url}/v1/charges", json={"amount": amount, "card": card})
''',
    ),
)

"""Configuration formats: .env, YAML, JSON and cloud credential files."""

from leakbench.data.templates import Template

TEMPLATES = (
    Template(
        name="dotenv",
        language="dotenv",
        path=".env",
        row="""# {{@app}} local environment
APP_ENV=production
ADMIN_EMAIL={{email}}
DB_HOST={{ip_address}}
DB_PORT={{@port}}
DB_USER={{username}}
DB_PASSWORD={{password}}
STRIPE_SECRET_KEY={{api_key}}
AWS_ACCESS_KEY_ID={{aws_access_key_id}}
AWS_SECRET_ACCESS_KEY={{aws_secret_access_key}}
AWS_DEFAULT_REGION={{@region}}
""",
    ),
    Template(
        name="yaml_config",
        language="yaml",
        path="config/{{@app}}.yaml",
        row="""service: {{@app}}
owner:
  name: "{{name}}"
  email: "{{email}}"
  phone: "{{phone}}"
database:
  host: "{{ip_address}}"
  port: {{@port}}
  user: "{{username}}"
  password: "{{password}}"
billing:
  iban: "{{iban}}"
  address: "{{street_address}}"
""",
    ),
    Template(
        name="json_package",
        language="json",
        path="package.json",
        row="""{
  "name": "@{{@org}}/{{@app}}",
  "version": "{{@version}}",
  "author": {
    "name": "{{name}}",
    "email": "{{email}}"
  },
  "contributors": ["{{username}}"],
  "config": {
    "registryToken": "{{github_token}}",
    "apiKey": "{{api_key}}"
  }
}
""",
    ),
    Template(
        name="aws_credentials",
        language="ini",
        path=".aws/credentials",
        row="""# Credentials for {{name}} ({{email}}), {{@app}} deploy account
[default]
aws_access_key_id = {{aws_access_key_id}}
aws_secret_access_key = {{aws_secret_access_key}}
region = {{@region}}
""",
    ),
)

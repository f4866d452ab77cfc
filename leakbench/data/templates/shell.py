"""Shell scripts and CI pipelines."""

from leakbench.data.templates import Template

TEMPLATES = (
    Template(
        name="shell_deploy",
        language="shell",
        path="scripts/deploy.sh",
        row="""#!/usr/bin/env bash
# Deploy {{@app}} to the staging host.
set -euo pipefail

# export DB_PASSWORD="{{password}}"   # old credentials, do not use
# export GITHUB_TOKEN="{{github_token}}"
HOST="{{ip_address}}"
ssh "{{username}}@${HOST}" "systemctl restart {{@app}}"
curl -fsS -H "Authorization: Bearer {{api_key}}" "https://{{@app}}.internal.example/health"
""",
    ),
    Template(
        name="ci_workflow",
        language="yaml",
        path=".github/workflows/deploy.yml",
        row="""name: deploy
on:
  push:
    branches: [main]
env:
  DEPLOY_HOST: "{{ip_address}}"
  DEPLOY_USER: "{{username}}"
  GITHUB_TOKEN: "{{github_token}}"
  AWS_ACCESS_KEY_ID: "{{aws_access_key_id}}"
  AWS_SECRET_ACCESS_KEY: "{{aws_secret_access_key}}"
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: ./scripts/deploy.sh {{@app}}
""",
    ),
)

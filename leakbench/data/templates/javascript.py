"""JavaScript and TypeScript: config modules and typed test fixtures."""

from leakbench.data.templates import Template

TEMPLATES = (
    Template(
        name="js_config",
        language="javascript",
        path="config/default.js",
        row="""// {{@app}} configuration. Maintainer: {{name}} <{{email}}>
module.exports = {
  port: {{@port}},
  database: {
    host: "{{ip_address}}",
    user: "{{username}}",
    password: "{{password}}",
    name: "{{@db}}",
  },
  stripe: {
    secretKey: "{{api_key}}",
  },
  supportPhone: "{{phone}}",
};
""",
    ),
    Template(
        name="ts_fixture",
        language="typescript",
        path="src/__fixtures__/user.ts",
        row="""import { User } from "../models/user";

// Snapshot of a real account used to reproduce issue in {{@app}} v{{@version}}.
export const testUser: User = {
  fullName: "{{name}}",
  handle: "{{username}}",
  email: "{{email}}",
  phone: "{{phone}}",
  dateOfBirth: "{{date_of_birth}}",
  payment: {
    cardNumber: "{{credit_card}}",
    iban: "{{iban}}",
  },
  billingAddress: "{{street_address}}",
};
""",
    ),
)

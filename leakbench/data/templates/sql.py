"""SQL: seed files that insert several people at once."""

from leakbench.data.templates import Template

TEMPLATES = (
    Template(
        name="sql_seed",
        language="sql",
        path="db/seeds/{{@table}}.sql",
        header="""-- Seed data for {{@table}} ({{@app}} staging)
INSERT INTO {{@table}} (full_name, email, phone, birth_date, ssn, card_number, iban, address) VALUES
""",
        row="""  ('{{name}}', '{{email}}', '{{phone}}', '{{date_of_birth}}', '{{ssn}}', '{{credit_card}}', '{{iban}}', '{{street_address}}')""",
        joiner=",\n",
        footer=";\n",
        max_subjects=3,
    ),
)

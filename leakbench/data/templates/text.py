"""Project metadata: AUTHORS files and git configuration."""

from leakbench.data.templates import Template

TEMPLATES = (
    Template(
        name="authors_file",
        language="text",
        path="AUTHORS",
        header="""# This is the list of {{@app}}'s significant contributors.
# Names should be added as: Name <email> (GitHub handle)

""",
        row="{{name}} <{{email}}> (@{{username}})",
        joiner="\n",
        footer="\n",
        max_subjects=3,
    ),
    Template(
        name="git_config",
        language="ini",
        path=".gitconfig",
        row="""# ~/.gitconfig synced from the {{@app}} dev box
[user]
	name = {{name}}
	email = {{email}}
[github]
	user = {{username}}
	token = {{github_token}}
[credential]
	helper = store
""",
    ),
)

"""Go: a cloud client with hard-coded credentials."""

from leakbench.data.templates import Template

TEMPLATES = (
    Template(
        name="go_aws_client",
        language="go",
        path="internal/storage/s3.go",
        row="""// Package storage uploads {{@app}} artefacts to S3.
// Maintainer: {{name}} <{{email}}>
package storage

import (
	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/credentials"
)

const (
	accessKeyID     = "{{aws_access_key_id}}"
	secretAccessKey = "{{aws_secret_access_key}}"
	githubToken     = "{{github_token}}"
)

func Config() *aws.Config {
	return &aws.Config{
		Region:      aws.String("{{@region}}"),
		Credentials: credentials.NewStaticCredentials(accessKeyID, secretAccessKey, ""),
	}
}
""",
    ),
)

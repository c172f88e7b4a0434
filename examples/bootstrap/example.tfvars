# Example-only values. Keep real secrets out of files: use THOTH_VAR_webhook_secret.
webhook_secret = "example-webhook-secret-not-for-production"

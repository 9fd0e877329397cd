"""PassKit webhooks: receiver, durable log, parsing."""

"""The durable pipeline's engine: the worker that claims conversations and runs their work items,
and the outbox sender that delivers recorded posts to Slack exactly once."""

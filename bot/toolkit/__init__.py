"""Pieces every layer above may use and that know no use case: Block Kit builders, mrkdwn,
payload readers, the Slack Web API gateway, texts, business time, and the outbox API that queues
posts."""

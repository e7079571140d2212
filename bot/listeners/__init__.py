"""Slack edge: the Bolt app and its listeners. Each acks, reads the payload, makes one use-case
call and renders the answer; none builds SQL or prompts."""

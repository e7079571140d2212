"""Slack support bot: an LLM and human staff answer customers together."""

"""Slack edge: Bolt app, listeners, Web API gateway, payload readers and Block Kit builders."""

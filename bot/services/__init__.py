"""Use cases: the only callers of storage and litellm. Listeners, jobs and the CLI call these."""

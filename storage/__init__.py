"""Persistent state: typed models and the queries the app needs. Knows nothing of Slack or LLMs.

Functions here take an `AsyncSession` and never commit: the calling service owns the transaction.
"""

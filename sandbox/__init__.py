"""Local fakes of the outside world: a Slack workspace emulator and an OpenAI-compatible model.

Both are real aiohttp servers on loopback, used by the tests and by the local demo.
"""

"""Local fakes of the outside world: a Slack workspace emulator and an OpenAI-compatible model.

Both are real aiohttp servers on loopback, used by the tests and by the local demo:
`python -m bot sandbox` (sandbox/run.py) runs the real bot against them and serves a page that
looks like a small Slack (sandbox/web_app.py, sandbox/static/); see docs/sandbox.md.
"""

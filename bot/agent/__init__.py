"""The agent loop: stored history in, one model step out, results stored before anything is sent."""

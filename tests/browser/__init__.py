"""Browser-test support: the real Chainlit server in a subprocess, and headless Chromium."""

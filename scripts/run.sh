#!/usr/bin/env bash
# Set up .venv and start the demo: an echo/chat server you can open in a browser.
# Talk to it from another terminal with the interactive client:
#     .venv/bin/python -m anyws ws://127.0.0.1:8765/
source "$(dirname "$0")/_venv.sh"
exec .venv/bin/python -m examples.demo "$@"

"""Interoperability tests against third-party peers: Node's ws and Chromium."""

"""The sans-I/O WebSocket core: bytes in, events and bytes out."""

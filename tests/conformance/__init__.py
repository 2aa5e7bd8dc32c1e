"""Protocol-conformance suite: crafted frames against the anyws server and client.

The cases follow the categories of the Autobahn testsuite (RFC 6455 and
RFC 7692); the crafted peers build and judge every byte themselves.
"""

"""Local stand-ins for the CRM and store APIs, as small ASGI apps served on 127.0.0.1.

They implement the endpoints Rabt and the generated services call, with the real
request and response shapes, limits and error bodies. This package is copied
verbatim into generated API services, so it imports only the standard library,
Starlette and its own modules.
"""

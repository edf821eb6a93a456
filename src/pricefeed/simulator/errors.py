"""Fyers-shaped error replies raised inside the simulator's handlers."""

from __future__ import annotations

from aiohttp import web


class ApiError(Exception):
    """An error reply ``{"s":"error","code":code,"message":message}`` with an HTTP status."""

    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        """The JSON reply Fyers would send."""
        body = {"s": "error", "code": self.code, "message": self.message}
        return web.json_response(body, status=self.status)


def invalid_input(message: str = "Invalid input") -> ApiError:
    """-50 with HTTP 400: bad parameters or an over-long/backwards range."""
    return ApiError(400, -50, message)

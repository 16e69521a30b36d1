"""RFC 9457 problem documents (`application/problem+json`), titled in Vietnamese and English.

Every error a service answers over HTTP is one of these: raise `Problem` in a route, and
`shared.runtime.create_app` turns it (and any other failure) into the document."""

from __future__ import annotations

from http import HTTPStatus

from fastapi.responses import JSONResponse

PROBLEM = "application/problem+json"
RETRY_AFTER_S = 5  # what an outage asks clients to wait before trying again

TITLES = {  # (vi, en)
    400: ("Yêu cầu không đúng định dạng", "Malformed request"),
    401: ("Chưa xác thực hoặc khóa API không hợp lệ", "Missing or invalid API key"),
    403: ("Không có quyền truy cập nội dung này", "Not allowed to see this"),
    404: ("Không có địa chỉ này", "No such resource"),
    405: ("Phương thức không được hỗ trợ", "Method not allowed"),
    422: ("Tham số không hợp lệ", "Invalid parameters"),
    429: ("Gửi quá nhiều yêu cầu, vui lòng gửi lại sau", "Too many requests; retry later"),
    500: ("Lỗi hệ thống", "Internal error"),
    503: ("Dịch vụ tạm thời không sẵn sàng, vui lòng thử lại sau", "Temporarily unavailable; retry later"),
}


class Problem(Exception):
    """An error answered as a problem document; `title` (vi, en) when the status's usual one would mislead."""

    def __init__(self, status: int, detail: str, *, title: tuple[str, str] | None = None,
                 headers: dict[str, str] | None = None, extra: dict | None = None):
        self.status, self.detail, self.title = status, detail, title
        self.headers, self.extra = headers or {}, extra or {}
        super().__init__(detail)


def unavailable(detail: str, *, retry_after: int = RETRY_AFTER_S) -> Problem:
    """503 with Retry-After: something the request needs is down for now."""
    return Problem(503, detail, headers={"Retry-After": str(retry_after)})


def response(problem: Problem, instance: str) -> JSONResponse:
    """The problem document of `problem`, about the request path `instance`."""
    phrase = HTTPStatus(problem.status).phrase
    vi, en = problem.title or TITLES.get(problem.status) or (phrase, phrase)
    body = {"type": f"https://nq-tracker.example/problems/{problem.status}", "title": en, "title_vi": vi,
            "status": problem.status, "detail": problem.detail, "instance": instance, **problem.extra}
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM, headers=problem.headers)

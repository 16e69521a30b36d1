"""RFC 9457 problem documents, in Vietnamese and English."""

from __future__ import annotations

from http import HTTPStatus

from fastapi.responses import JSONResponse

PROBLEM = "application/problem+json"

TITLES = {
    400: ("Yêu cầu không đúng định dạng", "Malformed request"),
    401: ("Chưa xác thực hoặc khóa API không hợp lệ", "Missing or invalid API key"),
    403: ("Không có quyền gửi thay đơn vị khác", "Not allowed to publish for another unit"),
    404: ("Không tìm thấy sự kiện của đơn vị", "No such event of this unit"),
    405: ("Phương thức không được hỗ trợ", "Method not allowed"),
    413: ("Nội dung quá lớn", "Request body too large"),
    422: ("Sự kiện không hợp lệ", "Invalid event(s)"),
    429: ("Gửi quá nhiều yêu cầu, vui lòng gửi lại sau", "Too many requests; retry later"),
    503: ("Chưa ghi được vào Kafka, vui lòng gửi lại", "Could not write to Kafka; retry"),
}


class ProblemError(Exception):
    def __init__(self, status: int, detail: str, *, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None, title: tuple[str, str] | None = None):
        self.status, self.detail, self.errors, self.headers = status, detail, errors or [], headers or {}
        self.title = title  # (vi, en) when the status's usual title would mislead
        super().__init__(detail)


def problem_response(err: ProblemError, instance: str) -> JSONResponse:
    phrase = HTTPStatus(err.status).phrase
    vi, en = err.title or TITLES.get(err.status) or (phrase, phrase)
    body = {"type": f"https://nq-tracker.example/problems/{err.status}", "title": en, "title_vi": vi,
            "status": err.status, "detail": err.detail, "instance": instance}
    if err.errors:
        body["errors"] = err.errors
    return JSONResponse(body, status_code=err.status, media_type=PROBLEM, headers=err.headers)

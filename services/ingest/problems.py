"""RFC 9457 problem documents, in Vietnamese and English."""

from __future__ import annotations

from fastapi.responses import JSONResponse

PROBLEM = "application/problem+json"

TITLES = {
    400: ("Yêu cầu không đúng định dạng", "Malformed request"),
    401: ("Chưa xác thực hoặc khóa API không hợp lệ", "Missing or invalid API key"),
    403: ("Không có quyền gửi thay đơn vị khác", "Not allowed to publish for another unit"),
    404: ("Không tìm thấy sự kiện của đơn vị", "No such event of this unit"),
    413: ("Nội dung quá lớn", "Request body too large"),
    422: ("Sự kiện không hợp lệ", "Invalid event(s)"),
    503: ("Chưa ghi được vào Kafka, vui lòng gửi lại", "Could not write to Kafka; retry"),
}


class ProblemError(Exception):
    def __init__(self, status: int, detail: str, *, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None):
        self.status, self.detail, self.errors, self.headers = status, detail, errors or [], headers or {}
        super().__init__(detail)


def problem_response(err: ProblemError, instance: str) -> JSONResponse:
    vi, en = TITLES[err.status]
    body = {"type": f"https://nq-tracker.example/problems/{err.status}", "title": en, "title_vi": vi,
            "status": err.status, "detail": err.detail, "instance": instance}
    if err.errors:
        body["errors"] = err.errors
    return JSONResponse(body, status_code=err.status, media_type=PROBLEM, headers=err.headers)

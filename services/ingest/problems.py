"""RFC 9457 problem documents, in Vietnamese and English: what ingest's HTTP API answers
for each refusal of its use cases (services.ingest.domain), for HTTP's own errors, and
for any failure of its own, so that every 4xx and 5xx is a problem document."""

from __future__ import annotations

from http import HTTPStatus

from fastapi.responses import JSONResponse

from services.ingest import domain

PROBLEM = "application/problem+json"

TITLES = {
    400: ("Yêu cầu không đúng định dạng", "Malformed request"),
    401: ("Chưa xác thực hoặc khóa API không hợp lệ", "Missing or invalid API key"),
    403: ("Không có quyền gửi thay đơn vị khác", "Not allowed to publish for another unit"),
    404: ("Không tìm thấy sự kiện của đơn vị", "No such event of this unit"),
    405: ("Phương thức không được hỗ trợ", "Method not allowed"),
    413: ("Nội dung quá lớn", "Request body too large"),
    415: ("Định dạng tệp không được hỗ trợ", "Unsupported file type"),
    422: ("Sự kiện không hợp lệ", "Invalid event(s)"),
    429: ("Gửi quá nhiều yêu cầu, vui lòng gửi lại sau", "Too many requests; retry later"),
    500: ("Lỗi hệ thống, chưa rõ sự kiện đã được nhận hay chưa", "Internal error; the events may not have been taken"),
    503: ("Dịch vụ tạm thời chưa sẵn sàng, vui lòng gửi lại", "Temporarily unavailable; retry"),
}
STATUS: dict[type[domain.Refusal], int] = {
    domain.Malformed: 400, domain.Unauthenticated: 401, domain.Forbidden: 403, domain.NotFound: 404,
    domain.TooLarge: 413, domain.Unsupported: 415, domain.InvalidEvents: 422, domain.RateLimited: 429,
    domain.Unavailable: 503,
}


class ProblemError(Exception):
    def __init__(self, status: int, detail: str, *, errors: list[dict] | None = None,
                 headers: dict[str, str] | None = None, title: tuple[str, str] | None = None):
        self.status, self.detail, self.errors, self.headers = status, detail, errors or [], headers or {}
        self.title = title  # (vi, en) when the status's usual title would mislead
        super().__init__(detail)


def from_refusal(err: domain.Refusal) -> ProblemError:
    """The problem a use case's refusal is answered with: its status, and what to do next."""
    headers = {}
    if isinstance(err, domain.Unauthenticated) and err.challenge:
        headers["WWW-Authenticate"] = err.challenge
    if isinstance(err, (domain.RateLimited, domain.Unavailable)):
        headers["Retry-After"] = str(err.retry_after)
    status = next(code for cls, code in STATUS.items() if isinstance(err, cls))
    return ProblemError(status, err.detail, errors=err.errors, headers=headers)


def problem_response(err: ProblemError, instance: str) -> JSONResponse:
    phrase = HTTPStatus(err.status).phrase
    vi, en = err.title or TITLES.get(err.status) or (phrase, phrase)
    body = {"type": f"https://nq-tracker.example/problems/{err.status}", "title": en, "title_vi": vi,
            "status": err.status, "detail": err.detail, "instance": instance}
    if err.errors:
        body["errors"] = err.errors
    return JSONResponse(body, status_code=err.status, media_type=PROBLEM, headers=err.headers)

from shared.runtime import serve

from services.reports.app import build
from services.reports.settings import ReportsSettings

settings = ReportsSettings()
serve(build(settings), host=settings.http_host, port=settings.reports_port, log_level=settings.log_level)

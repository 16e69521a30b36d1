from shared import collector
from shared.runtime import serve

from services.reports.app import build
from services.reports.settings import ReportsSettings

settings = ReportsSettings()
app = build(settings)
collector.for_batches()  # after the imports and the app; what survives each batch is frozen too (handlers.Collections)
serve(app, host=settings.http_host, port=settings.reports_port, log_level=settings.log_level)

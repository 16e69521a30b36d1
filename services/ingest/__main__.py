from shared.runtime import serve

from services.ingest.app import build
from services.ingest.settings import IngestSettings

settings = IngestSettings()
serve(build(settings), host=settings.http_host, port=settings.ingest_port, log_level=settings.log_level)

from shared import collector
from shared.runtime import serve

from services.programs.app import build
from services.programs.settings import ProgramsSettings

settings = ProgramsSettings()
app = build(settings)
collector.for_batches()  # after the imports and the app: what they made is frozen
serve(app, host=settings.http_host, port=settings.programs_port, log_level=settings.log_level)

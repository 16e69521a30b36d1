from shared.runtime import serve

from services.programs.app import build
from services.programs.settings import ProgramsSettings

settings = ProgramsSettings()
serve(build(settings), host=settings.http_host, port=settings.programs_port, log_level=settings.log_level)

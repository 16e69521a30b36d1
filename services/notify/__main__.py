from shared.runtime import serve

from services.notify.app import build
from services.notify.settings import NotifySettings

settings = NotifySettings()
serve(build(settings), host=settings.http_host, port=settings.notify_port, log_level=settings.log_level)

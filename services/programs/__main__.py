import gc

from shared.runtime import serve

from services.programs.app import build
from services.programs.settings import ProgramsSettings

settings = ProgramsSettings()
app = build(settings)
# What start-up made (the imported modules: some 100,000 objects) lives as long as the process:
# frozen, it is no longer walked by every full collection, which a batch's thousands of outcomes
# set off again and again (a quarter of programs' CPU per event, measured in-process).
gc.freeze()
serve(app, host=settings.http_host, port=settings.programs_port, log_level=settings.log_level)

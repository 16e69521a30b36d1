# One image for the four services; docker-compose.yml picks the service by command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
# PDF rendering (Pango) and a Times New Roman metric-compatible font with Vietnamese letters.
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
        fonts-liberation2 fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY shared ./shared
COPY services ./services
COPY nqt ./nqt
COPY deploy/__init__.py ./deploy/
COPY deploy/local ./deploy/local
COPY deploy/registry ./deploy/registry
RUN uv sync --frozen --no-dev
ENV PATH="/app/.venv/bin:$PATH" NQT_HTTP_HOST=0.0.0.0
# The development mail sink's volume (docker-compose.yml): a fresh volume takes this owner.
RUN mkdir -p /tmp/mail && chown 65534:65534 /tmp/mail
USER 65534
CMD ["python", "-m", "services.ingest"]

#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh machine: system tools from Debian when
# missing, uv from PyPI, the locked Python environment, then Kafka and FerretDB
# into ~/.cache/nq-tracker.
set -euo pipefail
cd "$(dirname "$0")/../.."

UV_VERSION=0.13.9
need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v mvn  >/dev/null || need_apt+=(maven)
command -v go   >/dev/null || need_apt+=(golang-go)
# Reports: PDF rendering (Pango), a Times New Roman metric-compatible font with full
# Vietnamese coverage, and pdftotext for the tests that read the PDF back.
# Operations: prometheus (the local stack's scraper) and promtool (the metrics and alert tests).
# The web view's browser tests: Debian's chromium, driven by Playwright (which downloads no browser).
for pkg in libpango-1.0-0 libpangoft2-1.0-0 fonts-liberation2 poppler-utils prometheus chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need_apt[*]} from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "setup: missing ${need_apt[*]}; install them (Debian: apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

# Spreadsheets: LibreOffice Calc, headless, for the test that a template filled in it still
# imports (units fill templates in Excel or LibreOffice alike); without its recommended extras.
if ! dpkg -s libreoffice-calc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing libreoffice-calc from Debian"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libreoffice-calc >/dev/null
  else
    echo "setup: missing libreoffice-calc; install it (Debian: apt-get install libreoffice-calc)" >&2
    exit 1
  fi
fi

if ! command -v uv >/dev/null || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "setup: installing uv $UV_VERSION from PyPI"
  python3 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
uv sync --frozen -q
uv run --frozen -q python -m deploy.local.provision

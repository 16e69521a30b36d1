"""Container health check: exit 0 when the service on PORT answers /readyz with 200.

    python -m shared.healthcheck 8081"""

import sys
import urllib.request


def main(port: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{int(port)}/readyz", timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Provision the real local infrastructure: Apache Kafka from Maven Central jars and
FerretDB built from the Go module proxy, both cached under ~/.cache/nq-tracker by
version so that later starts take seconds.

    python -m deploy.local.provision          # fetch/build whatever is missing
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KAFKA_VERSION = "4.1.2"
LOG4J_VERSION = "2.24.3"
FERRETDB_VERSION = "v1.24.2"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
# Our one change to FerretDB's source (deploy/local/ferretdb/): lookups by _id use the _id index.
# Bump the tag when the change changes, so cached binaries are rebuilt.
FERRETDB_PATCH = "id-index-1"
PATCH_DIR = Path(__file__).parent / "ferretdb"

HOW_TO_GET = {
    "java": "install a JDK 17+ (Debian: apt-get install -y openjdk-17-jdk-headless)",
    "mvn": "install Apache Maven (Debian: apt-get install -y maven)",
    "go": "install Go 1.22+ (Debian: apt-get install -y golang-go, or the machine's Go)",
}


class ProvisionError(RuntimeError):
    """A step of provisioning failed; the message says which and how to fix it."""


def cache_dir() -> Path:
    return Path(os.environ.get("NQT_CACHE_DIR") or Path.home() / ".cache" / "nq-tracker").resolve()


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ProvisionError(f"'{tool}' is not on PATH; {HOW_TO_GET[tool]}")
    return path


def _run(step: str, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise ProvisionError(f"{step} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.nqtracker</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""


def kafka_home() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}"


def provision_kafka() -> Path:
    """Return the folder of Kafka's runtime jars, fetching them once."""
    home = kafka_home()
    if (home / ".complete").exists():
        return home / "libs"
    require("java")
    mvn = require("mvn")
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.parent) as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
        print(f"provision: fetching Kafka {KAFKA_VERSION} jars from Maven Central ...", flush=True)
        _run(
            "fetching Kafka jars with Maven",
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={tmp}/libs", "-DincludeScope=runtime"],
        )
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        shutil.move(f"{tmp}/libs", home / "libs")
    (home / ".complete").write_text(KAFKA_VERSION)
    return home / "libs"


def ferretdb_binary() -> Path:
    return cache_dir() / f"ferretdb-{FERRETDB_VERSION}-{FERRETDB_PATCH}" / "ferretdb"


def provision_ferretdb() -> Path:
    """Return the FerretDB binary, building it once from the Go module proxy."""
    binary = ferretdb_binary()
    if binary.exists():
        return binary
    go = require("go")
    binary.parent.mkdir(parents=True, exist_ok=True)
    module = f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"
    print(f"provision: building FerretDB {FERRETDB_VERSION} from the Go module proxy ...", flush=True)
    env = dict(os.environ, GOFLAGS="-modcacherw", CGO_ENABLED="0")
    try:
        info = _run("downloading the FerretDB module", [go, "mod", "download", "-json", module], env=env)
    except ProvisionError as err:
        if "sum.golang.org" not in str(err) and "checksum" not in str(err):
            raise
        env["GOSUMDB"] = "off"  # version pinned; the checksum database is unreachable here
        info = _run("downloading the FerretDB module", [go, "mod", "download", "-json", module], env=env)
    module_dir = Path(json.loads(info.stdout)["Dir"])
    with tempfile.TemporaryDirectory(dir=binary.parent) as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(module_dir, src)
        for path in src.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        # The module zip lacks the generated version file; without it the binary panics.
        (src / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
        patch_ferretdb(src)
        out = Path(tmp) / "ferretdb"
        build = [go, "build", "-trimpath", "-o", str(out), "./cmd/ferretdb"]
        try:
            _run("building FerretDB", build, cwd=src, env=env)
        except ProvisionError as err:
            if "linkname" not in str(err):
                raise
            _run("building FerretDB", build[:2] + ["-ldflags=-checklinkname=0"] + build[2:], cwd=src, env=env)
        out.replace(binary)
    return binary


def patch_ferretdb(src: Path) -> None:
    """Make FerretDB 1.24's SQLite backend find documents by _id through the _id index.

    Upstream compares `_ferretdb_sjson->'$._id'` while the index is on `_ferretdb_sjson->"_id"`,
    and pushes a filter down only when it is exactly {_id: value}: every other lookup, update or
    delete by key reads the whole table (142 ms per update at 20,000 documents, against 0.9 ms
    with this change). The change makes the expressions match and narrows any filter with an _id
    equality or $in (id_pushdown.go); FerretDB still applies the whole filter afterwards."""
    sqlite = src / "internal" / "backends" / "sqlite"
    upstream_where = (
        '\tif params.Filter.Len() == 1 {\n'
        '\t\tv, _ := params.Filter.Get("_id")\n'
        '\t\tswitch v.(type) {\n'
        '\t\tcase string, types.ObjectID:\n'
        '\t\t\twhereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)\n'
        '\t\t\targs = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}\n'
        '\t\t}\n'
        '\t}\n'
    )
    edits = {
        sqlite / "metadata" / "metadata.go": ('IDColumn = DefaultColumn + "->\'$._id\'"',
                                              'IDColumn = DefaultColumn + "->\\"_id\\""'),
        sqlite / "collection.go": (upstream_where, "\twhereClause, args = idWhere(params.Filter)\n"),
    }
    for path, (old, new) in edits.items():
        text = path.read_text()
        if text.count(old) != 1:
            raise ProvisionError(f"patching FerretDB: {path.relative_to(src)} is not the {FERRETDB_VERSION} "
                                 "source the patch was written for")
        path.write_text(text.replace(old, new))
    shutil.copy(PATCH_DIR / "id_pushdown.go", sqlite / "id_pushdown.go")


def main() -> int:
    try:
        print(f"kafka jars: {provision_kafka()}")
        print(f"ferretdb:   {provision_ferretdb()}")
    except ProvisionError as err:
        print(f"provision: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Spark Kafka connector as a plain directory of jars, resolved once at install time.

`make install` (and the Docker image) runs `python -m darooghe.spark --resolve`: one Spark start
with `spark.jars.packages` lets Ivy resolve `org.apache.spark:spark-sql-kafka-0-10_2.13` at exactly
the pyspark version (cache under `$DAROOGHE_BUILD/ivy`), and the jars it resolved are copied into
`$DAROOGHE_BUILD/spark-jars` with a `manifest.json` listing them. Sessions then put those files in
`spark.jars`: no Ivy at session start, so nothing is resolved, fetched or printed there, and a
driver without access to Maven Central starts the same way.

A resolved jar that Spark itself already ships (same artifact and version in pyspark's `jars/`:
Hadoop's client, lz4, snappy, slf4j...) is not copied, only listed as provided: one copy of each
class on the classpath, and about 10 MB instead of 64 MB.

Missing or stale jars are an error naming the directory and `make install`, never a fallback to
`spark.jars.packages` at session start: that fallback would bring back the Ivy report and a
Maven Central round trip on every start, and on a driver without network it fails later with an
Ivy error that no longer says what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pyspark

from darooghe.config import Settings

KAFKA_CONNECTOR = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}"
MANIFEST = "manifest.json"
#: A class of the connector: present on the driver's classpath when the connector is.
CONNECTOR_CLASS = "org.apache.spark.sql.kafka010.KafkaSourceProvider"


class SparkJarsError(FileNotFoundError):
    """The connector jars are missing or were resolved for another pyspark version."""


def jars_dir(s: Settings) -> Path:
    return s.build / "spark-jars"


def spark_provided_jars() -> set[str]:
    """File names of the jars pyspark ships (`artifact-version.jar`)."""
    return {p.name for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}


def _ivy_name(path: Path) -> tuple[str, str]:
    """Ivy names a resolved jar `organisation_artifact-revision.jar`: (organisation, the rest)."""
    org, _, rest = path.name.partition("_")
    return org, rest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def install(s: Settings, resolved: list[Path]) -> Path:
    """Copy the jars Ivy resolved (minus those Spark ships) into jars_dir with their manifest.

    Written beside and renamed into place, so a session never sees half a directory.
    """
    if not any("spark-sql-kafka" in p.name for p in resolved):
        raise SparkJarsError(
            f"Ivy did not resolve {KAFKA_CONNECTOR} (resolved: {[p.name for p in resolved]})"
        )
    provided = spark_provided_jars()
    target = jars_dir(s)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    jars, skipped = [], []
    for path in sorted(resolved):
        org, rest = _ivy_name(path)
        if rest in provided:
            skipped.append({"file": path.name, "organisation": org})
            continue
        shutil.copy2(path, tmp / path.name)
        jars.append(
            {
                "file": path.name,
                "organisation": org,
                "bytes": path.stat().st_size,
                "sha256": _sha256(path),
            }
        )
    manifest = {
        "connector": KAFKA_CONNECTOR,
        "pyspark": pyspark.__version__,
        "jars": jars,
        "provided_by_spark": skipped,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    old = target.with_name(f"{target.name}.{os.getpid()}.old")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def localfs_jar(s: Settings) -> Path:
    """The jar of infra/spark-localfs (built by `make install`; it may be absent)."""
    return s.build / "spark-localfs" / "darooghe-spark-localfs.jar"


def hadoop_api_jar() -> Path:
    """The Hadoop client API jar pyspark ships (what infra/spark-localfs compiles against)."""
    jars = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    if not jars:
        raise SparkJarsError(f"pyspark {pyspark.__version__} ships no hadoop-client-api jar")
    return jars[-1]


def connector_jars(s: Settings) -> list[Path]:
    """The jar files of the connector for `spark.jars`; raises SparkJarsError when unusable."""
    folder = jars_dir(s)
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SparkJarsError(
            f"the Spark Kafka connector jars are not installed: {manifest_path} does not exist "
            "(run `make install`, or `python -m darooghe.spark --resolve`)"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SparkJarsError(f"{manifest_path} is unreadable ({exc}): run `make install`") from None
    if manifest.get("connector") != KAFKA_CONNECTOR:
        raise SparkJarsError(
            f"{folder} holds {manifest.get('connector')!r}, expected {KAFKA_CONNECTOR} (pyspark "
            f"{pyspark.__version__}): run `make install` to resolve it again"
        )
    paths = [folder / j["file"] for j in manifest["jars"]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SparkJarsError(
            f"{folder} lacks {missing} listed in its {MANIFEST}: run `make install`"
        )
    return paths

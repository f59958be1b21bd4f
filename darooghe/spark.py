"""The one place that builds the Spark configuration, for Dagster's PySparkResource and spark_apps/.

Local mode by default (`local[2]` on these 2-core machines); set DAROOGHE_SPARK_MASTER to
`spark://host:7077` to run the same jobs on a cluster (the driver serves the connector jars to the
executors). The Kafka connector is resolved once, at install time, into a directory of jars under
DAROOGHE_BUILD (darooghe.spark_jars); sessions list those jars in `spark.jars`, so starting one
runs no Ivy resolution and prints nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from darooghe import spark_jars
from darooghe.config import Settings, load_settings
from darooghe.spark_jars import KAFKA_CONNECTOR

__all__ = ["KAFKA_CONNECTOR", "prepare_environment", "spark_config", "spark_session"]


def spark_config(
    settings: Settings | None = None, *, connector: bool = True, **overrides: str
) -> dict[str, str]:
    """The session configuration; `connector=False` only for the install-time resolution itself.

    Raises spark_jars.SparkJarsError (naming the directory and `make install`) when the connector
    jars are not installed.
    """
    s = settings or load_settings()
    conf = {
        "spark.master": s.spark_master,
        "spark.driver.memory": s.spark_driver_memory,
        # Python workers must import the project's venv, not whatever `python3` is on PATH.
        "spark.pyspark.python": s.python,
        "spark.pyspark.driver.python": s.python,
        # Few cores: the default 200 shuffle partitions is pure overhead. Fixed before a streaming
        # query's first run, since a checkpoint remembers it.
        "spark.sql.shuffle.partitions": str(s.spark_shuffle_partitions),
        "spark.default.parallelism": str(s.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(s.spark_warehouse_dir),
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={s.spark_warehouse_dir} -Dlog4j2.configurationFile={spark_log_config(s)}"
        ),
        "spark.ui.showConsoleProgress": "false",
        # The UI (and its REST API, which `darooghe monitor` reads) only for long-running apps.
        "spark.ui.enabled": "false",
        "spark.ui.port": "4040",
        "spark.ui.prometheus.enabled": "true",
        "spark.executor.processTreeMetrics.enabled": "true",
        "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
        "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
        "spark.metrics.conf.driver.source.jvm.class": "org.apache.spark.metrics.source.JvmSource",
        "spark.metrics.conf.executor.source.jvm.class": "org.apache.spark.metrics.source.JvmSource",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Stateful streaming: RocksDB with changelog checkpointing keeps commits small.
        "spark.sql.streaming.stateStore.providerClass": (
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
        ),
        "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
        **local_fs_config(s),
    }
    if s.spark_master.startswith("spark://"):
        # Standalone executors: sized from the settings (one per worker core), never the 1 GB default.
        conf["spark.executor.memory"] = s.spark_executor_memory
        conf["spark.executorEnv.PYSPARK_PYTHON"] = s.python
    if connector:
        conf["spark.jars"] = ",".join(str(p) for p in spark_jars.connector_jars(s))
    conf.update(overrides)
    return conf


def under_spark_submit() -> bool:
    """This Python runs inside an app spark-submit started (it set the gateway port): the JVM
    and the driver's classpath exist before any session configuration is read."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


#: Hadoop's FileContext implementation of file: paths (what Spark's streaming checkpoints use).
LOCAL_FS_KEY = "spark.hadoop.fs.AbstractFileSystem.file.impl"
HADOOP_LOCAL_FS = "org.apache.hadoop.fs.local.RawLocalFs"
NIO_LOCAL_FS = "darooghe.hadoop.NioLocalFs"


def local_fs_config(s: Settings) -> dict[str, str]:
    """Checkpoint files on a local disk: no .crc side files, and no forked process per file.

    RawLocalFs rather than the checksummed default: each write is one file and one rename, still
    atomic. Measured on the fraud job's live micro-batch (1,000 events/s, 2 cores): the changelog
    commit 133 -> 74 ms, the offset-log write 52 -> 29 ms, the commit-log write 40 -> 24 ms.

    NioLocalFs (infra/spark-localfs) on top, where the driver's classpath can take its jar (a
    session this process starts in local mode): without Hadoop's native library, RawLocalFs forks
    `readlink` twice per renamed file and `chmod` once per created one (async-profiler, wall
    clock: 12 % of the fraud job's stateful tasks). Measured on bench.streaming's sustained phase
    (300,000 events, batches of 25,000, third run of one JVM): offset-log write 20.5 -> 2 ms,
    commit-log write 18.5 -> 1 ms, RocksDB commit (both tasks) 67 -> 7.5 ms. Under spark-submit
    the driver's classpath is fixed before this code runs, and a cluster's executors may not have
    the jar's path: both keep RawLocalFs. Affects file: paths only (HDFS, S3 keep theirs).
    """
    jar = spark_jars.localfs_jar(s)
    if s.spark_master.startswith("local") and not under_spark_submit() and jar.is_file():
        return {LOCAL_FS_KEY: NIO_LOCAL_FS, "spark.driver.extraClassPath": str(jar)}
    return {LOCAL_FS_KEY: HADOOP_LOCAL_FS}


SPARK_LOG4J2 = """\
# Written by darooghe: Spark's JVM logs WARN and above to $DAROOGHE_HOME/logs/spark.log; only
# errors reach the console, so CLI progress and Dagster logs stay readable.
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}} [pid %pid]: %m%n%ex
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = error
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.console.ref = console
"""


def spark_log_config(s: Settings) -> Path:
    """Path of the log4j2 configuration of Spark's JVM (written by prepare_environment)."""
    return s.home / "spark" / "log4j2.properties"


def prepare_environment(settings: Settings | None = None) -> None:
    """Set what must be in the process environment before the JVM starts."""
    s = settings or load_settings()
    os.environ.setdefault("PYSPARK_PYTHON", s.python)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", s.python)
    # Scratch space of the local driver/executor (a cluster manager sets its own).
    os.environ.setdefault("SPARK_LOCAL_DIRS", str(s.spark_local_dir))
    if s.spark_master.startswith(("local", "spark://127.0.0.1:", "spark://localhost:")):
        # The UI has no authentication and binds to every interface unless SPARK_LOCAL_IP says
        # otherwise (Spark's WebUI.bind); a local app, or the driver of the loopback cluster
        # (darooghe.services.cluster), has no one to serve beyond loopback.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for d in (s.spark_warehouse_dir, s.spark_local_dir, s.logs_dir):
        d.mkdir(parents=True, exist_ok=True)
    spark_log_config(s).write_text(SPARK_LOG4J2.format(log_file=s.logs_dir / "spark.log"))


def spark_session(
    app_name: str,
    settings: Settings | None = None,
    *,
    ui: bool = False,
    connector: bool = True,
    **overrides: str,
):
    """Get or create the SparkSession of this process with the project's configuration.

    `ui=True` (long-running jobs) starts the Spark UI on the first free port from 4040 and registers
    it under metrics_dir/spark-apps, where `darooghe monitor` finds it.
    """
    from pyspark.sql import SparkSession

    s = settings or load_settings()
    prepare_environment(s)
    if ui:
        overrides = {"spark.ui.enabled": "true", **overrides}
    # Under spark-submit the JVM (and its classpath) exists before this code runs: `spark.jars`
    # set here reaches the executors but not the driver, so the connector must come from --jars.
    submitted = under_spark_submit()
    builder = SparkSession.builder.appName(app_name)
    for key, value in spark_config(s, connector=connector, **overrides).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if connector and submitted and not _driver_has_connector(spark):
        raise spark_jars.SparkJarsError(
            f"the driver of {app_name} cannot load {spark_jars.CONNECTOR_CLASS}: under spark-submit "
            'pass the connector jars, `spark-submit --jars "$(python -m darooghe.spark --jars)" ...`'
        )
    if ui:
        register_ui(spark, app_name, s)
    return spark


def register_ui(spark, app_name: str, settings: Settings) -> None:
    """Write where this app's UI/REST API listens, for the exporter and for Prometheus."""
    import json

    url = spark.sparkContext.uiWebUrl
    if not url:
        return
    folder = settings.metrics_dir / "spark-apps"
    folder.mkdir(parents=True, exist_ok=True)
    info = {
        "app_name": app_name,
        "app_id": spark.sparkContext.applicationId,
        "ui": url,
        "pid": os.getpid(),
    }
    (folder / f"{app_name}.json").write_text(json.dumps(info))
    # Prometheus finds the app's own endpoints (PrometheusServlet, executors) the same way.
    import atexit

    from darooghe.services import prometheus

    prometheus.write_spark_target(settings, app_name, url, os.getpid())
    atexit.register(prometheus.remove_spark_target, settings, app_name, os.getpid())


def _driver_has_connector(spark) -> bool:
    jvm = spark.sparkContext._jvm
    loader = jvm.org.apache.spark.util.Utils.getContextOrSparkClassLoader()
    try:
        jvm.java.lang.Class.forName(spark_jars.CONNECTOR_CLASS, False, loader)
    except Exception:  # noqa: BLE001 - Py4J wraps ClassNotFoundException
        return False
    return True


def resolve_packages() -> None:
    """Install the connector jars (used by `make install` and the Docker image).

    One session with `spark.jars.packages` makes Ivy resolve the connector and its dependencies
    into the cache under DAROOGHE_BUILD/ivy (Ivy's report is printed here, once); the jars it
    resolved are then copied into DAROOGHE_BUILD/spark-jars with their manifest.
    """
    from urllib.parse import unquote, urlparse

    s = load_settings()
    s.ivy_dir.mkdir(parents=True, exist_ok=True)
    spark = spark_session(
        "darooghe-resolve-packages",
        s,
        connector=False,
        **{"spark.jars.packages": KAFKA_CONNECTOR, "spark.jars.ivy": str(s.ivy_dir)},
    )
    jars = spark.sparkContext.getConf().get("spark.jars", "")
    spark.stop()
    resolved = [Path(unquote(urlparse(j).path)) for j in jars.split(",") if j]
    folder = spark_jars.install(s, resolved)
    names = [p.name for p in spark_jars.connector_jars(s)]
    print(f"resolved {KAFKA_CONNECTOR} into {folder}: {', '.join(names)}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--resolve"]:
        resolve_packages()
    elif sys.argv[1:] == ["--hadoop-api-jar"]:
        # For the javac of infra/spark-localfs (Makefile)
        print(spark_jars.hadoop_api_jar())
    elif sys.argv[1:] == ["--jars"]:
        # For spark-submit: --jars "$(python -m darooghe.spark --jars)"
        print(",".join(str(p) for p in spark_jars.connector_jars(load_settings())))
    else:
        print(
            "usage: python -m darooghe.spark --resolve | --jars | --hadoop-api-jar", file=sys.stderr
        )
        sys.exit(2)

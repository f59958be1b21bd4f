"""The checkpoint file system of local sessions (infra/spark-localfs, darooghe.spark.local_fs_config):
Spark's own checkpoint writer on it, on a real session, against what RawLocalFs does."""

from __future__ import annotations

import dataclasses
import os
import stat

import pytest
from py4j.protocol import Py4JJavaError

from darooghe.spark import HADOOP_LOCAL_FS, LOCAL_FS_KEY, NIO_LOCAL_FS, local_fs_config


def _jvm(spark):
    return spark.sparkContext._jvm


def _file_context(spark):
    jvm = _jvm(spark)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    return jvm.org.apache.hadoop.fs.FileContext.getFileContext(jvm.java.net.URI("file:///"), conf)


def _write_atomic(spark, path, data: bytes, overwrite: bool = True) -> None:
    """Through Spark's CheckpointFileManager (temp file, then FileContext.rename), as offset logs,
    commit logs and RocksDB changelogs are written."""
    jvm = _jvm(spark)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    target = jvm.org.apache.hadoop.fs.Path(str(path))
    manager_class = jvm.org.apache.spark.sql.execution.streaming.checkpointing.CheckpointFileManager
    manager = manager_class.create(target.getParent(), conf)
    out = manager.createAtomic(target, overwrite)
    out.write(bytearray(data))
    out.close()


def test_a_local_session_writes_checkpoints_through_nio_local_fs(spark, settings):
    assert local_fs_config(settings)[LOCAL_FS_KEY] == NIO_LOCAL_FS
    fs = _file_context(spark).getDefaultFileSystem()
    assert fs.getClass().getName() == NIO_LOCAL_FS


def test_atomic_writes_rename_and_overwrite_with_the_umask_mode(spark, tmp_path):
    target = tmp_path / "offsets" / "7"
    target.parent.mkdir()
    _write_atomic(spark, target, b"v1\n")
    _write_atomic(spark, target, b"v2\n")  # over an existing file: the rename checks it first
    assert target.read_bytes() == b"v2\n"
    assert os.listdir(target.parent) == ["7"]  # no temp file, no .crc
    # Hadoop's default file mode, 0666 under fs.permissions.umask-mode 022, set through java.nio
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(Py4JJavaError, match="FileAlreadyExists|already exists"):
        _write_atomic(spark, target, b"v3\n", overwrite=False)
    assert target.read_bytes() == b"v2\n"


def test_link_status_of_files_links_and_missing_paths(spark, tmp_path):
    jvm = _jvm(spark)
    fc = _file_context(spark)
    regular = tmp_path / "regular"
    regular.write_text("x")
    link = tmp_path / "link"
    link.symlink_to(regular)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")

    status = fc.getFileLinkStatus(jvm.org.apache.hadoop.fs.Path(str(regular)))
    assert not status.isSymlink() and status.getLen() == 1 and not status.isDirectory()
    assert not fc.getFileLinkStatus(jvm.org.apache.hadoop.fs.Path(str(tmp_path))).isSymlink()
    for path, target in ((link, regular), (dangling, tmp_path / "nowhere")):
        status = fc.getFileLinkStatus(jvm.org.apache.hadoop.fs.Path(str(path)))
        assert status.isSymlink()
        assert status.getSymlink().toUri().getPath() == str(target)
    with pytest.raises(Py4JJavaError, match="FileNotFoundException"):
        fc.getFileLinkStatus(jvm.org.apache.hadoop.fs.Path(str(tmp_path / "missing")))


def test_spark_submit_cluster_and_a_missing_jar_keep_raw_local_fs(settings, tmp_path, monkeypatch):
    cluster = dataclasses.replace(settings, spark_master="spark://127.0.0.1:7077")
    assert local_fs_config(cluster) == {LOCAL_FS_KEY: HADOOP_LOCAL_FS}
    assert local_fs_config(dataclasses.replace(settings, build=tmp_path)) == {
        LOCAL_FS_KEY: HADOOP_LOCAL_FS
    }
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "1")  # set by spark-submit for the app's Python
    assert local_fs_config(settings) == {LOCAL_FS_KEY: HADOOP_LOCAL_FS}


def test_permissions_are_set_bit_for_bit(spark, tmp_path):
    jvm = _jvm(spark)
    fc = _file_context(spark)
    FsPermission = jvm.org.apache.hadoop.fs.permission.FsPermission
    regular = tmp_path / "regular"
    regular.write_text("x")
    for mode in ("750", "604", "000", "777", "644"):
        fc.setPermission(jvm.org.apache.hadoop.fs.Path(str(regular)), FsPermission(mode))
        assert stat.S_IMODE(regular.stat().st_mode) == int(mode, 8)
    folder = tmp_path / "shared"
    folder.mkdir()
    fc.setPermission(jvm.org.apache.hadoop.fs.Path(str(folder)), FsPermission("1777"))  # sticky
    assert stat.S_IMODE(folder.stat().st_mode) == 0o1777

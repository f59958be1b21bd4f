package darooghe.hadoop;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's raw local file system without a forked process per checkpoint file.
 *
 * <p>Without Hadoop's native library (PySpark ships none), RawLocalFileSystem forks `readlink` for
 * every getFileLinkStatus (FileContext.rename calls it for the source and the target: twice per
 * checkpoint file Spark writes) and `chmod` for every file it creates with a permission. Here a
 * path that is not a symbolic link is answered by getFileStatus (what Hadoop returns for it after
 * the fork), and a permission without the sticky bit is set through java.nio. Symbolic links and
 * sticky bits keep Hadoop's own code.
 */
public class NioLocalFileSystem extends RawLocalFileSystem {
  @Override
  public FileStatus getFileLinkStatus(Path f) throws IOException {
    File file = pathToFile(f);
    if (Files.isSymbolicLink(file.toPath())) {
      return super.getFileLinkStatus(f);
    }
    return getFileStatus(f);
  }

  @Override
  public void setPermission(Path p, FsPermission permission) throws IOException {
    if (permission.getStickyBit()) {
      super.setPermission(p, permission);
      return;
    }
    Files.setPosixFilePermissions(
        pathToFile(p).toPath(), PosixFilePermissions.fromString(permission.toString()));
  }
}

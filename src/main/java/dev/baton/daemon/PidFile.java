package dev.baton.daemon;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** A pid file holding the pid of the process that serves now, replaced atomically. */
public final class PidFile {
    private final Path path;
    private final long pid;

    private PidFile(Path path, long pid) {
        this.path = path;
        this.pid = pid;
    }

    public static PidFile write(Path path) {
        long pid = ProcessHandle.current().pid();
        try {
            Path dir = path.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, ".baton-pid", ".tmp");
            Files.writeString(tmp, pid + "\n");
            Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write pid file " + path, e);
        }
        return new PidFile(path, pid);
    }

    /** Reads the pid a file names, or -1. */
    public static long read(Path path) {
        try {
            return Long.parseLong(Files.readString(path).trim());
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    /** Whether the file names this process (a successor that died after replacing it does not). */
    public boolean current() {
        return read(path) == pid;
    }

    /** Removes the file if it still names this process (a successor may have replaced it). */
    public void remove() {
        if (read(path) == pid) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException ignored) {
                // nothing to do on the way out
            }
        }
    }
}

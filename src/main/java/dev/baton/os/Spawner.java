package dev.baton.os;

import jnr.posix.SpawnFileAction;

import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Starts a process that inherits one chosen descriptor as fd 3 and nothing else but stdin,
 * stdout and stderr. ProcessBuilder cannot do this (it closes every fd above 2), so this uses
 * posix_spawn with file actions.
 */
public final class Spawner {
    /** The descriptor number the child finds its inherited socket at. */
    public static final int CHILD_FD = 3;

    private Spawner() {
    }

    /** @return the child's pid */
    public static long spawn(List<String> argv, Map<String, String> env, int inheritFd) throws IOException {
        List<SpawnFileAction> actions = new ArrayList<>();
        int source = inheritFd;
        if (source == CHILD_FD) {
            // dup2(3, 3) would keep FD_CLOEXEC and the child would lose it: move it first.
            source = Fds.posix().dup(inheritFd);
        }
        actions.add(SpawnFileAction.dup(source, CHILD_FD));
        // Any descriptor that is not close-on-exec would leak into the child and keep sockets
        // alive there: close everything else explicitly.
        File[] open = new File("/proc/self/fd").listFiles();
        if (open != null) {
            for (File f : open) {
                int fd;
                try {
                    fd = Integer.parseInt(f.getName());
                } catch (NumberFormatException e) {
                    continue;
                }
                if (fd > 2 && fd != CHILD_FD && fd != source) {
                    actions.add(SpawnFileAction.close(fd));
                }
            }
        }
        actions.add(SpawnFileAction.close(source));
        List<String> envp = new ArrayList<>();
        env.forEach((k, v) -> envp.add(k + "=" + v));
        // Signal handlers do not survive exec; the JVM ignores no signal, so nothing leaks there.
        long pid = Fds.posix().posix_spawnp(argv.get(0), actions, argv, envp);
        if (source != inheritFd) {
            Fds.posix().close(source);
        }
        if (pid <= 0) {
            throw new IOException("cannot start " + argv.get(0) + ": errno " + Fds.posix().errno());
        }
        return pid;
    }

    /** Reaps a child that has exited; returns its exit status, or -1 if still running. */
    public static int reap(long pid) {
        int[] status = new int[1];
        int r = Fds.posix().waitpid(pid, status, 1); // WNOHANG
        if (r == pid) {
            int s = status[0];
            return (s & 0x7f) == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
        }
        return -1;
    }
}

package dev.baton.control;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.function.Function;

/**
 * The control socket: a unix stream socket where `baton reload|upgrade|status|map` send one command
 * line and read the answer until the server closes. Mode 0660, group baton when that group exists.
 * A successor binds a fresh socket beside the old one and renames it into place, so the path
 * always reaches the serving process.
 */
public final class ControlServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ControlServer.class);

    private final Path path;
    private final ServerSocketChannel server;
    private final Object fileKey;
    private final Thread thread;
    private volatile boolean closed;

    private final Runnable answered;

    private ControlServer(Path path, ServerSocketChannel server, Object fileKey, Function<String, String> handler,
                          Runnable answered) {
        this.answered = answered;
        this.path = path;
        this.server = server;
        this.fileKey = fileKey;
        this.thread = new Thread(() -> serve(handler), "control-socket");
        this.thread.setDaemon(true);
    }

    /**
     * Binds the socket at {@code path} (replacing a stale one or a predecessor's) and serves it;
     * {@code answered} runs after each answer has been written.
     */
    public static ControlServer start(Path path, Function<String, String> handler, Runnable answered)
            throws IOException {
        Path dir = path.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path fresh = dir.resolve("." + path.getFileName() + "." + ProcessHandle.current().pid());
        Files.deleteIfExists(fresh);
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(fresh));
        Files.setPosixFilePermissions(fresh, PosixFilePermissions.fromString("rw-rw----"));
        try {
            GroupPrincipal group = fresh.getFileSystem().getUserPrincipalLookupService()
                    .lookupPrincipalByGroupName("baton");
            Files.getFileAttributeView(fresh, PosixFileAttributeView.class).setGroup(group);
        } catch (IOException | UnsupportedOperationException e) {
            // no baton group on this host: root (or the user running baton) only
        }
        Files.move(fresh, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        Object key = Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
        ControlServer s = new ControlServer(path, server, key, handler, answered);
        s.thread.start();
        return s;
    }

    public Path path() {
        return path;
    }

    private void serve(Function<String, String> handler) {
        while (!closed) {
            SocketChannel accepted;
            try {
                accepted = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    log.debug("control socket: {}", e.getMessage());
                    try {
                        Thread.sleep(50); // e.g. out of descriptors: do not spin
                    } catch (InterruptedException ie) {
                        return;
                    }
                }
                continue;
            }
            // One thread per client: a client that connects and says nothing blocks only itself.
            Thread t = new Thread(() -> answer(accepted, handler), "control-client");
            t.setDaemon(true);
            t.setContextClassLoader(ControlServer.class.getClassLoader());
            t.start();
        }
    }

    private void answer(SocketChannel accepted, Function<String, String> handler) {
        try (SocketChannel ch = accepted) {
            String command = readLine(ch);
            String answer = handler.apply(command);
            ByteBuffer out = ByteBuffer.wrap(answer.getBytes(StandardCharsets.UTF_8));
            while (out.hasRemaining()) {
                ch.write(out);
            }
            ch.shutdownOutput();
            answered.run();
        } catch (IOException e) {
            if (!closed) {
                log.debug("control socket: {}", e.getMessage());
            }
        } catch (RuntimeException e) {
            log.warn("control command failed", e);
        }
    }

    private static String readLine(SocketChannel ch) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(64 * 1024); // `map add` with many upstreams is a long line
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) {
                break;
            }
            int end = b.position();
            for (int i = 0; i < end; i++) {
                if (b.get(i) == '\n') {
                    return new String(b.array(), 0, i, StandardCharsets.UTF_8).trim();
                }
            }
        }
        return new String(b.array(), 0, b.position(), StandardCharsets.UTF_8).trim();
    }

    /** Whether the path is still this server's socket (a successor may have replaced it). */
    public boolean ownsPath() {
        try {
            Object key = Files.readAttributes(path, java.nio.file.attribute.BasicFileAttributes.class).fileKey();
            return key != null && key.equals(fileKey);
        } catch (IOException e) {
            return false;
        }
    }

    /** Stops serving. The file is removed only if it is still ours (a successor may own the path now). */
    public void close(boolean removeFile) {
        closed = true;
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        if (removeFile && ownsPath()) {
            try {
                Files.deleteIfExists(path);
            } catch (IOException ignored) {
                // already gone
            }
        }
    }

    @Override
    public void close() {
        close(true);
    }
}

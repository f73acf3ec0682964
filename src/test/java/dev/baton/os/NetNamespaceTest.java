package dev.baton.os;

import dev.baton.testkit.Namespaces;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Opening namespace files and switching a thread into a real namespace and back. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class NetNamespaceTest {
    @TempDir
    Path dir;

    private static long threadNamespace() throws IOException {
        return ((Number) Files.getAttribute(Path.of("/proc/thread-self/ns/net"), "unix:ino")).longValue();
    }

    @Test
    void opensOnlyNetworkNamespaces() throws Exception {
        assertEquals("must be an absolute path (/run/netns/NAME or /proc/PID/ns/net)",
                assertThrows(IOException.class, () -> NetNamespace.open(Path.of("run/netns/x"))).getMessage());
        Path missing = dir.resolve("missing");
        assertEquals(missing + ": no such file",
                assertThrows(IOException.class, () -> NetNamespace.open(missing)).getMessage());
        Path plain = Files.writeString(dir.resolve("plain"), "x");
        assertEquals(plain + ": not a namespace file",
                assertThrows(IOException.class, () -> NetNamespace.open(plain)).getMessage());
        Path mnt = Path.of("/proc/self/ns/mnt");
        assertEquals(mnt + ": a mount namespace, not a network namespace",
                assertThrows(IOException.class, () -> NetNamespace.open(mnt)).getMessage());

        NetNamespace own = NetNamespace.open(Path.of("/proc/self/ns/net"));
        assertTrue(own.isOwn());
        assertEquals(NetNamespace.ownInode(), own.inode());
        assertEquals(threadNamespace(), own.inode());
    }

    @Test
    void callSwitchesOnlyForTheCallAndAlwaysBack() throws Exception {
        String why = Namespaces.unavailable();
        assumeTrue(why == null, why);
        long home = threadNamespace();
        try (Namespaces lab = new Namespaces()) {
            String name = lab.add("a");
            NetNamespace ns = Namespaces.open(name);
            assertFalse(ns.isOwn());
            assertNotEquals(home, ns.inode());

            assertEquals(ns.inode(), (long) ns.call(() -> {
                try {
                    return threadNamespace();
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            }));
            assertEquals(home, threadNamespace(), "back home after the call");

            assertThrows(IllegalStateException.class, () -> ns.call(() -> {
                throw new IllegalStateException("boom");
            }));
            assertEquals(home, threadNamespace(), "back home after a failing call");

            // A socket made inside stays inside: its loopback is not the host's.
            try (ServerSocket inside = Namespaces.in(name,
                    () -> new ServerSocket(0, 10, InetAddress.getLoopbackAddress()))) {
                int port = inside.getLocalPort();
                try (Socket s = new Socket()) {
                    assertThrows(ConnectException.class,
                            () -> s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2000));
                }
                // (java.net.Socket makes its descriptor at connect, so connect inside too.)
                try (Socket client = Namespaces.in(name, () -> {
                    Socket c = new Socket();
                    c.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2000);
                    return c;
                })) {
                    try (Socket accepted = inside.accept()) {
                        assertTrue(accepted.isConnected());
                    }
                }
            }
        }
    }
}

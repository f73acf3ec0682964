package io.netty.channel.epoll;

import io.netty.channel.unix.BatonKnownFamily;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Sockets made without asking the kernel their family ({@link BatonKnownFamily}) are the sockets
 * Netty's constructor would have made: same descriptor and family, open, and they connect, relay
 * and close as such, for IPv4 and for IPv6 sockets reaching an IPv4 address (which takes the
 * family: the address is passed as IPv4-mapped).
 */
class BatonKnownFamilyTest {
    @BeforeEach
    void epoll() {
        assumeTrue(Epoll.isAvailable(), "epoll's native library");
    }

    @Test
    void madeWithoutTheConstructorOnThisJvmAndNettyVersion() {
        assertTrue(BatonKnownFamily.bypassesConstructor(), "sun.misc.Unsafe and the two fields are there");
        // wrap() sets the fields of FileDescriptor and Socket: LinuxSocket must add none of its own.
        assertEquals("[]", Arrays.toString(Arrays.stream(LinuxSocket.class.getDeclaredFields())
                .filter(f -> !Modifier.isStatic(f.getModifiers())).map(Field::getName).toArray()));
    }

    @Test
    void ipv4SocketConnectsRelaysAndCloses() throws Exception {
        behavesAsConstructed(false, InetAddress.getByName("127.0.0.1"));
    }

    @Test
    void ipv6SocketReachesAnIpv4AddressAsMapped() throws Exception {
        behavesAsConstructed(true, InetAddress.getByName("127.0.0.1"));
    }

    @Test
    void ipv6SocketReachesAnIpv6Address() throws Exception {
        assumeTrue(Files.exists(Path.of("/proc/net/if_inet6")), "IPv6 on this machine");
        behavesAsConstructed(true, InetAddress.getByName("::1"));
    }

    private static void behavesAsConstructed(boolean ipv6, InetAddress target) throws Exception {
        try (ServerSocket server = new ServerSocket(0, 50, target)) {
            int fd = BatonKnownFamily.newStreamFd(ipv6);
            LinuxSocket s = BatonRawSocket.socket(fd, ipv6);
            assertEquals(fd, s.intValue());
            assertTrue(s.isOpen());
            assertEquals(ipv6, BatonKnownFamily.isIpv6(s));
            LinuxSocket asked = new LinuxSocket(fd); // Netty's constructor asks the kernel: a view, never closed
            assertEquals(BatonKnownFamily.isIpv6(asked), BatonKnownFamily.isIpv6(s), "the kernel's answer");

            BatonRawSocket raw = new BatonRawSocket(s);
            int written = raw.connectInPlace(new InetSocketAddress(target, server.getLocalPort()), null);
            assertEquals(0, written, "loopback completes inside connect(2)");
            try (Socket peer = server.accept()) {
                InetSocketAddress local = s.localAddress();
                assertNotNull(local);
                assertEquals(peer.getPort(), local.getPort(), "the accepted peer is this socket");
                io.netty.buffer.ByteBuf buf = io.netty.buffer.Unpooled.directBuffer(16);
                try {
                    buf.writeBytes(new byte[] {1, 2, 3});
                    assertEquals(3, raw.write(buf, 0, 3));
                    assertEquals(1, peer.getInputStream().read());
                } finally {
                    buf.release();
                }
                raw.close(false);
                assertFalse(s.isOpen());
                peer.setSoTimeout(5000);
                assertEquals(2, peer.getInputStream().read());
                assertEquals(3, peer.getInputStream().read());
                assertEquals(-1, peer.getInputStream().read(), "FIN after the bytes");
            }
        }
    }
}

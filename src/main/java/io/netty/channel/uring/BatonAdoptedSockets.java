package io.netty.channel.uring;

import io.netty.channel.Channel;
import io.netty.channel.socket.ServerSocketChannel;
import io.netty.channel.socket.ServerSocketChannelConfig;
import io.netty.channel.socket.SocketChannel;

import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/**
 * baton's bridge for adopting existing TCP sockets into Netty's io_uring transport.
 *
 * <p>Netty 4.2's io_uring channels offer no public constructor that wraps an existing TCP file
 * descriptor (epoll's do, and io_uring's datagram channel does). An upgrade hands the successor
 * live listening and connected sockets, so baton needs exactly that. This class lives in Netty's
 * package to reach the package-private constructors Netty itself uses for accepted sockets; it
 * adds no behaviour of its own. It is pinned to the Netty version in pom.xml and covered by the
 * handoff tests, which fail loudly if a Netty upgrade changes these internals.
 */
public final class BatonAdoptedSockets {
    private BatonAdoptedSockets() {
    }

    /** A listening TCP socket, already bound and listening, as an io_uring server channel. */
    public static ServerSocketChannel serverSocket(int fd) {
        return new AdoptedServerSocketChannel(new LinuxSocket(fd));
    }

    /** A connected TCP socket as an io_uring stream channel (no parent, like a client channel). */
    public static SocketChannel socket(int fd) {
        return new IoUringSocketChannel(null, new LinuxSocket(fd));
    }

    private static final class AdoptedServerSocketChannel extends AbstractIoUringServerChannel
            implements ServerSocketChannel {
        private final IoUringServerSocketChannelConfig config;

        AdoptedServerSocketChannel(LinuxSocket socket) {
            super(socket, true);
            this.config = new IoUringServerSocketChannelConfig(this);
        }

        @Override
        public ServerSocketChannelConfig config() {
            return config;
        }

        @Override
        Channel newChildChannel(int fd, ByteBuffer acceptedAddressMemory) {
            return new IoUringSocketChannel(this, new LinuxSocket(fd));
        }

        @Override
        public InetSocketAddress remoteAddress() {
            return (InetSocketAddress) super.remoteAddress();
        }

        @Override
        public InetSocketAddress localAddress() {
            return (InetSocketAddress) super.localAddress();
        }
    }
}

package io.netty.channel.uring;

import io.netty.channel.Channel;
import io.netty.channel.ChannelException;
import io.netty.channel.ChannelOption;
import io.netty.channel.ServerChannel;
import io.netty.channel.ServerChannelRecvByteBufAllocator;
import io.netty.channel.socket.SocketChannel;
import io.netty.util.NetUtil;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;

/**
 * baton's bridge for adopting existing TCP sockets into Netty's io_uring transport, and for
 * IPv4 listening sockets, which Netty's io_uring server channel cannot make.
 *
 * <p>Netty 4.2's io_uring channels offer no public constructor that wraps an existing TCP file
 * descriptor (epoll's do, and io_uring's datagram channel does). An upgrade hands the successor
 * live listening and connected sockets, so baton needs exactly that. Netty's io_uring server
 * channel also always makes an AF_INET6 socket, which, bound to 0.0.0.0, takes IPv6 clients too.
 * This class lives in Netty's package to reach the package-private constructors and socket
 * calls Netty itself uses; it adds no behaviour of its own. It is pinned to the Netty version in
 * pom.xml and covered by the handoff and IPv6-only tests, which fail loudly if a Netty upgrade
 * changes these internals.
 */
public final class BatonAdoptedSockets {
    private BatonAdoptedSockets() {
    }

    /** A listening TCP socket, already bound and listening, as an io_uring server channel. */
    public static ServerChannel serverSocket(int fd) {
        return new BridgedServerChannel(new LinuxSocket(fd), true);
    }

    /** A new IPv4 (AF_INET) TCP socket as an io_uring server channel, to be bound. */
    public static ServerChannel newIpv4ServerSocket() {
        return new BridgedServerChannel(LinuxSocket.newSocketStream(false), false);
    }

    /** A connected TCP socket as an io_uring stream channel (no parent, like a client channel). */
    public static SocketChannel socket(int fd) {
        return new IoUringSocketChannel(null, new LinuxSocket(fd));
    }

    private static final class BridgedServerChannel extends AbstractIoUringServerChannel {
        private final Config config;

        BridgedServerChannel(LinuxSocket socket, boolean listening) {
            super(socket, listening);
            this.config = new Config(this);
        }

        @Override
        public Config config() {
            return config;
        }

        /** Only for a new socket (an adopted one is registered, never bound): bind, then listen. */
        @Override
        public void doBind(SocketAddress localAddress) throws Exception {
            super.doBind(localAddress);
            if (config.fastOpen > 0 && IoUring.isTcpFastOpenServerSideAvailable()) {
                socket.setTcpFastOpen(config.fastOpen);
            }
            socket.listen(config.backlog);
            active = true;
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

    /**
     * The listener options baton sets, applied to this channel's own socket (Netty's io_uring
     * server config reaches them only through its own channel class).
     */
    private static final class Config extends IoUringChannelConfig {
        private volatile int backlog = NetUtil.SOMAXCONN;
        private volatile int fastOpen;

        Config(BridgedServerChannel channel) {
            super(channel, new ServerChannelRecvByteBufAllocator());
        }

        private LinuxSocket socket() {
            return ((AbstractIoUringChannel) channel).socket;
        }

        @SuppressWarnings("unchecked")
        @Override
        public <T> T getOption(ChannelOption<T> option) {
            try {
                if (option == ChannelOption.SO_BACKLOG) {
                    return (T) Integer.valueOf(backlog);
                } else if (option == ChannelOption.TCP_FASTOPEN) {
                    return (T) Integer.valueOf(fastOpen);
                } else if (option == ChannelOption.SO_REUSEADDR) {
                    return (T) Boolean.valueOf(socket().isReuseAddress());
                } else if (option == ChannelOption.SO_RCVBUF) {
                    return (T) Integer.valueOf(socket().getReceiveBufferSize());
                } else if (option == IoUringChannelOption.SO_REUSEPORT) {
                    return (T) Boolean.valueOf(socket().isReusePort());
                } else if (option == IoUringChannelOption.IP_FREEBIND) {
                    return (T) Boolean.valueOf(socket().isIpFreeBind());
                } else if (option == IoUringChannelOption.TCP_DEFER_ACCEPT) {
                    return (T) Integer.valueOf(socket().getTcpDeferAccept());
                }
            } catch (IOException e) {
                throw new ChannelException(e);
            }
            return super.getOption(option);
        }

        @Override
        public <T> boolean setOption(ChannelOption<T> option, T value) {
            validate(option, value);
            try {
                if (option == ChannelOption.SO_BACKLOG) {
                    backlog = (Integer) value;
                } else if (option == ChannelOption.TCP_FASTOPEN) {
                    fastOpen = (Integer) value;
                } else if (option == ChannelOption.SO_REUSEADDR) {
                    socket().setReuseAddress((Boolean) value);
                } else if (option == ChannelOption.SO_RCVBUF) {
                    socket().setReceiveBufferSize((Integer) value);
                } else if (option == IoUringChannelOption.SO_REUSEPORT) {
                    socket().setReusePort((Boolean) value);
                } else if (option == IoUringChannelOption.IP_FREEBIND) {
                    socket().setIpFreeBind((Boolean) value);
                } else if (option == IoUringChannelOption.TCP_DEFER_ACCEPT) {
                    socket().setTcpDeferAccept((Integer) value);
                } else {
                    return super.setOption(option, value);
                }
            } catch (IOException e) {
                throw new ChannelException(e);
            }
            return true;
        }
    }
}

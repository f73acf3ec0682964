package io.netty.channel.epoll;

import io.netty.channel.Channel;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelException;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ServerSocketChannel;
import io.netty.channel.socket.SocketProtocolFamily;
import io.netty.channel.unix.BatonKnownFamily;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.Map;

import static io.netty.channel.unix.NativeInetAddress.address;

/**
 * A listening epoll TCP socket that hands on what it accepts as {@link BatonAccepted} (a
 * descriptor and the peer's address), not as a channel. Netty's EpollServerSocketChannel builds
 * an EpollSocketChannel for every connection it accepts, and its constructors ask the kernel for
 * the socket's local address and send buffer and set TCP_NODELAY: three system calls per
 * connection that a connection relayed on raw sockets never uses (it inherits TCP_NODELAY and
 * keepalive from this socket). The channel is made only for a connection that needs one.
 *
 * <p>Otherwise the same as Netty's (4.2.18): bind, listen, the options baton sets (SO_REUSEADDR
 * on by default, SO_REUSEPORT, TCP_DEFER_ACCEPT, IP_FREEBIND, TCP_FASTOPEN, backlog), and the
 * accept loop with its read limits and pauses. Lives in Netty's package for its epoll channel
 * internals; pinned to the Netty version in pom.xml like {@link BatonEpollStreams}.
 */
public final class BatonEpollServerSocketChannel extends AbstractEpollServerChannel implements ServerSocketChannel {
    private final Config config;
    /** The family of this socket, so of every socket it accepts. */
    private final boolean ipv6;

    public BatonEpollServerSocketChannel(SocketProtocolFamily family) {
        super(LinuxSocket.newSocketStream(family), false);
        config = new Config(this);
        ipv6 = BatonKnownFamily.isIpv6(socket);
    }

    /** A socket that is already bound and listening (inherited from a predecessor). */
    public BatonEpollServerSocketChannel(int fd) {
        super(new LinuxSocket(fd));
        config = new Config(this);
        ipv6 = BatonKnownFamily.isIpv6(socket);
    }

    @Override
    protected void doBind(SocketAddress localAddress) throws Exception {
        super.doBind(localAddress);
        int fastOpen = config.getTcpFastopen();
        if (Native.IS_SUPPORTING_TCP_FASTOPEN_SERVER && fastOpen > 0) {
            socket.setTcpFastOpen(fastOpen);
        }
        socket.listen(config.getBacklog());
        active = true;
        submitCurrentOps();
    }

    @Override
    public InetSocketAddress remoteAddress() {
        return (InetSocketAddress) super.remoteAddress();
    }

    @Override
    public InetSocketAddress localAddress() {
        return (InetSocketAddress) super.localAddress();
    }

    @Override
    public EpollServerChannelConfig config() {
        return config;
    }

    /** Not used by the accept loop here ({@link BatonAccepted#channel} makes the channel). */
    @Override
    protected Channel newChildChannel(int fd, byte[] remote, int offset, int len) {
        return new EpollSocketChannel(this, new LinuxSocket(fd), address(remote, offset, len));
    }

    @Override
    protected AbstractEpollUnsafe newUnsafe() {
        return new AcceptUnsafe();
    }

    private final class AcceptUnsafe extends AbstractEpollUnsafe {
        /** The peer's address from accept(2): up to 24 bytes, after one byte of its length. */
        private final byte[] peer = new byte[25];

        @Override
        public void connect(SocketAddress remote, SocketAddress local, ChannelPromise promise) {
            promise.setFailure(new UnsupportedOperationException());
        }

        /** Netty's accept loop, firing a {@link BatonAccepted} for each connection. */
        @Override
        void epollInReady() {
            ChannelConfig cfg = config();
            if (shouldBreakEpollInReady(cfg)) {
                clearEpollIn0();
                return;
            }
            EpollRecvByteAllocatorHandle reads = recvBufAllocHandle();
            ChannelPipeline pipeline = pipeline();
            reads.reset(cfg);
            reads.attemptedBytesRead(1);
            Throwable failure = null;
            try {
                try {
                    do {
                        int fd = socket.accept(peer);
                        reads.lastBytesRead(fd); // the handle reads on while this is not -1
                        if (fd == -1) {
                            break;
                        }
                        reads.incMessagesRead(1);
                        readPending = false;
                        pipeline.fireChannelRead(new BatonAccepted(BatonEpollServerSocketChannel.this,
                                BatonRawSocket.socket(fd, ipv6), address(peer, 1, peer[0])));
                    } while (reads.continueReading());
                } catch (Throwable t) {
                    failure = t;
                }
                reads.readComplete();
                pipeline.fireChannelReadComplete();
                if (failure != null) {
                    pipeline.fireExceptionCaught(failure);
                }
            } finally {
                if (shouldStopReading(cfg)) {
                    clearEpollIn();
                }
            }
        }
    }

    /** Netty's server socket options, plus the three of its EpollServerSocketChannelConfig that baton sets. */
    private static final class Config extends EpollServerChannelConfig {
        Config(BatonEpollServerSocketChannel channel) {
            super(channel);
            setReuseAddress(true); // as Netty's (and java.nio's)
        }

        @Override
        public Map<ChannelOption<?>, Object> getOptions() {
            return getOptions(super.getOptions(), EpollChannelOption.SO_REUSEPORT, EpollChannelOption.IP_FREEBIND,
                    EpollChannelOption.TCP_DEFER_ACCEPT);
        }

        @SuppressWarnings("unchecked")
        @Override
        public <T> T getOption(ChannelOption<T> option) {
            try {
                if (option == EpollChannelOption.SO_REUSEPORT) {
                    return (T) Boolean.valueOf(socket().isReusePort());
                }
                if (option == EpollChannelOption.IP_FREEBIND) {
                    return (T) Boolean.valueOf(socket().isIpFreeBind());
                }
                if (option == EpollChannelOption.TCP_DEFER_ACCEPT) {
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
                if (option == EpollChannelOption.SO_REUSEPORT) {
                    socket().setReusePort((Boolean) value);
                } else if (option == EpollChannelOption.IP_FREEBIND) {
                    socket().setIpFreeBind((Boolean) value);
                } else if (option == EpollChannelOption.TCP_DEFER_ACCEPT) {
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

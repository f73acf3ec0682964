package dev.baton.socket;

import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.BatonEpollStreams;
import io.netty.channel.epoll.BatonSplice;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.FixedRecvByteBufAllocator;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.epoll.EpollDatagramChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.BatonEpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.SocketProtocolFamily;
import io.netty.channel.socket.nio.NioChannelOption;
import io.netty.channel.socket.nio.NioDatagramChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.channel.unix.UnixChannel;
import io.netty.channel.unix.UnixChannelOption;
import io.netty.channel.uring.BatonAdoptedSockets;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringChannelOption;
import io.netty.channel.uring.IoUringDatagramChannel;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.channel.uring.IoUringSocketChannel;
import jdk.net.ExtendedSocketOptions;

import dev.baton.os.Fds;
import io.netty.channel.nio.AbstractNioChannel;

import java.io.IOException;
import java.lang.reflect.Method;
import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.nio.channels.spi.SelectorProvider;
import java.util.function.BooleanSupplier;

import dev.baton.config.TransportChoice;

/**
 * The event loop implementations baton runs on, and everything that differs between them:
 * channel classes, socket option constants, and whether existing sockets can be adopted.
 */
public enum Transport {
    IO_URING("io_uring", true) {
        @Override
        public boolean isAvailable() {
            return IoUring.isAvailable();
        }

        @Override
        public Throwable unavailabilityCause() {
            return IoUring.unavailabilityCause();
        }

        @Override
        public IoHandlerFactory ioHandlerFactory() {
            return IoUringIoHandler.newFactory();
        }

        @Override
        public ServerChannel newServerChannel(SocketProtocolFamily family) {
            return family == SocketProtocolFamily.INET ? BatonAdoptedSockets.newIpv4ServerSocket()
                    : new IoUringServerSocketChannel();
        }

        @Override
        public SocketChannel newSocketChannel() {
            return new IoUringSocketChannel();
        }

        @Override
        public DatagramChannel newDatagramChannel() {
            return slotted(new IoUringDatagramChannel());
        }

        @Override
        public DatagramChannel newDatagramChannel(SocketProtocolFamily family) {
            return slotted(new IoUringDatagramChannel(family));
        }

        /** A read's buffer is cut into slots of the largest datagram, one recvmsg each (see listenerReads). */
        private static IoUringDatagramChannel slotted(IoUringDatagramChannel ch) {
            ch.config().setOption(IoUringChannelOption.MAX_DATAGRAM_PAYLOAD_SIZE, SocketRegistry.MAX_DATAGRAM);
            return ch;
        }

        @Override
        public ServerChannel adoptServerChannel(int fd) {
            return BatonAdoptedSockets.serverSocket(fd);
        }

        @Override
        public SocketChannel adoptSocketChannel(int fd) {
            return BatonAdoptedSockets.socket(fd);
        }

        @Override
        public DatagramChannel adoptDatagramChannel(int fd) {
            return slotted(new IoUringDatagramChannel(fd));
        }

        @Override
        public io.netty.channel.ChannelFuture release(Channel ch) {
            if (releaseCloses(ch)) {
                // Netty 4.2.18 never completes deregistering an io_uring server channel with an
                // accept pending. Closing this process's descriptor is as good: the successor holds
                // its own reference, so the socket and its accept queue live on.
                ch.config().setAutoRead(false);
                return ch.close();
            }
            return super.release(ch);
        }

        @Override
        public boolean releaseCloses(Channel ch) {
            return ch instanceof ServerChannel;
        }

        /** Netty 4.2.18 frees an io_uring datagram channel's message headers when it is deregistered. */
        @Override
        public boolean registersAgain(Channel ch) {
            return !(ch instanceof DatagramChannel);
        }

        /**
         * A recv submitted ahead holds its buffer until a datagram comes, so a shared buffer
         * cannot serve io_uring: each read gets its own, of as many 64 KiB slots as it is offered
         * (one recvmsg each, linked). With one slot a listener read about 40% fewer datagrams a
         * second than with the adaptive offer (docs/transports.md), and fell behind under TCP load.
         */
        @Override
        public RecvByteBufAllocator listenerReads() {
            return new UringDatagramReads(SocketRegistry.MAX_DATAGRAM, URING_MAX_SLOTS, DATAGRAMS_PER_READ);
        }

        @Override
        public RecvByteBufAllocator flowReads() {
            return new FixedRecvByteBufAllocator(SocketRegistry.MAX_DATAGRAM);
        }

        @Override
        SocketOptions createOptions() {
            return new SocketOptions(UnixChannelOption.SO_REUSEPORT, IoUringChannelOption.TCP_KEEPIDLE,
                    IoUringChannelOption.TCP_KEEPINTVL, IoUringChannelOption.TCP_KEEPCNT,
                    IoUringChannelOption.TCP_DEFER_ACCEPT, IoUringChannelOption.IP_FREEBIND);
        }
    },

    EPOLL("epoll", true) {
        @Override
        public boolean isAvailable() {
            return Epoll.isAvailable();
        }

        @Override
        public Throwable unavailabilityCause() {
            return Epoll.unavailabilityCause();
        }

        @Override
        public IoHandlerFactory ioHandlerFactory() {
            return EpollIoHandler.newFactory();
        }

        @Override
        public ServerChannel newServerChannel(SocketProtocolFamily family) {
            return new BatonEpollServerSocketChannel(family);
        }

        @Override
        public SocketChannel newSocketChannel() {
            return BatonEpollStreams.keepRegistered(new EpollSocketChannel());
        }

        /** Of the upstream's own family: an AF_INET6 socket would need IPV6_V6ONLY cleared first. */
        @Override
        public SocketChannel newSocketChannel(InetSocketAddress upstream) {
            SocketProtocolFamily family = upstream.getAddress() instanceof Inet4Address
                    ? SocketProtocolFamily.INET : SocketProtocolFamily.INET6;
            return BatonEpollStreams.keepRegistered(new EpollSocketChannel(family));
        }

        /**
         * Reading is asked for in the socket's first epoll_ctl: nothing is readable before the
         * connect completes, and the relay turns reading on then; one epoll_ctl less.
         */
        @Override
        public void connecting(Channel upstream) {
            BatonEpollStreams.readFromConnect(upstream);
        }

        @Override
        public void accepted(Channel ch) {
            BatonEpollStreams.keepRegistered(ch);
        }

        @Override
        public int readNow(Channel ch, io.netty.buffer.ByteBuf buf) throws java.io.IOException {
            return BatonEpollStreams.readNow(ch, buf);
        }

        @Override
        public boolean sendNow(Channel ch, io.netty.buffer.ByteBuf content, InetSocketAddress to)
                throws java.io.IOException {
            return io.netty.channel.epoll.BatonDatagrams.sendNow(ch, content, to);
        }

        @Override
        public boolean writeNow(Channel ch, io.netty.buffer.ByteBuf content) throws java.io.IOException {
            return io.netty.channel.epoll.BatonDatagrams.writeNow(ch, content);
        }

        @Override
        public SocketChannel connectInPlace(InetSocketAddress upstream, boolean ackWithFirstData)
                throws java.io.IOException {
            EpollSocketChannel ch = BatonEpollStreams.connectInPlace(upstream, ackWithFirstData);
            return ch == null ? null : BatonEpollStreams.keepRegistered(ch);
        }

        @Override
        public void ackWithFirstData(Channel upstream) throws java.io.IOException {
            BatonEpollStreams.ackWithFirstData(upstream);
        }

        @Override
        public boolean finishConnectIfDone(Channel upstream) throws java.io.IOException {
            return BatonEpollStreams.finishConnectIfDone(upstream);
        }

        @Override
        public BatonSplice.Direction splice(Channel from, Channel to, BooleanSupplier allowed) {
            return BatonSplice.start(from, to, allowed);
        }

        @Override
        public io.netty.channel.ChannelFuture shutdownOutput(Channel ch) {
            try {
                BatonEpollStreams.shutdownOutput(ch);
                return ch.newSucceededFuture();
            } catch (java.io.IOException | java.nio.channels.NotYetConnectedException e) {
                // ENOTCONN: the peer reset meanwhile (Netty throws an unchecked exception for it)
                return ch.newFailedFuture(e);
            }
        }

        @Override
        public DatagramChannel newDatagramChannel() {
            return batched(new EpollDatagramChannel());
        }

        @Override
        public DatagramChannel newDatagramChannel(SocketProtocolFamily family) {
            return batched(new EpollDatagramChannel(family));
        }

        @Override
        public ServerChannel adoptServerChannel(int fd) {
            return new BatonEpollServerSocketChannel(fd);
        }

        @Override
        public SocketChannel adoptSocketChannel(int fd) {
            return BatonEpollStreams.keepRegistered(new EpollSocketChannel(fd));
        }

        @Override
        public DatagramChannel adoptDatagramChannel(int fd) {
            return batched(new EpollDatagramChannel(fd));
        }

        /**
         * recvmmsg: each read fills up to {@link #DATAGRAMS_PER_READ} slots of the receive buffer,
         * one datagram per slot; a slot holds the largest datagram, so nothing is truncated.
         */
        private static EpollDatagramChannel batched(EpollDatagramChannel ch) {
            ch.config().setMaxDatagramPayloadSize(SocketRegistry.MAX_DATAGRAM);
            return ch;
        }

        @Override
        public RecvByteBufAllocator listenerReads() {
            return BATCHED_READS;
        }

        @Override
        SocketOptions createOptions() {
            return new SocketOptions(UnixChannelOption.SO_REUSEPORT, EpollChannelOption.TCP_KEEPIDLE,
                    EpollChannelOption.TCP_KEEPINTVL, EpollChannelOption.TCP_KEEPCNT,
                    EpollChannelOption.TCP_DEFER_ACCEPT, EpollChannelOption.IP_FREEBIND);
        }
    },

    NIO("nio", false) {
        @Override
        public boolean isAvailable() {
            return true;
        }

        @Override
        public Throwable unavailabilityCause() {
            return null;
        }

        @Override
        public IoHandlerFactory ioHandlerFactory() {
            return NioIoHandler.newFactory();
        }

        @Override
        public ServerChannel newServerChannel(SocketProtocolFamily family) {
            return new NioServerSocketChannel(SelectorProvider.provider(), family);
        }

        @Override
        public SocketChannel newSocketChannel() {
            return new NioSocketChannel();
        }

        @Override
        public DatagramChannel newDatagramChannel() {
            return new NioDatagramChannel();
        }

        @Override
        public DatagramChannel newDatagramChannel(SocketProtocolFamily family) {
            return new NioDatagramChannel(family);
        }

        @Override
        public void setIpv6Only(Channel ch, boolean on) {
            Fds.setIpv6Only(nioFd(ch), on);
        }

        @Override
        SocketOptions createOptions() {
            return new SocketOptions(null, NioChannelOption.of(ExtendedSocketOptions.TCP_KEEPIDLE),
                    NioChannelOption.of(ExtendedSocketOptions.TCP_KEEPINTERVAL),
                    NioChannelOption.of(ExtendedSocketOptions.TCP_KEEPCOUNT), null, null);
        }
    };

    private final String label;
    private final boolean reusePort;

    Transport(String label, boolean reusePort) {
        this.label = label;
        this.reusePort = reusePort;
    }

    public String label() {
        return label;
    }

    /** Whether listeners get one SO_REUSEPORT socket per worker, and sockets can be handed over. */
    public boolean supportsReusePortAndHandoff() {
        return reusePort;
    }

    public abstract boolean isAvailable();

    public abstract Throwable unavailabilityCause();

    public abstract IoHandlerFactory ioHandlerFactory();

    /**
     * A listening socket of this family. An IPv4 listen address needs an AF_INET socket: every
     * transport binds an AF_INET6 socket given 0.0.0.0 to "::", which takes IPv6 clients too.
     */
    public abstract ServerChannel newServerChannel(SocketProtocolFamily family);

    /** An upstream TCP socket (AF_INET6 where the host has IPv6; it reaches IPv4 upstreams too). */
    public abstract SocketChannel newSocketChannel();

    /** An upstream TCP socket able to reach {@code upstream} (by default {@link #newSocketChannel()}). */
    public SocketChannel newSocketChannel(InetSocketAddress upstream) {
        return newSocketChannel();
    }

    /**
     * Called for an upstream socket set up (reading off) and about to be registered and connected;
     * its reading is turned on once it is connected.
     */
    public void connecting(Channel upstream) {
    }

    /** A UDP flow's upstream socket (AF_INET6 where the host has IPv6; it reaches IPv4 upstreams too). */
    public abstract DatagramChannel newDatagramChannel();

    /**
     * Capacity of each epoll worker's splice pipe: the most one splice moves. 256 KiB (64 pages)
     * rather than the default 64 KiB: measured in docs/transports.md.
     */
    public static final int SPLICE_PIPE_BYTES = 256 * 1024;

    static {
        BatonSplice.configure(SPLICE_PIPE_BYTES, Fds::setPipeSize);
    }

    /** Datagrams a UDP listening socket reads per wake-up before its batch is sent on. */
    public static final int DATAGRAMS_PER_READ = 16;
    /** io_uring: most slots (recvmsgs) one read of a UDP listening socket is offered. */
    static final int URING_MAX_SLOTS = 8;
    /**
     * nio listening sockets: one datagram per read, up to a batch per wake-up; Netty's NIO read
     * loop stops at the first read that leaves its buffer unfilled, so in practice one per wake-up
     * (its selector is level-triggered: the rest are reported again).
     */
    private static final RecvByteBufAllocator SINGLE_READS =
            new DatagramReceiveBuffer(SocketRegistry.MAX_DATAGRAM, 1, DATAGRAMS_PER_READ);
    /** Listening sockets: a batch per read (recvmmsg), a slot of the largest datagram's size for each. */
    static final RecvByteBufAllocator BATCHED_READS =
            new DatagramReceiveBuffer(SocketRegistry.MAX_DATAGRAM, DATAGRAMS_PER_READ, DATAGRAMS_PER_READ);
    /**
     * Flow sockets: one datagram per wake-up, as each carries one client's replies, mostly one at
     * a time (request/response); a second read per wake-up would mostly find nothing.
     */
    private static final RecvByteBufAllocator FLOW_READS =
            new DatagramReceiveBuffer(SocketRegistry.MAX_DATAGRAM, 1, 1);

    /**
     * How this transport's UDP listening sockets read: they take the datagrams of many clients.
     * One allocator serves all of them: it keeps a receive buffer per worker thread.
     */
    public RecvByteBufAllocator listenerReads() {
        return SINGLE_READS;
    }

    /** How the sockets of UDP flows (one client, one upstream) read. */
    public RecvByteBufAllocator flowReads() {
        return FLOW_READS;
    }

    /** A listening UDP socket of this family (see {@link #newServerChannel}). */
    public abstract DatagramChannel newDatagramChannel(SocketProtocolFamily family);

    public ServerChannel adoptServerChannel(int fd) {
        throw new UnsupportedOperationException(label + " cannot adopt an existing socket");
    }

    /**
     * Gives a listening TCP socket the keepalive settings and TCP_NODELAY that its accepted
     * connections then inherit from it. Returns false where this transport cannot (nio: the JDK
     * refuses these options on a listening socket); each connection is then set on its own.
     */
    public boolean setListenerOptions(Channel listener, dev.baton.config.Keepalive ka, boolean nodelay) {
        if (!(listener instanceof UnixChannel)) {
            return false;
        }
        try {
            io.netty.channel.unix.Socket s = unixSocket(listener);
            s.setKeepAlive(ka.enabled());
            if (ka.enabled()) {
                s.setIntOpt(IPPROTO_TCP, TCP_KEEPIDLE, (int) ka.idle().toSeconds());
                s.setIntOpt(IPPROTO_TCP, TCP_KEEPINTVL, (int) ka.interval().toSeconds());
                s.setIntOpt(IPPROTO_TCP, TCP_KEEPCNT, ka.count());
            }
            s.setTcpNoDelay(nodelay);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static final int IPPROTO_TCP = 6;
    private static final int TCP_KEEPIDLE = 4;
    private static final int TCP_KEEPINTVL = 5;
    private static final int TCP_KEEPCNT = 6;
    private static final int IPPROTO_IPV6 = 41;
    private static final int IPV6_V6ONLY = 26;

    /**
     * Netty's own view of a channel's descriptor (epoll and io_uring), for the options their
     * channel configs lack. Its native calls are loaded with the transport; the JNR bindings
     * ({@link Fds}) would cost a start 0.1-0.2 s of CPU to generate their classes.
     */
    private static io.netty.channel.unix.Socket unixSocket(Channel ch) {
        // a view: it does not own the descriptor (no cleaner closes it), the channel does
        return new io.netty.channel.unix.Socket(fd(ch));
    }

    /** Called for every accepted TCP connection, before it is registered on its worker. */
    public void accepted(Channel ch) {
    }

    /**
     * Reads what a just-accepted TCP connection (registered, reading off) has already sent into
     * {@code buf}: bytes read, 0 if nothing yet or this transport cannot, -1 at its end. Throws on
     * a reset. Call on its worker.
     */
    public int readNow(Channel ch, io.netty.buffer.ByteBuf buf) throws java.io.IOException {
        return 0;
    }

    /**
     * Sends one datagram from a UDP channel's socket to {@code to} at once, past the pipeline (no
     * copy, nothing queued), where the transport can and nothing is queued on the channel before
     * it: true if sent; false if not tried, or the socket cannot take it now (then queue it on the
     * channel). Throws if the send failed for good. Call on the channel's worker.
     */
    public boolean sendNow(Channel ch, io.netty.buffer.ByteBuf content, InetSocketAddress to) throws java.io.IOException {
        return false;
    }

    /**
     * As {@link #sendNow}, on a UDP socket connected in the kernel (a flow's): no address given.
     */
    public boolean writeNow(Channel ch, io.netty.buffer.ByteBuf content) throws java.io.IOException {
        return false;
    }

    /**
     * A TCP socket connected to {@code upstream} in place: returned (connected, not registered,
     * no options set) when the kernel completes the handshake inside connect(2), as on loopback;
     * null when it does not, or where this transport cannot tell (the caller connects the usual
     * way). {@code ackWithFirstData}: bytes go out at once, see {@link #ackWithFirstData}.
     * Throws if the connect failed.
     */
    public SocketChannel connectInPlace(InetSocketAddress upstream, boolean ackWithFirstData) throws java.io.IOException {
        return null;
    }

    /**
     * For an upstream socket (not yet connected) that has bytes to send as soon as it is: its
     * handshake's last ACK waits for them where the transport can (one packet, one wake-up of the
     * upstream instead of two).
     */
    public void ackWithFirstData(Channel upstream) throws java.io.IOException {
    }

    /**
     * Completes a connect in progress at once if the kernel has already finished it (its
     * listeners run before this returns); false if not, or where this transport cannot tell.
     */
    public boolean finishConnectIfDone(Channel upstream) throws java.io.IOException {
        return false;
    }

    public SocketChannel adoptSocketChannel(int fd) {
        throw new UnsupportedOperationException(label + " cannot adopt an existing socket");
    }

    /**
     * Relays reads of TCP channel {@code from} into {@code to} by splice(2), zero-copy, while
     * {@code allowed} says so; null where this transport cannot (the channels keep buffered reads).
     * Both on one worker; call on it.
     */
    public BatonSplice.Direction splice(Channel from, Channel to, BooleanSupplier allowed) {
        return null;
    }

    /**
     * Sends the FIN of a TCP channel whose queued bytes are written (its input may stay open).
     * Call on the channel's worker.
     */
    public io.netty.channel.ChannelFuture shutdownOutput(Channel ch) {
        return ((io.netty.channel.socket.DuplexChannel) ch).shutdownOutput();
    }

    public DatagramChannel adoptDatagramChannel(int fd) {
        throw new UnsupportedOperationException(label + " cannot adopt an existing socket");
    }

    /**
     * Sets IPV6_V6ONLY on a new IPv6 socket before it is bound. Netty clears it on every socket it
     * makes, as the JDK does, whatever net.ipv6.bindv6only says.
     */
    public void setIpv6Only(Channel ch, boolean on) {
        try {
            unixSocket(ch).setIntOpt(IPPROTO_IPV6, IPV6_V6ONLY, on ? 1 : 0);
        } catch (IOException e) {
            throw new IllegalStateException("cannot set IPV6_V6ONLY on fd " + fd(ch) + ": " + e.getMessage(), e);
        }
    }

    abstract SocketOptions createOptions();

    private SocketOptions options;

    /** This transport's socket option constants (computed once). */
    public SocketOptions options() {
        SocketOptions o = options;
        if (o == null) {
            o = createOptions();
            options = o;
        }
        return o;
    }

    /**
     * Takes a socket off its worker without touching the kernel socket (no shutdown, no reset),
     * so that a successor holding the same socket carries on. Call on any thread; the future
     * completes once the worker has let go. Reads stop first: with io_uring, deregistering a
     * channel that still wants to read re-arms the cancelled read and never completes.
     */
    public io.netty.channel.ChannelFuture release(Channel ch) {
        if (ch.eventLoop().inEventLoop()) {
            ch.config().setAutoRead(false);
            return ch.deregister();
        }
        io.netty.channel.ChannelPromise p = ch.newPromise();
        ch.eventLoop().execute(() -> {
            ch.config().setAutoRead(false);
            ch.deregister(p);
        });
        return p;
    }

    /** Whether a channel taken off its worker by {@link #release} can be registered again. */
    public boolean registersAgain(Channel ch) {
        return true;
    }

    /** Whether {@link #release} closes this process's descriptor of the socket (a duplicate brings it back). */
    public boolean releaseCloses(Channel ch) {
        return false;
    }

    /**
     * The descriptor under an NIO channel. The JDK offers no IPV6_V6ONLY, so baton sets it on the
     * descriptor, which it reaches through the JDK's own channel interface; the launcher exports
     * that package (--add-exports=java.base/sun.nio.ch=ALL-UNNAMED).
     */
    private static int nioFd(Channel ch) {
        try {
            Method javaChannel = AbstractNioChannel.class.getDeclaredMethod("javaChannel");
            javaChannel.setAccessible(true);
            Object jdkChannel = javaChannel.invoke(ch);
            return (Integer) Class.forName("sun.nio.ch.SelChImpl").getMethod("getFDVal").invoke(jdkChannel);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("transport nio sets IPV6_V6ONLY only with the JVM option "
                    + "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED (bin/baton passes it)");
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("transport nio: cannot reach the socket to set IPV6_V6ONLY: " + e, e);
        }
    }

    /** The file descriptor of a channel of this transport, or -1 for NIO. */
    public static int fd(Channel ch) {
        return ch instanceof UnixChannel u ? u.fd().intValue() : -1;
    }

    /**
     * The transport to run: the one named, or for auto the best this machine allows.
     *
     * @throws IllegalStateException naming the reason when the named transport cannot run here
     */
    public static Transport choose(TransportChoice choice) {
        switch (choice) {
            case IO_URING:
                return require(IO_URING);
            case EPOLL:
                return require(EPOLL);
            case NIO:
                return NIO;
            default:
                // epoll first (docs/transports.md): it runs every feature, and Netty 4.2.18's io_uring
                // UDP socket reserves 512 message headers (~130 KB of heap) each, which a flow per
                // client or a 1,000-port UDP range cannot afford.
                if (EPOLL.isAvailable()) {
                    return EPOLL;
                }
                if (IO_URING.isAvailable()) {
                    return IO_URING;
                }
                return NIO;
        }
    }

    private static Transport require(Transport t) {
        if (!t.isAvailable()) {
            Throwable cause = t.unavailabilityCause();
            throw new IllegalStateException("transport " + t.label + " cannot run here: "
                    + (cause == null ? "unavailable" : cause.getMessage()));
        }
        return t;
    }

    /** Socket option constants of one transport; null where the transport has no such option. */
    public record SocketOptions(
            ChannelOption<Boolean> reusePort,
            ChannelOption<Integer> keepIdle,
            ChannelOption<Integer> keepInterval,
            ChannelOption<Integer> keepCount,
            ChannelOption<Integer> deferAccept,
            ChannelOption<Boolean> freebind) {
    }
}

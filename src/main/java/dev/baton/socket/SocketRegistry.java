package dev.baton.socket;

import dev.baton.config.Protocol;
import dev.baton.config.TcpSettings;
import dev.baton.os.Fds;
import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.SocketProtocolFamily;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import dev.baton.os.NetNamespace;

import java.net.BindException;
import java.net.Inet6Address;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntFunction;
import java.util.function.Function;

/**
 * Every listening socket baton holds, keyed by protocol and address. The one place that binds,
 * adopts sockets handed over by a predecessor or by systemd, and lists them for a successor.
 *
 * <p>Methods are called from the control thread (start, reload, upgrade), never from a worker.
 */
public final class SocketRegistry {
    private static final Logger log = LoggerFactory.getLogger(SocketRegistry.class);
    /** Largest UDP payload over IPv4 (65535 - 8 - 20), rounded up to a power of two for the pool. */
    public static final int MAX_DATAGRAM = 65536;

    private final Workers workers;
    private final Map<ListenerKey, Listener> listeners = new LinkedHashMap<>();
    /** Sockets offered by a predecessor or systemd, not yet claimed: key -> (index -> fd). */
    private final Map<ListenerKey, TreeMap<Integer, Integer>> offered = new HashMap<>();

    /** While a batch is open: binds started and not yet awaited, in order (see {@link #startBatch}). */
    private List<Map.Entry<ListenerKey, ChannelFuture>> batch;

    /**
     * ServerBootstrap wants a child handler; TCP acceptors take every connection before Netty's
     * acceptor would add it, so it is never used.
     */
    @ChannelHandler.Sharable
    private static final class Unreached extends io.netty.channel.ChannelInboundHandlerAdapter {
    }

    private static final ChannelHandler UNREACHED = new Unreached();

    /** While set (a successor taking over), new sockets do not read until {@link #startReading}. */
    private boolean holdReads;

    /**
     * Listening sockets that {@link #stopReading} released by closing this process's descriptor
     * (io_uring TCP): a duplicate descriptor of each, so that {@link #resumeReading} can serve the
     * same kernel socket again if the successor fails.
     */
    private final Map<Channel, Integer> releasedByClosing = new HashMap<>();

    public SocketRegistry(Workers workers) {
        this.workers = workers;
    }

    public Workers workers() {
        return workers;
    }

    /** Offers an inherited listening socket; {@link #openTcp}/{@link #openUdp} adopt it. */
    public synchronized void offer(ListenerKey key, int index, int fd) {
        Integer previous = offered.computeIfAbsent(key, k -> new TreeMap<>()).put(index, fd);
        if (previous != null) {
            throw new IllegalArgumentException("socket " + index + " of " + key + " offered twice");
        }
    }

    /** Sockets offered but not claimed by the configuration: the caller decides their fate. */
    public synchronized Map<ListenerKey, TreeMap<Integer, Integer>> unclaimed() {
        return Map.copyOf(offered);
    }

    public synchronized void forgetUnclaimed() {
        offered.clear();
    }

    public synchronized Listener get(ListenerKey key) {
        return listeners.get(key);
    }

    public synchronized Collection<Listener> all() {
        return List.copyOf(listeners.values());
    }

    /**
     * Opens a TCP listen address: adopts every offered socket for it, and binds new SO_REUSEPORT
     * sockets until each worker has one. {@code acceptor} is each socket's handler: it receives
     * every accepted connection (a channel, not registered yet) and owns it from then on.
     */
    public synchronized Listener openTcp(ListenerKey key, NetNamespace netns, TcpSettings tcp,
                                         ChannelHandler acceptor, Object target) throws ListenException {
        Transport t = workers.transport();
        Transport.SocketOptions o = t.options();
        return open(key, target, (index, fd) -> {
            EventLoop loop = workers.loop(index);
            ServerBootstrap b = new ServerBootstrap()
                    .group(loop, loop)
                    .channelFactory(() -> fd == null ? create(key, netns, t::newServerChannel) : t.adoptServerChannel(fd))
                    .option(ChannelOption.SO_BACKLOG, tcp.backlog())
                    .option(ChannelOption.SO_REUSEADDR, true)
                    .option(ChannelOption.AUTO_READ, !holdReads)
                    .handler(acceptor)
                    .childHandler(UNREACHED);
            if (fd != null) {
                // An inherited socket is bound and listening with its options set already.
                return b.register();
            }
            if (o.reusePort() != null) {
                b.option(o.reusePort(), true);
            }
            if (tcp.fastOpen() > 0) {
                b.option(ChannelOption.TCP_FASTOPEN, tcp.fastOpen());
            }
            if (!tcp.deferAccept().isZero() && o.deferAccept() != null) {
                b.option(o.deferAccept(), (int) Math.max(1, tcp.deferAccept().toSeconds()));
            }
            if (tcp.freebind() && o.freebind() != null) {
                b.option(o.freebind(), true);
            }
            return b.bind(key.address());
        });
    }

    /** Opens a UDP listen address, like {@link #openTcp}; the handler is made per socket. */
    public synchronized Listener openUdp(ListenerKey key, NetNamespace netns, int receiveBuffer,
                                         IntFunction<ChannelHandler> handlerForSocket,
                                         Object target) throws ListenException {
        Transport t = workers.transport();
        Transport.SocketOptions o = t.options();
        return open(key, target, (index, fd) -> {
            Bootstrap b = new Bootstrap()
                    .group(workers.loop(index))
                    .channelFactory(() -> fd == null ? create(key, netns, t::newDatagramChannel)
                            : t.adoptDatagramChannel(fd))
                    .option(ChannelOption.SO_REUSEADDR, true)
                    .option(ChannelOption.AUTO_READ, !holdReads)
                    .option(ChannelOption.RCVBUF_ALLOCATOR, t.listenerReads())
                    .option(ChannelOption.ALLOCATOR, PooledByteBufAllocator.DEFAULT)
                    .option(ChannelOption.SO_RCVBUF, receiveBuffer)
                    .handler(handlerForSocket.apply(index));
            if (o.reusePort() != null) {
                b.option(o.reusePort(), true);
            }
            return fd == null ? b.bind(key.address()) : b.register();
        });
    }

    /**
     * A new socket for a listen address: made in its network namespace (if not baton's own), of
     * its address's family, and for an IPv6 address with IPV6_V6ONLY as the key says.
     */
    private <C extends Channel> C create(ListenerKey key, NetNamespace netns, Function<SocketProtocolFamily, C> factory) {
        Transport t = workers.transport();
        boolean ipv6 = key.address().getAddress() instanceof Inet6Address;
        SocketProtocolFamily family = ipv6 ? SocketProtocolFamily.INET6 : SocketProtocolFamily.INET;
        C ch = netns == null ? factory.apply(family) : netns.call(() -> factory.apply(family));
        if (ipv6) {
            try {
                t.setIpv6Only(ch, key.ipv6Only());
            } catch (RuntimeException e) {
                ch.unsafe().closeForcibly();
                throw e;
            }
        }
        return ch;
    }

    private interface Starter {
        ChannelFuture start(int index, Integer fd);
    }

    private Listener open(ListenerKey key, Object target, Starter starter) throws ListenException {
        if (listeners.containsKey(key)) {
            throw new IllegalStateException(key + " is already open");
        }
        Transport t = workers.transport();
        TreeMap<Integer, Integer> inherited = offered.remove(key);
        if (inherited != null && !t.supportsReusePortAndHandoff()) {
            throw new ListenException("cannot adopt the handed-over sockets of " + key + ": transport "
                    + t.label() + " cannot adopt sockets");
        }
        int wanted = t.supportsReusePortAndHandoff() ? workers.count() : 1;
        if (batch != null && inherited == null) {
            List<Channel> started = new ArrayList<>();
            try {
                for (int index = 0; index < wanted; index++) {
                    ChannelFuture f = starter.start(index, null);
                    batch.add(Map.entry(key, f));
                    started.add(f.channel());
                }
            } catch (RuntimeException e) {
                for (Channel ch : started) {
                    ch.close();
                }
                throw e;
            }
            Listener l = new Listener(key, started, false, target);
            listeners.put(key, l);
            return l;
        }
        List<Channel> opened = new ArrayList<>();
        try {
            int index = 0;
            if (inherited != null) {
                for (int fd : inherited.values()) {
                    Fds.setNonBlocking(fd);
                    opened.add(await(key, starter.start(index++, fd)));
                }
            }
            for (; index < wanted; index++) {
                try {
                    opened.add(await(key, starter.start(index, null)));
                } catch (ListenException e) {
                    if (inherited == null) {
                        throw e;
                    }
                    // An inherited socket without SO_REUSEPORT (a socket unit without ReusePort=yes)
                    // cannot be joined by more sockets: it serves alone.
                    log.warn("{}: the inherited socket has no SO_REUSEPORT, so it serves alone and accepts on one "
                            + "of the {} workers (set ReusePort=yes in the socket unit)", key, wanted);
                    break;
                }
            }
        } catch (ListenException | RuntimeException e) {
            for (Channel ch : opened) {
                ch.close();
            }
            throw e;
        }
        Listener l = new Listener(key, opened, inherited != null, target);
        listeners.put(key, l);
        log.debug("{}: {} socket(s){}", key, opened.size(), inherited != null ? ", adopted " + inherited.size() : "");
        return l;
    }

    /**
     * From now until {@link #finishBatch}, opening a listen address that needs new sockets only
     * starts their binds: the workers bind them all at once, and a 1,000-port range opens in about
     * the time of one round trip to the workers instead of 1,000.
     */
    public synchronized void startBatch() {
        batch = new ArrayList<>();
    }

    /**
     * Waits for every bind of the batch. On a failure, the first one is thrown; the listen
     * addresses opened in the batch are still registered, for the caller to close.
     */
    public synchronized void finishBatch() throws ListenException {
        List<Map.Entry<ListenerKey, ChannelFuture>> started = batch;
        batch = null;
        ListenException failure = null;
        for (Map.Entry<ListenerKey, ChannelFuture> e : started) {
            try {
                await(e.getKey(), e.getValue());
            } catch (ListenException ex) {
                if (failure == null) {
                    failure = ex;
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
    }

    /** Ends a batch that failed elsewhere: waits for its binds to settle, whatever their outcome. */
    public synchronized void abandonBatch() {
        if (batch != null) {
            for (Map.Entry<ListenerKey, ChannelFuture> e : batch) {
                e.getValue().awaitUninterruptibly();
            }
            batch = null;
        }
    }

    private static Channel await(ListenerKey key, ChannelFuture f) throws ListenException {
        f.awaitUninterruptibly();
        if (f.isSuccess()) {
            return f.channel();
        }
        Throwable cause = f.cause();
        throw new ListenException("cannot listen on " + key + ": " + reason(cause));
    }

    static String reason(Throwable cause) {
        if (cause instanceof BindException || (cause.getMessage() != null
                && cause.getMessage().contains("Address already in use"))) {
            return "address already in use";
        }
        String m = String.valueOf(cause.getMessage());
        if (m.contains("Permission denied")) {
            return "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)";
        }
        if (m.contains("Cannot assign requested address")) {
            return "address not available on this host (tcp.freebind allows it)";
        }
        return m;
    }

    /** Sockets opened from now on wait for {@link #startReading} (successor during a takeover). */
    public synchronized void holdReads() {
        holdReads = true;
    }

    /** Lets every socket of this protocol accept (TCP) or read (UDP). */
    public synchronized void startReading(Protocol protocol) {
        for (Listener l : listeners.values()) {
            if (l.key().protocol() == protocol) {
                for (Channel ch : l.sockets()) {
                    ch.config().setAutoRead(true);
                }
            }
        }
        if (protocol == Protocol.UDP) {
            holdReads = false;
        }
    }

    /**
     * Takes every socket of this protocol off its worker without closing it (predecessor, once
     * the successor serves them): connections and datagrams wait in the kernel for the successor.
     */
    public synchronized List<ChannelFuture> stopReading(Protocol protocol) {
        Transport t = workers.transport();
        List<ChannelFuture> out = new ArrayList<>();
        for (Listener l : listeners.values()) {
            if (l.key().protocol() == protocol) {
                for (Channel ch : l.sockets()) {
                    if (t.releaseCloses(ch) && ch.isOpen()) {
                        releasedByClosing.put(ch, Fds.dup(Transport.fd(ch)));
                    }
                    out.add(t.release(ch));
                }
            }
        }
        return out;
    }

    /**
     * Undoes {@link #stopReading} (the successor failed after being told to go): every socket
     * accepts or reads here again; one released by closing its descriptor comes back as a new
     * channel on the kept duplicate.
     */
    public synchronized void resumeReading(Protocol protocol) {
        for (Listener l : listeners.values()) {
            if (l.key().protocol() != protocol) {
                continue;
            }
            List<Channel> sockets = l.sockets();
            for (int i = 0; i < sockets.size(); i++) {
                Channel ch = sockets.get(i);
                Integer fd = releasedByClosing.remove(ch);
                if (fd != null && l.target() instanceof ChannelHandler acceptor) {
                    Channel again = reopenTcp(l.key(), ch.eventLoop(), fd, acceptor);
                    if (again != null) {
                        l.replace(i, again);
                    }
                } else if (ch.isOpen() && !ch.isRegistered()) {
                    if (workers.transport().registersAgain(ch)) {
                        ch.eventLoop().register(ch).addListener(f -> ch.config().setAutoRead(true));
                    } else {
                        Channel again = reopenUdp(l.key(), ch);
                        if (again != null) {
                            l.replace(i, again);
                        }
                    }
                }
            }
        }
    }

    /**
     * A new channel on a released UDP socket's descriptor that takes over its handler (and with
     * it the socket's flows); the old channel is left unregistered and unused. Null if that fails.
     */
    private Channel reopenUdp(ListenerKey key, Channel old) {
        Transport t = workers.transport();
        int fd = Transport.fd(old);
        ChannelHandler handler = old.pipeline().last();
        old.pipeline().remove(handler);
        ChannelFuture f = new Bootstrap()
                .group(old.eventLoop())
                .channelFactory(() -> t.adoptDatagramChannel(fd))
                .option(ChannelOption.RCVBUF_ALLOCATOR, t.listenerReads())
                .option(ChannelOption.ALLOCATOR, PooledByteBufAllocator.DEFAULT)
                .handler(handler)
                .register()
                .awaitUninterruptibly();
        if (!f.isSuccess()) {
            log.error("{}: cannot serve a UDP socket again after the failed upgrade: {}", key, reason(f.cause()));
            return null;
        }
        return f.channel();
    }

    /** A new channel on a listening TCP socket's kept descriptor, on {@code loop}; null if that fails. */
    private Channel reopenTcp(ListenerKey key, EventLoop loop, int fd, ChannelHandler acceptor) {
        ChannelFuture f = new ServerBootstrap()
                .group(loop, loop)
                .channelFactory(() -> workers.transport().adoptServerChannel(fd))
                .handler(acceptor)
                .childHandler(UNREACHED)
                .register()
                .awaitUninterruptibly();
        if (!f.isSuccess()) {
            log.error("{}: cannot serve a listening socket again after the failed upgrade: {}", key, reason(f.cause()));
            Fds.close(fd);
            return null;
        }
        return f.channel();
    }

    /** The upgrade went through: the duplicates kept by {@link #stopReading} are not needed. */
    public synchronized void forgetReleased() {
        releasedByClosing.values().forEach(Fds::close);
        releasedByClosing.clear();
    }

    /** Closes a listen address's sockets; connections it accepted are not touched. */
    public synchronized void close(ListenerKey key) {
        Listener l = listeners.remove(key);
        if (l != null) {
            for (Channel ch : l.sockets()) {
                ch.close().awaitUninterruptibly();
            }
        }
    }

    /** Closes every listen address (stop). */
    public synchronized void closeAll() {
        for (ListenerKey key : List.copyOf(listeners.keySet())) {
            close(key);
        }
    }
}

package dev.baton.tcp;

import dev.baton.config.Addresses;
import dev.baton.config.Keepalive;
import dev.baton.config.ProxyConfig;
import dev.baton.config.ProxyProtocol;
import dev.baton.config.TcpSettings;
import dev.baton.metrics.ProxyStats;
import dev.baton.metrics.Throttle;
import dev.baton.os.DescriptorLimit;
import dev.baton.os.NetNamespace;
import dev.baton.socket.Transport;
import dev.baton.upstream.Balancer;
import io.netty.channel.AdaptiveRecvByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.BatonAccepted;
import io.netty.channel.epoll.BatonRawSocket;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.util.Attribute;
import io.netty.util.AttributeKey;
import io.netty.util.internal.PlatformDependent;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A TCP proxy: accepts on its listeners (through {@link TcpAcceptor}) and relays each connection
 * to an upstream chosen by its balancer, on the same worker. A reload swaps the settings and the
 * upstream list atomically; connections already open keep what they started with.
 */
public final class TcpProxy {
    private static final Logger log = LoggerFactory.getLogger(TcpProxy.class);
    /** Netty turns TCP_NODELAY on in the constructor of every TCP socket channel (all three transports). */
    private static final boolean NODELAY_BY_DEFAULT = PlatformDependent.canEnableTcpNoDelayByDefault();
    /**
     * How every TCP socket sizes its reads: Netty gives each channel its own allocator object with
     * these same settings (16 reads per wake-up for stream channels on every transport); the state
     * that adapts to the traffic lives in a handle per channel, made on its first read. One shared
     * allocator is 64 bytes less per idle connection.
     */
    static final RecvByteBufAllocator READS = new AdaptiveRecvByteBufAllocator().maxMessagesPerRead(16);
    private final String name;
    private final Transport transport;
    private final EventLoopGroup workers;
    private final TcpConnections connections;
    private final ProxyStats stats = new ProxyStats();
    private volatile State state;
    /** The keepalive and TCP_NODELAY a listening socket passes to the connections it accepts (absent: none known). */
    private static final AttributeKey<PassedOn> PASSED_ON = AttributeKey.valueOf("baton.listenerPassesOn");
    private final Throttle headerWarnings = new Throttle();
    private final Throttle unreachableWarnings = new Throttle();
    private final Throttle acceptWarnings = new Throttle();

    /**
     * What a new connection reads, swapped as one piece on reload: the upstream socket factory
     * (a socket for the given upstream, options set, not registered) and the idle timeout in nanoseconds (0 = none).
     */
    record State(ProxyConfig config, Balancer balancer, Function<InetSocketAddress, Channel> upstreamSocket,
                 InPlace upstreamInPlace, RawInPlace rawUpstream, long idleNanos) {
        /** Whether new connections start on raw sockets (epoll, no PROXY protocol header to send). */
        boolean raw() {
            return rawUpstream != null;
        }
    }

    /**
     * Whether epoll connections start on raw sockets ({@link BatonRawSocket}) and move to Netty
     * channels only when they need them. On by default; {@code -Dbaton.tcp.raw=false} keeps every
     * connection on channels from its accept (for side-by-side measurements).
     */
    static final boolean RAW = !"false".equals(System.getProperty("baton.tcp.raw"));

    public TcpProxy(ProxyConfig config, Transport transport, EventLoopGroup workers, TcpConnections connections) {
        this.name = config.name();
        this.transport = transport;
        this.workers = workers;
        this.connections = connections;
        this.state = build(config, null);
    }

    public String name() {
        return name;
    }

    public ProxyConfig config() {
        return state.config();
    }

    public ProxyStats stats() {
        return stats;
    }

    Transport transport() {
        return transport;
    }

    TcpConnections connections() {
        return connections;
    }

    State state() {
        return state;
    }

    /** Applies a reloaded configuration to new connections. */
    public void update(ProxyConfig config) {
        this.state = build(config, state);
    }

    private State build(ProxyConfig config, State previous) {
        Balancer balancer = Balancer.of(config.balance(), config.upstreams(),
                previous == null ? null : previous.balancer());
        TcpSettings tcp = config.tcp();
        NetNamespace netns = config.upstreamNetns();
        // No Bootstrap per connection: its clone, option maps and resolver lookup cost more than the
        // few lines it would save. The socket is made on the calling worker: switched into the
        // upstream namespace for that one call, the socket is there for life.
        Function<InetSocketAddress, Channel> upstreamSocket = to -> {
            Channel ch = netns == null ? transport.newSocketChannel(to) : netns.call(() -> transport.newSocketChannel(to));
            return configureUpstream(ch, tcp);
        };
        InPlace inPlace = (to, ackWithFirstData) -> {
            Channel ch = inNamespace(netns, () -> transport.connectInPlace(to, ackWithFirstData));
            return ch == null ? null : configureUpstream(ch, tcp);
        };
        RawInPlace raw = null;
        if (RAW && transport == Transport.EPOLL && config.proxyProtocol().send() == ProxyProtocol.OFF) {
            Keepalive ka = tcp.keepalive();
            boolean setNodelay = tcp.nodelay();
            int idle = ka.enabled() ? (int) Math.max(1, ka.idle().toSeconds()) : 0;
            int interval = (int) ka.interval().toSeconds();
            int count = ka.count();
            raw = new RawInPlace() {
                @Override
                public BatonRawSocket open(InetSocketAddress to) throws IOException {
                    return inNamespace(netns, () -> BatonRawSocket.open(to, setNodelay));
                }

                @Override
                public boolean keepalive() {
                    return idle > 0;
                }

                @Override
                public void keepalive(BatonRawSocket s) throws IOException {
                    s.keepalive(idle, interval, count);
                }
            };
        }
        return new State(config, balancer, upstreamSocket, inPlace, raw, tcp.idleTimeout().toNanos());
    }

    /** Makes a socket in the upstream's network namespace (null: this process's own), for life. */
    private static <T> T inNamespace(NetNamespace netns, SocketCall<T> call) throws IOException {
        if (netns == null) {
            return call.make();
        }
        try {
            return netns.call(() -> {
                try {
                    return call.make();
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    private interface SocketCall<T> {
        T make() throws IOException;
    }

    /** Sets up an upstream socket (not registered): reads, half-closes, options; reading off until the relay starts. */
    private Channel configureUpstream(Channel ch, TcpSettings tcp) {
        try {
            ChannelConfig cfg = ch.config();
            cfg.setConnectTimeoutMillis(0); // TcpConnection times the connect: Netty would keep its timer for life
            cfg.setRecvByteBufAllocator(READS);
            cfg.setAutoRead(false);
            cfg.setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
            if (tcp.nodelay() != NODELAY_BY_DEFAULT) {
                cfg.setOption(ChannelOption.TCP_NODELAY, tcp.nodelay());
            }
            applyKeepalive(cfg, tcp.keepalive());
            transport.connecting(ch);
            return ch;
        } catch (RuntimeException e) {
            ch.unsafe().closeForcibly(); // not registered yet: nobody else would close its descriptor
            throw e;
        }
    }

    /**
     * An upstream socket from the raw phase gets its channel: set up as {@link #configureUpstream}
     * does, minus the socket options (TCP_NODELAY set before its connect, keepalive paid as it
     * moves: {@link TcpConnection#payKeepalive}) but TCP_NODELAY, which Netty's channel config
     * turns on as the channel is made.
     */
    void promoted(Channel up, TcpSettings tcp) {
        ChannelConfig cfg = up.config();
        cfg.setRecvByteBufAllocator(READS);
        cfg.setAutoRead(false);
        cfg.setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
        if (tcp.nodelay() != NODELAY_BY_DEFAULT) {
            cfg.setOption(ChannelOption.TCP_NODELAY, tcp.nodelay());
        }
        transport.connecting(up);
    }

    /**
     * A raw upstream socket for the given upstream (options set, not connected; made in the
     * upstream's network namespace): see {@link BatonRawSocket#open}.
     */
    interface RawInPlace {
        /** A new socket for {@code to}, TCP_NODELAY as configured; keepalive comes later. */
        BatonRawSocket open(InetSocketAddress to) throws IOException;

        /** Whether the upstream sockets get keepalive ({@link #keepalive(BatonRawSocket)}). */
        boolean keepalive();

        /**
         * Gives a socket the proxy's keepalive settings (keepalive off where it is off): an
         * upstream socket from {@link #open} once the connection has lived about a second
         * ({@link KeepaliveLater}) or when it moves onto channels, an accepted one whose listening
         * socket did not pass them on.
         */
        void keepalive(BatonRawSocket s) throws IOException;
    }

    /** Connects an upstream socket in place: see {@link Transport#connectInPlace}. */
    interface InPlace {
        Channel connect(InetSocketAddress to, boolean ackWithFirstData) throws IOException;
    }

    /**
     * Logs a client closed because no upstream could be reached: one line per 10 s at most (an
     * upstream that is down would otherwise log a line per connection), the rest at debug level;
     * {@code baton status} counts them all (failed).
     */
    void unreachable(InetSocketAddress client, String failures) {
        if (unreachableWarnings.pass()) {
            long more = unreachableWarnings.takeHeldBack();
            log.warn("proxy {}: client {}: no upstream reachable ({}){}", name, Addresses.format(client), failures,
                    more == 0 ? "" : "; " + more + " more clients since the last such line (debug level)");
        } else {
            log.debug("proxy {}: client {}: no upstream reachable ({})", name, Addresses.format(client), failures);
        }
    }

    /**
     * An accept failed: reported (out of descriptors once per 10 s for the process, anything else
     * once per 10 s for this proxy), and the socket stops accepting for a second (as Netty's own
     * acceptor does) so that a listener that stays readable does not spin the worker.
     */
    void acceptFailed(Channel listener, Throwable cause) {
        ChannelConfig cfg = listener.config();
        if (cfg.isAutoRead()) {
            cfg.setAutoRead(false);
            listener.eventLoop().schedule(() -> {
                if (listener.isOpen() && listener.isRegistered()) {
                    cfg.setAutoRead(true);
                }
            }, 1, TimeUnit.SECONDS);
        }
        if (DescriptorLimit.reached(cause)) {
            DescriptorLimit.report("proxy " + name + " cannot accept connections; accepting pauses for 1 s at a time");
            return;
        }
        if (acceptWarnings.pass()) {
            log.warn("proxy {}: accepting on {} failed: {}; accepting pauses for 1 s", name,
                    Addresses.format((InetSocketAddress) listener.localAddress()), cause.toString());
        } else {
            log.debug("proxy {}: accept failed: {}", name, cause.toString());
        }
    }

    /** Counts a trusted connection closed for its PROXY protocol header; logs one line per 10 s at most. */
    void badProxyHeader(InetSocketAddress from, String why) {
        stats.badProxyHeader.increment();
        if (headerWarnings.pass()) {
            log.warn("proxy {}: closed a connection from trusted source {}: bad PROXY protocol header: {} "
                    + "({} so far; more within 10 s at debug level)", name, Addresses.format(from), why,
                    stats.badProxyHeader.sum());
        } else {
            log.debug("proxy {}: closed a connection from trusted source {}: bad PROXY protocol header: {}", name,
                    Addresses.format(from), why);
        }
    }

    /**
     * Called on the accepting worker for every new client connection, before it is registered:
     * sets it up and registers it on that worker, as Netty's acceptor would (same options).
     */
    void accept(Channel client, Channel listener) {
        State s = state;
        if (!setUp(client, s.config().tcp(), listener)) {
            return;
        }
        register(new TcpConnection(this, s, client, listener.eventLoop()), client);
    }

    /**
     * Called on the accepting worker for every connection an epoll listener accepted: relayed on
     * raw sockets where it can be, without a channel, which is made only if it needs one.
     */
    void accept(BatonAccepted accepted) {
        State s = state;
        Channel listener = accepted.listener();
        if (!s.raw()) {
            accept(accepted.channel(), listener);
            return;
        }
        TcpSettings tcp = s.config().tcp();
        if (!listenerPassesOn(listener, tcp)) {
            // TCP_NODELAY and keepalive are inherited from the listening socket once it has them.
            try {
                accepted.raw().nodelay(tcp.nodelay());
                s.rawUpstream().keepalive(accepted.raw()); // both sides have the proxy's settings
            } catch (IOException e) {
                log.debug("proxy {}: cannot set up an accepted connection: {}", name, e.toString());
                accepted.raw().close(false);
                return;
            }
        }
        TcpConnection c = new TcpConnection(this, s, accepted, listener.eventLoop());
        if (c.startRaw()) {
            return;
        }
        Channel client = c.clientChannel(); // a trusted PROXY protocol source: on channels from its accept
        if (client != null) {
            register(c, client);
        }
    }

    private static void register(TcpConnection c, Channel client) {
        ChannelFuture registered = c.loop().register(client);
        if (registered.isDone()) { // on this worker it is at once
            c.registered(registered);
        } else {
            registered.addListener(c::registered);
        }
    }

    /**
     * Sets up a channel on an accepted socket, not registered yet: reading off, half-closes,
     * transport specifics, options. False if that failed (the socket is then closed).
     */
    boolean setUp(Channel client, TcpSettings tcp, Channel listener) {
        ChannelConfig cfg = client.config();
        try {
            cfg.setAutoRead(false);
            cfg.setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
            transport.accepted(client);
            applyClientOptions(client, tcp, listener);
            return true;
        } catch (RuntimeException e) {
            log.debug("proxy {}: cannot set up an accepted connection: {}", name, e.toString());
            client.unsafe().closeForcibly();
            return false;
        }
    }

    /**
     * The shared read sizing, TCP_NODELAY (where it differs from Netty's default) and keepalive on
     * an accepted socket.
     */
    private void applyClientOptions(Channel client, TcpSettings tcp, Channel listener) {
        client.config().setRecvByteBufAllocator(READS);
        if (tcp.nodelay() != NODELAY_BY_DEFAULT) {
            client.config().setOption(ChannelOption.TCP_NODELAY, tcp.nodelay());
        }
        if (!listenerPassesOn(listener, tcp)) {
            applyKeepalive(client.config(), tcp.keepalive());
        }
    }

    /**
     * Whether the listening socket already gives the connections it accepts these settings'
     * keepalive and TCP_NODELAY; if not, it is brought up to date (for the next ones) and this
     * one is to be set on its own. Where the transport lets baton set them on the listening socket
     * a connection inherits them (the kernel copies the listener's socket): system calls fewer per
     * connection. The first connection after a start, or after a reload that changed them, is set
     * on its own; one that completed its handshake just before such a reload may keep the previous
     * settings, as open connections do.
     */
    private boolean listenerPassesOn(Channel listener, TcpSettings tcp) {
        Attribute<PassedOn> carried = listener.attr(PASSED_ON);
        PassedOn now = carried.get();
        if (now != null && now.passes(tcp)) {
            return true;
        }
        PassedOn wanted = new PassedOn(tcp.keepalive(), tcp.nodelay());
        carried.set(transport.setListenerOptions(listener, wanted.keepalive(), wanted.nodelay()) ? wanted : null);
        return false;
    }

    /** What a listening socket passes on to the connections it accepts. */
    private record PassedOn(Keepalive keepalive, boolean nodelay) {
        /**
         * Whether these are the settings' (asked on every connection: the same Keepalive object
         * unless a reload made a new one, so a record's equals, bootstrapped through method handles
         * on its first call, some 10 ms of the first connection, is rarely reached).
         */
        boolean passes(TcpSettings tcp) {
            return nodelay == tcp.nodelay() && (keepalive == tcp.keepalive() || keepalive.equals(tcp.keepalive()));
        }
    }

    /** Sets SO_KEEPALIVE and its timers on a connection's socket. */
    private void applyKeepalive(ChannelConfig cfg, Keepalive ka) {
        cfg.setOption(ChannelOption.SO_KEEPALIVE, ka.enabled());
        if (ka.enabled()) {
            Transport.SocketOptions o = transport.options();
            cfg.setOption(o.keepIdle(), (int) ka.idle().toSeconds());
            cfg.setOption(o.keepInterval(), (int) ka.interval().toSeconds());
            cfg.setOption(o.keepCount(), ka.count());
        }
    }
}

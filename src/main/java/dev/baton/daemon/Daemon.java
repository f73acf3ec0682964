package dev.baton.daemon;

import io.netty.channel.epoll.BatonSplice;
import dev.baton.config.Addresses;
import dev.baton.config.BatonConfig;
import dev.baton.config.Protocol;
import dev.baton.config.ProxyConfig;
import dev.baton.os.DescriptorLimit;
import dev.baton.os.Sysctl;
import dev.baton.socket.ListenException;
import dev.baton.socket.Listener;
import dev.baton.socket.ListenerKey;
import dev.baton.socket.SocketRegistry;
import dev.baton.socket.Transport;
import dev.baton.socket.Workers;
import dev.baton.tcp.TcpAcceptor;
import dev.baton.tcp.TcpConnections;
import dev.baton.tcp.TcpProxy;
import dev.baton.udp.UdpProxy;
import dev.baton.udp.UdpRoute;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The running proxy: owns the workers, the socket registry and the proxies, and takes them
 * through start, reload and stop. Lifecycle methods are called from one control thread at a time.
 */
public final class Daemon {
    private static final Logger log = LoggerFactory.getLogger(Daemon.class);

    private final Transport transport;
    private final Workers workers;
    private final SocketRegistry registry;
    private final TcpConnections connections;
    private final Map<String, TcpProxy> tcpProxies = new HashMap<>();
    private final Map<String, UdpProxy> udpProxies = new HashMap<>();
    private final Map<String, TcpProxy> orphans = new java.util.concurrent.ConcurrentHashMap<>();
    private BatonConfig config;

    public Daemon(BatonConfig config) {
        this.config = config;
        this.transport = Transport.choose(config.transport());
        List<String> unsupported = unsupported(config, transport);
        if (!unsupported.isEmpty()) {
            throw new IllegalStateException(String.join("; ", unsupported));
        }
        this.workers = new Workers(transport, config.workers());
        DescriptorLimit.softLimit(); // read now: reporting its exhaustion later must not need a descriptor for it
        this.registry = new SocketRegistry(workers);
        this.connections = new TcpConnections(workers.loops());
    }

    /**
     * What this configuration asks for that the transport cannot do; never silently dropped.
     * (io_uring and epoll support every feature; nio lacks the Linux-only listener options.)
     */
    public static List<String> unsupported(BatonConfig config, Transport transport) {
        List<String> out = new ArrayList<>();
        if (transport.options().deferAccept() != null) {
            return out;
        }
        for (ProxyConfig p : config.proxyList()) {
            if (p.protocol() != Protocol.TCP) {
                continue;
            }
            if (!p.tcp().deferAccept().isZero()) {
                out.add("proxy " + p.name() + ": tcp.defer-accept needs transport epoll or io_uring, not "
                        + transport.label());
            }
            if (p.tcp().freebind()) {
                out.add("proxy " + p.name() + ": tcp.freebind needs transport epoll or io_uring, not "
                        + transport.label());
            }
        }
        return out;
    }

    public Transport transport() {
        return transport;
    }

    public SocketRegistry registry() {
        return registry;
    }

    public Workers workers() {
        return workers;
    }

    public TcpConnections connections() {
        return connections;
    }

    public BatonConfig config() {
        return config;
    }

    public TcpProxy tcpProxy(String name) {
        return tcpProxies.get(name);
    }

    public UdpProxy udpProxy(String name) {
        return udpProxies.get(name);
    }

    /**
     * The proxy that takes over a connection handed over under {@code name}: the configured one,
     * or, if this configuration no longer has it, a stand-in with default settings so the
     * connection still runs to its end.
     */
    public TcpProxy tcpProxyForAdoption(String name, InetSocketAddress upstream) {
        TcpProxy p = tcpProxies.get(name);
        if (p != null) {
            return p;
        }
        return orphans.computeIfAbsent(name, n -> new TcpProxy(dev.baton.config.Defaults.orphanTcp(n, upstream),
                transport, workers.group(), connections));
    }

    /** Opens every configured listener; on failure closes what it opened and throws. */
    public void start() throws ListenException {
        log.info("transport {}, {} workers", transport.label(), workers.count());
        if (!transport.supportsReusePortAndHandoff()) {
            log.warn("transport {} has no SO_REUSEPORT: one socket per listen address, and no socket handoff",
                    transport.label());
        }
        if (transport == Transport.IO_URING
                && config.proxyList().stream().anyMatch(p -> p.protocol() == dev.baton.config.Protocol.TCP)) {
            log.warn("transport io_uring: this Netty version mostly misses a reset that follows data on a TCP "
                    + "connection; the other side of such a connection then ends at tcp.idle-timeout (epoll has "
                    + "no such gap)");
        }
        if (transport == Transport.IO_URING
                && config.proxyList().stream().anyMatch(p -> p.protocol() == dev.baton.config.Protocol.UDP)) {
            log.warn("transport io_uring: each UDP socket (listener or flow) reserves about 130 KB of heap in this "
                    + "Netty version; many flows or large UDP ranges need epoll");
        }
        apply(config, true);
    }

    /** Applies a new configuration; on failure nothing has changed. */
    public void reload(BatonConfig next) throws ListenException {
        if (next.workers() != config.workers() || next.transport() != config.transport()) {
            log.warn("reload: workers and transport apply at the next upgrade or restart, not on reload");
        }
        apply(next, false);
        log.info("reloaded {}: {}", next.source(), next.summary());
    }

    /**
     * Applies a change of the runtime mappings (`baton map add|rm`): like a reload, but nothing is
     * read from disk. Only the listen addresses that come or go are touched; on failure nothing
     * has changed.
     */
    public void remap(BatonConfig next) throws ListenException {
        apply(next, false);
    }

    private void apply(BatonConfig next, boolean starting) throws ListenException {
        warnBacklog(next);
        // 1. Proxy objects for the new configuration, reusing those whose name and protocol stay.
        Map<String, TcpProxy> tcp = new LinkedHashMap<>();
        Map<String, UdpProxy> udp = new LinkedHashMap<>();
        Map<ListenerKey, ProxyConfig> wanted = new LinkedHashMap<>();
        for (ProxyConfig p : next.proxyList()) {
            if (p.protocol() == Protocol.TCP) {
                TcpProxy existing = tcpProxies.get(p.name());
                tcp.put(p.name(), existing != null ? existing
                        : new TcpProxy(p, transport, workers.group(), connections));
            } else {
                UdpProxy existing = udpProxies.get(p.name());
                udp.put(p.name(), existing != null ? existing : new UdpProxy(p, transport, workers.group()));
            }
            for (InetSocketAddress a : p.listen()) {
                wanted.put(ListenerKey.of(p, a), p);
            }
        }
        // 2. Open the listen addresses that are new, all binds at once (a 1,000-port range costs one
        // round trip to the workers, not 1,000); any failure undoes this step and stops here.
        List<ListenerKey> opened = new ArrayList<>();
        registry.startBatch();
        try {
            for (Map.Entry<ListenerKey, ProxyConfig> e : wanted.entrySet()) {
                ListenerKey key = e.getKey();
                if (registry.get(key) != null) {
                    continue;
                }
                ProxyConfig p = e.getValue();
                if (p.protocol() == Protocol.TCP) {
                    TcpProxy proxy = tcp.get(p.name());
                    TcpAcceptor acceptor = new TcpAcceptor(proxy);
                    registry.openTcp(key, p.listenNetns(), p.tcp(), acceptor, acceptor);
                } else {
                    UdpRoute route = new UdpRoute(udp.get(p.name()));
                    registry.openUdp(key, p.listenNetns(), p.udp().receiveBuffer(), i -> route.newHandler(), route);
                }
                opened.add(key);
            }
            registry.finishBatch();
        } catch (ListenException | RuntimeException e) {
            registry.abandonBatch();
            for (ListenerKey key : opened) {
                registry.close(key);
            }
            throw e;
        }
        for (ListenerKey key : opened) {
            Listener l = registry.get(key);
            ProxyConfig p = wanted.get(key);
            log.info("proxy {}: {} {} on {}{} -> {}{} ({} socket{}{})", p.name(),
                    l.adopted() ? "adopted" : "listening", key.protocol().label(), Addresses.format(key.address()),
                    p.listenNetns() == null ? "" : " in " + p.listenNetns(), upstreams(p),
                    p.upstreamNetns() == null ? "" : " in " + p.upstreamNetns(),
                    l.sockets().size(), l.sockets().size() == 1 ? "" : "s",
                    p.protocol() == Protocol.TCP ? ", backlog " + p.tcp().backlog() : "");
        }
        // 3. Commit: new settings for new connections, listeners moved to their proxies, old ones closed.
        // A proxy whose configuration did not change is left exactly as it is.
        for (ProxyConfig p : next.proxyList()) {
            if (p.protocol() == Protocol.TCP) {
                TcpProxy proxy = tcp.get(p.name());
                if (changed(proxy.config(), p)) {
                    proxy.update(p);
                }
            } else {
                UdpProxy proxy = udp.get(p.name());
                if (changed(proxy.config(), p)) {
                    proxy.update(p);
                }
            }
        }
        for (Map.Entry<ListenerKey, ProxyConfig> e : wanted.entrySet()) {
            Listener l = registry.get(e.getKey());
            String name = e.getValue().name();
            if (l.target() instanceof TcpAcceptor a) {
                a.proxy(tcp.get(name));
            } else if (l.target() instanceof UdpRoute r) {
                r.proxy(udp.get(name));
            }
        }
        for (Listener l : registry.all()) {
            if (!wanted.containsKey(l.key())) {
                registry.close(l.key());
                log.info("closed {} (no longer configured)", l.key());
            }
        }
        if (!starting) {
            for (String name : tcpProxies.keySet()) {
                if (!tcp.containsKey(name)) {
                    log.info("proxy {} removed; its open connections continue until they end", name);
                }
            }
        }
        tcpProxies.clear();
        tcpProxies.putAll(tcp);
        udpProxies.clear();
        udpProxies.putAll(udp);
        config = next;
    }

    /**
     * Whether a running proxy needs {@code next}. Same object at start (the proxy was just made
     * from it): no call to the record's equals, which is bootstrapped through method handles on
     * first use (some 10 ms of a start).
     */
    private static boolean changed(ProxyConfig running, ProxyConfig next) {
        return running != next && !running.equals(next);
    }

    private static String upstreams(ProxyConfig p) {
        List<String> s = new ArrayList<>();
        for (InetSocketAddress a : p.upstreams()) {
            s.add(Addresses.format(a));
        }
        return String.join(", ", s);
    }

    private void warnBacklog(BatonConfig c) {
        int somaxconn = Sysctl.somaxconn();
        if (somaxconn <= 0) {
            return;
        }
        for (ProxyConfig p : c.proxyList()) {
            if (p.protocol() == Protocol.TCP && p.tcp().backlog() > somaxconn) {
                log.warn("proxy {}: backlog {} exceeds net.core.somaxconn {}; the kernel caps it at {}",
                        p.name(), p.tcp().backlog(), somaxconn, somaxconn);
            }
        }
    }

    /** One line per proxy: its counters (for `baton status`). */
    public java.util.List<String> proxyStatus() {
        java.util.List<String> out = new ArrayList<>();
        for (TcpProxy p : tcpProxies.values()) {
            out.add(String.format("proxy %s tcp active=%d opened=%d failed=%d", p.name(), p.stats().active.get(),
                    p.stats().opened.sum(), p.stats().failed.sum())
                    + (p.config().proxyProtocol().acceptFrom().isEmpty() ? ""
                            : " bad-proxy-header=" + p.stats().badProxyHeader.sum()));
        }
        for (UdpProxy p : udpProxies.values()) {
            out.add(String.format("proxy %s udp flows=%d opened=%d failed=%d dropped=%d in=%d out=%d", p.name(),
                    p.stats().active.get(), p.stats().opened.sum(), p.stats().failed.sum(), p.stats().dropped.sum(),
                    p.stats().datagramsIn.sum(), p.stats().datagramsOut.sum()));
        }
        if (transport == Transport.EPOLL && !tcpProxies.isEmpty()) {
            // Process-wide: bytes relayed zero-copy, and bytes a full destination made copy instead.
            out.add(String.format("tcp splice spliced-bytes=%d copied-bytes=%d", BatonSplice.splicedBytes(),
                    BatonSplice.copiedBytes()));
            // Connections begun on raw sockets, and those that later moved onto channels.
            out.add(String.format("tcp raw started=%d moved=%d", dev.baton.tcp.TcpConnection.rawStarted(),
                    dev.baton.tcp.TcpConnection.rawMoved()));
        }
        return out;
    }

    /** Upgrade, successor side: hold datagrams of unknown clients until the flows have moved. */
    public void deferNewUdpFlows() {
        for (Listener l : registry.all()) {
            if (l.target() instanceof UdpRoute r) {
                r.deferNewFlows();
            }
        }
    }

    /** Upgrade, successor side: the flows have moved; serve the clients that waited. */
    public void openDeferredUdpFlows() {
        for (Listener l : registry.all()) {
            if (l.target() instanceof UdpRoute r) {
                r.openDeferredFlows();
            }
        }
    }

    /** UDP flows open now, over all listeners. */
    public int flowCount() {
        int n = 0;
        for (Listener l : registry.all()) {
            if (l.target() instanceof UdpRoute r) {
                n += r.flowCount();
            }
        }
        return n;
    }

    /**
     * Stops accepting, lets open connections and flows finish for at most drain-timeout, then
     * closes everything and releases the workers.
     */
    public void stop() {
        long deadline = System.nanoTime() + config.drainTimeout().toNanos();
        for (Listener l : registry.all()) {
            if (l.target() instanceof UdpRoute r) {
                r.drain();
            } else {
                registry.close(l.key());
            }
        }
        int tcp = connections.count();
        int flows = flowCount();
        if (tcp + flows > 0) {
            log.info("draining {} connections and {} flows for up to {}s", tcp, flows,
                    config.drainTimeout().toSeconds());
        }
        while ((connections.count() > 0 || flowCount() > 0) && System.nanoTime() < deadline) {
            try {
                TimeUnit.MILLISECONDS.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        tcp = connections.count();
        flows = flowCount();
        if (tcp + flows > 0) {
            log.info("drain timeout: closing {} connections and {} flows", tcp, flows);
        }
        connections.closeAll();
        registry.closeAll();
        workers.settle();
        workers.close();
    }
}

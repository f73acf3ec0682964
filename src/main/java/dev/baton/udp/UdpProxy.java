package dev.baton.udp;

import dev.baton.config.ProxyConfig;
import dev.baton.metrics.ProxyStats;
import dev.baton.os.NetNamespace;
import dev.baton.socket.SocketRegistry;
import dev.baton.socket.Transport;
import dev.baton.upstream.Balancer;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.socket.SocketProtocolFamily;


/**
 * A UDP proxy: a flow per client address, each with its own connected upstream socket, so the
 * kernel delivers each upstream's replies to the right flow and the upstream sees one stable
 * source address per client.
 */
public final class UdpProxy {
    private final String name;
    private final Transport transport;
    private final EventLoopGroup workers;
    private final ProxyStats stats = new ProxyStats();
    private volatile State state;

    /**
     * A flow's socket is of its upstream's own family: an IPv4 upstream gets an AF_INET socket, not
     * a dual-stack AF_INET6 one that the kernel maps to IPv4 on every send and receive.
     */
    record State(ProxyConfig config, Balancer balancer, Bootstrap upstreamTemplate4, Bootstrap upstreamTemplate6) {
        Bootstrap upstreamTemplate(java.net.InetSocketAddress upstream) {
            return upstream.getAddress() instanceof java.net.Inet4Address ? upstreamTemplate4 : upstreamTemplate6;
        }
    }

    public UdpProxy(ProxyConfig config, Transport transport, EventLoopGroup workers) {
        this.name = config.name();
        this.transport = transport;
        this.workers = workers;
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

    State state() {
        return state;
    }

    public void update(ProxyConfig config) {
        this.state = build(config, state);
    }

    private State build(ProxyConfig config, State previous) {
        Balancer balancer = Balancer.of(config.balance(), config.upstreams(),
                previous == null ? null : previous.balancer());
        NetNamespace netns = config.upstreamNetns();
        // A flow's socket is made on its worker in Bootstrap.connect, inside the upstream namespace.
        Bootstrap b = new Bootstrap()
                .group(workers)
                .option(ChannelOption.RCVBUF_ALLOCATOR, transport.flowReads())
                .option(ChannelOption.ALLOCATOR, io.netty.buffer.PooledByteBufAllocator.DEFAULT)
                .option(ChannelOption.WRITE_BUFFER_WATER_MARK, UdpFlow.WRITES)
                .option(ChannelOption.SO_RCVBUF, config.udp().receiveBuffer());
        return new State(config, balancer, flows(b.clone(), SocketProtocolFamily.INET, netns),
                flows(b, SocketProtocolFamily.INET6, netns));
    }

    private Bootstrap flows(Bootstrap b, SocketProtocolFamily family, NetNamespace netns) {
        return b.channelFactory(netns == null ? () -> transport.newDatagramChannel(family)
                : () -> netns.call(() -> transport.newDatagramChannel(family)));
    }
}

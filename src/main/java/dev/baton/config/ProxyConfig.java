package dev.baton.config;

import dev.baton.os.NetNamespace;

import java.net.InetSocketAddress;
import java.util.List;

/**
 * One proxy: where it listens, where it forwards, and how. Immutable.
 *
 * @param ipv6Only      IPV6_V6ONLY on "[::]" listen sockets: IPv6 clients only (true) or IPv4 too
 * @param listenNetns   the network namespace its listen sockets are made in; null for baton's own
 * @param upstreamNetns the network namespace its upstream sockets are made in; null for baton's own
 */
public record ProxyConfig(
        String name,
        Protocol protocol,
        List<InetSocketAddress> listen,
        List<InetSocketAddress> upstreams,
        Balance balance,
        TcpSettings tcp,
        UdpSettings udp,
        ProxyProtocolSettings proxyProtocol,
        boolean ipv6Only,
        NetNamespace listenNetns,
        NetNamespace upstreamNetns) {

    public ProxyConfig {
        listen = List.copyOf(listen);
        upstreams = List.copyOf(upstreams);
    }

    /**
     * A proxy in baton's own namespace, "[::]" taking IPv6 clients only (the defaults), with
     * these PROXY protocol settings.
     */
    public ProxyConfig(String name, Protocol protocol, List<InetSocketAddress> listen,
                       List<InetSocketAddress> upstreams, Balance balance, TcpSettings tcp, UdpSettings udp,
                       ProxyProtocolSettings proxyProtocol) {
        this(name, protocol, listen, upstreams, balance, tcp, udp, proxyProtocol, true, null, null);
    }

    /** A proxy that neither sends nor accepts PROXY protocol headers, with the defaults above. */
    public ProxyConfig(String name, Protocol protocol, List<InetSocketAddress> listen,
                       List<InetSocketAddress> upstreams, Balance balance, TcpSettings tcp, UdpSettings udp) {
        this(name, protocol, listen, upstreams, balance, tcp, udp, ProxyProtocolSettings.OFF);
    }
}

package dev.baton.config;

import java.net.InetSocketAddress;
import java.util.List;

/** One proxy: where it listens, where it forwards, and how. Immutable. */
public record ProxyConfig(
        String name,
        Protocol protocol,
        List<InetSocketAddress> listen,
        List<InetSocketAddress> upstreams,
        Balance balance,
        TcpSettings tcp,
        UdpSettings udp,
        ProxyProtocolSettings proxyProtocol) {

    public ProxyConfig {
        listen = List.copyOf(listen);
        upstreams = List.copyOf(upstreams);
    }

    /** A proxy that neither sends nor accepts PROXY protocol headers. */
    public ProxyConfig(String name, Protocol protocol, List<InetSocketAddress> listen,
                       List<InetSocketAddress> upstreams, Balance balance, TcpSettings tcp, UdpSettings udp) {
        this(name, protocol, listen, upstreams, balance, tcp, udp, ProxyProtocolSettings.OFF);
    }
}

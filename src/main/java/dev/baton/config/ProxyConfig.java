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
        UdpSettings udp) {

    public ProxyConfig {
        listen = List.copyOf(listen);
        upstreams = List.copyOf(upstreams);
    }
}

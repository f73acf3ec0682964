package dev.baton.config;

import java.net.InetAddress;
import java.util.List;

/**
 * The client's address across a proxy: the PROXY protocol header sent to upstreams
 * ({@code proxy-protocol}), and the sources whose connections must start with one
 * ({@code accept-proxy-protocol}; empty = none).
 */
public record ProxyProtocolSettings(ProxyProtocol send, List<Cidr> acceptFrom) {
    public static final ProxyProtocolSettings OFF = new ProxyProtocolSettings(ProxyProtocol.OFF, List.of());

    public ProxyProtocolSettings {
        acceptFrom = List.copyOf(acceptFrom);
    }

    /** Whether a connection from {@code source} must begin with a PROXY protocol header. */
    public boolean trusts(InetAddress source) {
        for (int i = 0; i < acceptFrom.size(); i++) {
            if (acceptFrom.get(i).contains(source)) {
                return true;
            }
        }
        return false;
    }
}

package dev.baton.config;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The whole validated configuration. Immutable; a reload builds a new one. {@code proxies} holds
 * every proxy, those of the configuration file and those of the runtime mappings alike.
 */
public record BatonConfig(
        Path source,
        TransportChoice transport,
        int workers,
        Duration drainTimeout,
        Duration upgradeTimeout,
        Path controlSocket,
        Map<String, ProxyConfig> proxies,
        RuntimeMappings runtime) {

    public BatonConfig {
        proxies = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(proxies));
    }

    public Collection<ProxyConfig> proxyList() {
        return proxies.values();
    }

    /** One line for logs and `baton check`. */
    public String summary() {
        long tcp = proxies.values().stream().filter(p -> p.protocol() == Protocol.TCP).count();
        long listeners = proxies.values().stream().mapToLong(p -> p.listen().size()).sum();
        return String.format("%d proxies (%d tcp, %d udp), %d listen addresses, transport %s, %d workers",
                proxies.size(), tcp, proxies.size() - tcp, listeners, transport.label(), workers);
    }
}

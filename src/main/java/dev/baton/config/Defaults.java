package dev.baton.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;

/** The reference defaults, for connections adopted from a predecessor whose proxy is gone. */
public final class Defaults {
    private Defaults() {
    }

    public static ProxyConfig orphanTcp(String name, java.net.InetSocketAddress upstream) {
        Config ref = ConfigFactory.parseResources(Defaults.class.getClassLoader(), "reference.conf")
                .getConfig("baton");
        Config tcp = ref.getConfig("tcp");
        Config udp = ref.getConfig("udp");
        TcpSettings t = new TcpSettings(tcp.getInt("backlog"), tcp.getBoolean("nodelay"),
                tcp.getDuration("connect-timeout"), tcp.getDuration("idle-timeout"),
                new Keepalive(tcp.getBoolean("keepalive.enabled"), tcp.getDuration("keepalive.idle"),
                        tcp.getDuration("keepalive.interval"), tcp.getInt("keepalive.count")),
                tcp.getInt("fast-open"), tcp.getDuration("defer-accept"), tcp.getBoolean("freebind"),
                tcp.getBoolean("splice"));
        UdpSettings u = new UdpSettings(udp.getDuration("flow-idle-timeout"), udp.getInt("max-flows"),
                (int) udp.getBytes("receive-buffer").longValue());
        return new ProxyConfig(name, Protocol.TCP, java.util.List.of(), java.util.List.of(upstream),
                Balance.ROUND_ROBIN, t, u);
    }
}

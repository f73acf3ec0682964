package dev.baton.proxyprotocol;

import dev.baton.config.Cidr;
import dev.baton.config.ProxyProtocol;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.haproxy.HAProxyCommand;
import io.netty.handler.codec.haproxy.HAProxyMessage;
import io.netty.handler.codec.haproxy.HAProxyMessageEncoder;
import io.netty.handler.codec.haproxy.HAProxyProtocolVersion;
import io.netty.handler.codec.haproxy.HAProxyProxiedProtocol;
import io.netty.util.concurrent.FastThreadLocal;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;

/**
 * The PROXY protocol header baton puts ahead of a client's bytes: who the client is (source) and
 * which address it reached (destination). Encoded by Netty's HAProxy codec, once per connection
 * or flow, on the worker that owns it.
 */
public final class ProxyHeader {
    /** One encoder pipeline per worker thread (the encoder needs a channel to run in). */
    private static final FastThreadLocal<EmbeddedChannel> ENCODER = new FastThreadLocal<>() {
        @Override
        protected EmbeddedChannel initialValue() {
            return new EmbeddedChannel(HAProxyMessageEncoder.INSTANCE);
        }
    };

    private ProxyHeader() {
    }

    /**
     * The header for a TCP connection ({@code stream}) or a UDP flow from {@code source} to
     * {@code destination}, in the given version (not {@link ProxyProtocol#OFF}).
     */
    public static ByteBuf encode(ProxyProtocol version, boolean stream, InetSocketAddress source,
                                 InetSocketAddress destination) {
        EmbeddedChannel ch = ENCODER.get();
        ch.writeOutbound(message(version, stream, source, destination));
        return ch.readOutbound();
    }

    /** {@link #encode} as bytes, for a header repeated on every datagram of a flow. */
    public static byte[] bytes(ProxyProtocol version, boolean stream, InetSocketAddress source,
                               InetSocketAddress destination) {
        ByteBuf b = encode(version, stream, source, destination);
        try {
            return ByteBufUtil.getBytes(b);
        } finally {
            b.release();
        }
    }

    /**
     * TCP4/UDP4 when both ends are IPv4 (an IPv4-mapped IPv6 address, as a dual-stack socket
     * reports an IPv4 peer, counts as IPv4), TCP6/UDP6 when both are IPv6. A wildcard destination
     * (a UDP listener on 0.0.0.0 or [::]) takes the source's family. Ends of different families
     * cannot be described: the header then says UNKNOWN, which tells the upstream to use the
     * connection's own addresses.
     */
    static HAProxyMessage message(ProxyProtocol version, boolean stream, InetSocketAddress source,
                                  InetSocketAddress destination) {
        HAProxyProtocolVersion v = version == ProxyProtocol.V1 ? HAProxyProtocolVersion.V1 : HAProxyProtocolVersion.V2;
        InetAddress s = Cidr.unmapped(source.getAddress());
        InetAddress d = Cidr.unmapped(destination.getAddress());
        if (d.isAnyLocalAddress() && s.getClass() != d.getClass()) {
            d = anyOfFamily(s);
        }
        if (s.getClass() != d.getClass()) {
            return new HAProxyMessage(v, HAProxyCommand.PROXY, HAProxyProxiedProtocol.UNKNOWN, null, null, 0, 0);
        }
        boolean v4 = s instanceof Inet4Address;
        HAProxyProxiedProtocol p = stream
                ? (v4 ? HAProxyProxiedProtocol.TCP4 : HAProxyProxiedProtocol.TCP6)
                : (v4 ? HAProxyProxiedProtocol.UDP4 : HAProxyProxiedProtocol.UDP6);
        return new HAProxyMessage(v, HAProxyCommand.PROXY, p, text(s), text(d), source.getPort(),
                destination.getPort());
    }

    private static InetAddress anyOfFamily(InetAddress like) {
        try {
            return InetAddress.getByAddress(new byte[like instanceof Inet6Address ? 16 : 4]);
        } catch (UnknownHostException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The address without an IPv6 scope (%eth0), which the header has no room for. */
    private static String text(InetAddress a) {
        String s = a.getHostAddress();
        int pct = s.indexOf('%');
        return pct < 0 ? s : s.substring(0, pct);
    }
}

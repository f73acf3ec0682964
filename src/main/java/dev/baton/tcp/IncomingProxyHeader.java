package dev.baton.tcp;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.haproxy.HAProxyCommand;
import io.netty.handler.codec.haproxy.HAProxyMessage;
import io.netty.handler.codec.haproxy.HAProxyProtocolException;
import io.netty.handler.codec.haproxy.HAProxyProxiedProtocol;
import io.netty.util.ReferenceCountUtil;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;

/**
 * Behind Netty's {@code HAProxyMessageDecoder} on a connection from a trusted source: takes the
 * v1 or v2 header the source must send first and tells the connection who the client is. Both
 * leave the pipeline with the header; the bytes after it go on to the relay.
 */
final class IncomingProxyHeader extends ChannelInboundHandlerAdapter {
    private final TcpConnection connection;

    IncomingProxyHeader(TcpConnection connection) {
        this.connection = connection;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof HAProxyMessage m)) {
            ctx.fireChannelRead(msg);
            return;
        }
        ctx.pipeline().remove(this);
        try {
            if (m.command() == HAProxyCommand.PROXY && isInet(m.proxiedProtocol())) {
                connection.headerReceived(address(m.sourceAddress(), m.sourcePort()),
                        address(m.destinationAddress(), m.destinationPort()));
            } else {
                // LOCAL (the sender's own health check), UNKNOWN or a unix socket: the connection's
                // own addresses stand, as the protocol says.
                connection.headerReceived(null, null);
            }
        } finally {
            ReferenceCountUtil.release(m);
        }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
            connection.headerAbandoned(); // a connect-and-close (a port check) is no malformed header
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        if (cause instanceof HAProxyProtocolException) {
            Throwable root = cause;
            while (root.getCause() != null) {
                root = root.getCause(); // the decoder wraps the reason in exceptions of its own type
            }
            connection.headerFailed(String.valueOf(root.getMessage())); // the decoder has closed it
        } else {
            connection.headerAbandoned(); // a reset or another I/O error before the header
        }
    }

    private static boolean isInet(HAProxyProxiedProtocol p) {
        return p == HAProxyProxiedProtocol.TCP4 || p == HAProxyProxiedProtocol.TCP6
                || p == HAProxyProxiedProtocol.UDP4 || p == HAProxyProxiedProtocol.UDP6;
    }

    /** The decoder checked that the text is an IP literal: no name is looked up. */
    private static InetSocketAddress address(String literal, int port) {
        try {
            return new InetSocketAddress(InetAddress.getByName(literal), port);
        } catch (UnknownHostException e) {
            throw new IllegalStateException("decoded PROXY header address is not a literal: " + literal, e);
        }
    }
}
